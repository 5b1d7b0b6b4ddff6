//go:build unix

package relay

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
)

// recorder is a TCP proxy on loopback in front of a relay: the hosts and launchers of a
// test dial it instead of the relay, and it keeps every byte the relay is sent and
// sends, per connection and direction, to show what the relay handles.
type recorder struct {
	ln       net.Listener
	upstream string
	mu       sync.Mutex
	conns    []*recorded
}

// recorded is one connection's bytes: up from the end to the relay, down back.
type recorded struct {
	up, down bytes.Buffer
}

// lockedWriter appends to a recorded buffer under the recorder's lock.
type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func startRecorder(t *testing.T, upstream string) *recorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{ln: ln, upstream: upstream}
	var wg sync.WaitGroup
	var open sync.Map // live connections, closed at the end
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			rec := &recorded{}
			r.mu.Lock()
			r.conns = append(r.conns, rec)
			r.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				up, err := net.Dial("tcp", r.upstream)
				if err != nil {
					c.Close()
					return
				}
				open.Store(c, up)
				done := make(chan struct{}, 2)
				go func() {
					io.Copy(io.MultiWriter(up, lockedWriter{&r.mu, &rec.up}), c)
					up.(*net.TCPConn).CloseWrite()
					done <- struct{}{}
				}()
				go func() {
					io.Copy(io.MultiWriter(c, lockedWriter{&r.mu, &rec.down}), up)
					c.(*net.TCPConn).CloseWrite()
					done <- struct{}{}
				}()
				<-done
				<-done
				c.Close()
				up.Close()
				open.Delete(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		open.Range(func(k, v any) bool { k.(net.Conn).Close(); v.(net.Conn).Close(); return true })
		wg.Wait()
	})
	return r
}

// url is the relay's URL through the recorder.
func (r *recorder) url() string { return "ws://" + r.ln.Addr().String() }

// seen is what the relay handled: the raw bytes of every connection both ways, and
// the payloads of their WebSocket frames decoded (unmasked: a client's frames are
// XOR-masked on the wire, so a plaintext would not show in the raw bytes).
func (r *recorder) seen() (raw, payloads [][]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		for _, b := range []*bytes.Buffer{&c.up, &c.down} {
			raw = append(raw, bytes.Clone(b.Bytes()))
			payloads = append(payloads, wsPayloads(b.Bytes()))
		}
	}
	return raw, payloads
}

// wsPayloads decodes one direction of a WebSocket connection: the HTTP handshake is
// skipped, and the payloads of its data frames (text, binary, continuation) are
// returned unmasked and concatenated. A truncated last frame is dropped.
func wsPayloads(b []byte) []byte {
	i := bytes.Index(b, []byte("\r\n\r\n"))
	if i < 0 {
		return nil
	}
	b = b[i+4:]
	var out []byte
	for len(b) >= 2 {
		op, masked, n := b[0]&0x0f, b[1]&0x80 != 0, uint64(b[1]&0x7f)
		h := 2
		switch n {
		case 126:
			if len(b) < 4 {
				return out
			}
			n, h = uint64(binary.BigEndian.Uint16(b[2:])), 4
		case 127:
			if len(b) < 10 {
				return out
			}
			n, h = binary.BigEndian.Uint64(b[2:]), 10
		}
		var key []byte
		if masked {
			if len(b) < h+4 {
				return out
			}
			key, h = b[h:h+4], h+4
		}
		if uint64(len(b)-h) < n {
			return out
		}
		p := b[h : h+int(n)]
		if op <= 2 {
			for j := range p {
				if masked {
					out = append(out, p[j]^key[j%4])
				} else {
					out = append(out, p[j])
				}
			}
		}
		b = b[h+int(n):]
	}
	return out
}
