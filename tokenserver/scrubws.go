package tokenserver

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"strings"
)

// WebSockets of an app with secrets: the proxy parses the frames the app sends and
// takes the secrets out of every message (text cut, binary overwritten, as bodies),
// re-framing as it goes: a message may go out in more fragments than it came in
// (RFC 6455 5.4 lets an intermediary refragment when no extension is in use), so that
// nothing but a possible start of a secret is ever held back. Compression
// (permessage-deflate) is not offered to the app, and an app that uses an extension
// anyway is refused. What the client sends passes unchanged.

// upgradeRequest prepares an outgoing upgrade: no extensions (the frames must be
// readable).
func (s *scrubber) upgradeRequest(h http.Header) {
	h.Del("Sec-WebSocket-Extensions")
}

// upgrade wraps a 101's connection to the app, or refuses it.
func (s *scrubber) upgrade(resp *http.Response) error {
	if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		return &errUncheckable{"an upgrade to " + truncate(resp.Header.Get("Upgrade"), 32) + ", not a WebSocket"}
	}
	if resp.Header.Get("Sec-WebSocket-Extensions") != "" {
		return &errUncheckable{"a WebSocket extension the proxy did not offer"}
	}
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		return &errUncheckable{"an upgrade without a connection"}
	}
	resp.Body = &wsScrubConn{ReadWriteCloser: rwc, s: s, br: bufio.NewReaderSize(rwc, 32<<10)}
	return nil
}

// wsScrubConn is the app's side of a WebSocket: writes go to the app as they are,
// reads return the app's frames with the secrets taken out.
type wsScrubConn struct {
	io.ReadWriteCloser
	s   *scrubber
	br  *bufio.Reader
	out []byte // frames ready for the client
	err error

	// The message under way.
	inMessage bool
	started   bool // a first fragment has gone out
	opcode    byte
	msg       scrubState

	// The data frame under way.
	inFrame bool
	left    uint64 // payload bytes still to read
	fin     bool
	masked  bool
	mask    [4]byte
	maskPos int

	chunk []byte
}

var errWSExtension = errors.New("proxy: the app sent a WebSocket frame with RSV bits (an extension) set")

func (c *wsScrubConn) Read(p []byte) (int, error) {
	for len(c.out) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		c.err = c.step()
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	return n, nil
}

// CloseWrite lets the proxy half-close toward the app, as on the bare connection.
func (c *wsScrubConn) CloseWrite() error {
	if cw, ok := c.ReadWriteCloser.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// step reads the next piece of the app's stream (a frame header, or up to a chunk of
// payload) and queues what may go out.
func (c *wsScrubConn) step() error {
	if !c.inFrame {
		return c.readHeader()
	}
	if c.chunk == nil {
		c.chunk = make([]byte, 32<<10)
	}
	n := 0
	if c.left > 0 {
		k := int(min(c.left, uint64(len(c.chunk))))
		var err error
		n, err = c.br.Read(c.chunk[:k])
		if n == 0 && err != nil {
			return unexpectedEOF(err)
		}
		c.left -= uint64(n)
		if c.masked {
			for i := range n {
				c.chunk[i] ^= c.mask[c.maskPos&3]
				c.maskPos++
			}
		}
	}
	final := c.fin && c.left == 0
	if out := c.msg.push(c.chunk[:n], final); len(out) > 0 || final {
		op := byte(0)
		if !c.started {
			op = c.opcode
		}
		c.queueFrame(op, final, out)
		c.started = true
	}
	if c.left == 0 {
		c.inFrame = false
		if c.fin {
			c.inMessage = false
		}
	}
	return nil
}

func (c *wsScrubConn) readHeader() error {
	var h [14]byte
	if _, err := io.ReadFull(c.br, h[:2]); err != nil {
		return err // EOF between frames: the app closed
	}
	fin, rsv, op := h[0]&0x80 != 0, h[0]&0x70, h[0]&0x0f
	masked, l := h[1]&0x80 != 0, uint64(h[1]&0x7f)
	if rsv != 0 {
		return errWSExtension
	}
	switch l {
	case 126:
		if _, err := io.ReadFull(c.br, h[2:4]); err != nil {
			return unexpectedEOF(err)
		}
		l = uint64(binary.BigEndian.Uint16(h[2:4]))
	case 127:
		if _, err := io.ReadFull(c.br, h[2:10]); err != nil {
			return unexpectedEOF(err)
		}
		l = binary.BigEndian.Uint64(h[2:10])
	}
	var mask [4]byte
	if masked {
		if _, err := io.ReadFull(c.br, mask[:]); err != nil {
			return unexpectedEOF(err)
		}
	}
	if op >= 8 { // control: whole (at most 125 bytes by the RFC), scrubbed in place
		if l > 1<<16 {
			return errors.New("proxy: the app sent an oversized WebSocket control frame")
		}
		payload := make([]byte, l)
		if _, err := io.ReadFull(c.br, payload); err != nil {
			return unexpectedEOF(err)
		}
		if masked {
			for i := range payload {
				payload[i] ^= mask[i&3]
			}
		}
		st := scrubState{s: c.s, fill: true}
		c.queueFrame(op, fin, st.push(payload, true))
		return nil
	}
	if op != 0 { // a new message
		if c.inMessage {
			return errors.New("proxy: the app began a WebSocket message inside another")
		}
		c.inMessage, c.started, c.opcode = true, false, op
		c.msg = scrubState{s: c.s, fill: op != 1, buf: c.msg.buf[:0]} // text cut, binary overwritten
	} else if !c.inMessage {
		return errors.New("proxy: the app continued a WebSocket message it had not begun")
	}
	c.inFrame, c.fin, c.left, c.masked, c.mask, c.maskPos = true, fin, l, masked, mask, 0
	return nil
}

// queueFrame queues an unmasked frame for the client (out is empty when it is called).
func (c *wsScrubConn) queueFrame(op byte, fin bool, payload []byte) {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	f := c.out[:0]
	switch n := len(payload); {
	case n < 126:
		f = append(f, b0, byte(n))
	case n <= 0xffff:
		f = append(f, b0, 126, byte(n>>8), byte(n))
	default:
		f = append(f, b0, 127)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	c.out = append(f, payload...)
}
