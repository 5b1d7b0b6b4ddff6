package relay

import (
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// MaxMessage is the largest binary message a stream carries (64 KiB): the router
// closes a stream that sends a larger one, so no peer makes it buffer more.
const MaxMessage = 64 << 10

// writeBufferPool lends WebSocket write buffers for the length of one message: an
// idle connection holds none.
var writeBufferPool = &sync.Pool{}

// streamConn is one stream (a WebSocket of binary messages) as a net.Conn. gorilla
// allows one reader and one writer at a time: rmu and wmu make Read and Write each
// safe from several goroutines; Close and the deadlines may come from any goroutine.
type streamConn struct {
	ws *websocket.Conn

	rmu sync.Mutex
	r   io.Reader // the message being read, nil between messages

	wmu sync.Mutex

	closeOnce sync.Once
	closeErr  error
}

var _ net.Conn = (*streamConn)(nil)

func newStreamConn(ws *websocket.Conn) *streamConn {
	ws.SetReadLimit(MaxMessage)
	return &streamConn{ws: ws}
}

// Read reads the stream's bytes, message after message, into p (gorilla reads large
// ones straight from the socket into p). A close frame or a closed connection is
// io.EOF.
func (c *streamConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if c.r == nil {
			mt, r, err := c.ws.NextReader()
			if err != nil {
				return 0, streamError(err)
			}
			if mt != websocket.BinaryMessage {
				c.ws.Close()
				return 0, errors.New("relay: the stream carried a text message")
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if err == io.EOF {
			c.r = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		if err != nil {
			return n, streamError(err)
		}
		return n, nil
	}
}

// Write sends p as binary messages of at most MaxMessage bytes.
func (c *streamConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	n := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), MaxMessage)]
		if err := c.ws.WriteMessage(websocket.BinaryMessage, chunk); err != nil {
			return n, streamError(err)
		}
		n += len(chunk)
		p = p[len(chunk):]
	}
	return n, nil
}

// Close sends a close frame (not waiting for the answer) and closes the connection;
// a Read or Write blocked in another goroutine returns.
func (c *streamConn) Close() error {
	c.closeOnce.Do(func() {
		c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		c.closeErr = c.ws.Close()
	})
	return c.closeErr
}

func (c *streamConn) LocalAddr() net.Addr  { return c.ws.LocalAddr() }
func (c *streamConn) RemoteAddr() net.Addr { return c.ws.RemoteAddr() }

// SetDeadline sets both deadlines. As with crypto/tls, a Read or Write that times out
// leaves the stream unusable (gorilla's framing state is lost): a deadline is for
// giving up, not for polling.
func (c *streamConn) SetDeadline(t time.Time) error {
	if err := c.ws.SetReadDeadline(t); err != nil {
		return err
	}
	return c.ws.SetWriteDeadline(t)
}

func (c *streamConn) SetReadDeadline(t time.Time) error  { return c.ws.SetReadDeadline(t) }
func (c *streamConn) SetWriteDeadline(t time.Time) error { return c.ws.SetWriteDeadline(t) }

// streamError maps the end of a stream to io.EOF, as a TCP connection's end reads;
// timeouts and other failures pass through (a timeout is a net.Error with Timeout()).
func streamError(err error) error {
	var ce *websocket.CloseError
	switch {
	case errors.As(err, &ce) && (ce.Code == websocket.CloseNormalClosure || ce.Code == websocket.CloseGoingAway || ce.Code == websocket.CloseNoStatusReceived):
		return io.EOF
	case errors.As(err, &ce):
		return &StreamClosedError{Code: ce.Code, Reason: ce.Text}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return io.EOF
	case errors.Is(err, websocket.ErrCloseSent), errors.Is(err, net.ErrClosed):
		return net.ErrClosed
	}
	return err
}

// StreamClosedError is a stream the other side or the router closed with a reason
// (a message over MaxMessage, a relay shutting down, a host replaced).
type StreamClosedError struct {
	Code   int
	Reason string
}

func (e *StreamClosedError) Error() string {
	if e.Reason == "" {
		return "relay: stream closed (code " + strconv.Itoa(e.Code) + ")"
	}
	return "relay: stream closed: " + e.Reason
}
