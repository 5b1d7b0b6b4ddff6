package tokenserver

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// wsFrame is one frame as an app writes it.
func wsFrame(op byte, fin bool, payload string) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	f := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		f = append(f, byte(n))
	case n <= 0xffff:
		f = append(f, 126, byte(n>>8), byte(n))
	default:
		f = append(f, 127)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	return append(f, payload...)
}

// rawWSApp upgrades by hand and writes the frames frames(secret) gives, secret being
// what the proxy injected; it records the extensions it was offered.
func rawWSApp(frames func(secret string) [][]byte, offered *[]string, mu *sync.Mutex, answerExt string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		*offered = append(*offered, r.Header.Get("Sec-WebSocket-Extensions"))
		mu.Unlock()
		secret := strings.TrimPrefix(r.Header.Get("Authorization"), "token ")
		h := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
			base64.StdEncoding.EncodeToString(h[:]) + "\r\n"
		if answerExt != "" {
			resp += "Sec-WebSocket-Extensions: " + answerExt + "\r\n"
		}
		brw.WriteString(resp + "\r\n")
		brw.Flush()
		for _, f := range frames(secret) {
			conn.Write(f)
			time.Sleep(time.Millisecond) // separate writes, separate reads
		}
		// Wait for the client's close.
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		bufio.NewReader(conn).ReadByte()
	}
}

// A WebSocket app that sends its injected secret back, in one frame, split across
// fragments with a ping between them, escaped, in a binary message and in a large
// one: the client receives none of it, every message otherwise intact; compression is
// not offered to the app (issue 11, item 6: "never reaches the browser").
func TestProxyScrubsWebSocket(t *testing.T) {
	sec := scrubSecret
	stars := strings.Repeat("*", len(sec))
	big := strings.Repeat("b", 70000) + sec + strings.Repeat("c", 70000)
	frames := func(secret string) [][]byte {
		return [][]byte{
			wsFrame(1, true, `{"text": "`+secret+`"}`),
			wsFrame(1, false, `{"a": "`+secret[:10]),
			wsFrame(9, true, "ping "+secret),
			wsFrame(0, false, secret[10:30]),
			wsFrame(0, false, ""),
			wsFrame(0, true, secret[30:]+`", "b": 1}`),
			wsFrame(1, true, `{"t": "\u0041`+secret[1:]+`"}`),
			wsFrame(2, true, "\x00\x01"+secret+"\x02"),
			wsFrame(2, true, strings.Repeat("b", 70000)+secret+strings.Repeat("c", 70000)),
			wsFrame(1, true, `?token=`+secret),
			wsFrame(1, true, ""),
		}
	}
	want := []struct {
		typ  int
		data string
	}{
		{websocket.TextMessage, `{"text": ""}`},
		{websocket.TextMessage, `{"a": "", "b": 1}`},
		{websocket.TextMessage, `{"t": ""}`},
		{websocket.BinaryMessage, "\x00\x01" + stars + "\x02"},
		{websocket.BinaryMessage, strings.Replace(big, sec, stars, 1)},
		{websocket.TextMessage, `?`},
		{websocket.TextMessage, ``},
	}
	var offered []string
	var mu sync.Mutex
	backend := &recordingApp{handler: rawWSApp(frames, &offered, &mu, "")}
	up := startBackend(t, "tcp", backend)
	up.Header = http.Header{"Authorization": {"token " + sec}}
	up.Secrets = []string{sec}
	g := newGate(t, func(o *Options) { o.App = NewProxy(up, o.Logger) })
	base := g.served()

	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, EnableCompression: true}
	c, resp, err := d.Dial(wsURL(base, "/ws"), http.Header{"Authorization": {"token " + g.token}})
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	defer c.Close()
	var pings []string
	c.SetPingHandler(func(s string) error { pings = append(pings, s); return nil })
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i, w := range want {
		typ, msg, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if typ != w.typ || string(msg) != w.data {
			t.Errorf("message %d: type %d, %.120q; want type %d, %.120q", i, typ, msg, w.typ, w.data)
		}
		mustNotContain(t, fmt.Sprintf("message %d", i), string(msg), sec)
	}
	c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	if len(pings) != 1 || pings[0] != "ping "+stars {
		t.Errorf("pings: %q; want one, its secret overwritten", pings)
	}
	mu.Lock()
	for _, ext := range offered {
		if ext != "" {
			t.Errorf("the app was offered Sec-WebSocket-Extensions %q; compressed frames cannot be scrubbed", ext)
		}
	}
	mu.Unlock()

	// An app that answers with an extension anyway is refused: its frames could not be
	// read.
	backend2 := &recordingApp{handler: rawWSApp(frames, &offered, &mu, "permessage-deflate")}
	up2 := startBackend(t, "tcp", backend2)
	up2.Header = http.Header{"Authorization": {"token " + sec}}
	up2.Secrets = []string{sec}
	g2 := newGate(t, func(o *Options) { o.App = NewProxy(up2, o.Logger) })
	if _, resp, err := d.Dial(wsURL(g2.served(), "/ws"), http.Header{"Authorization": {"token " + g2.token}}); err == nil || resp == nil || resp.StatusCode != http.StatusBadGateway {
		t.Errorf("an app answering with an extension: %v %v; want 502", err, resp)
	}
}
