package stripe

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// noLeaks fails t if a goroutine of this package outlives the test (bounded wait).
func noLeaks(t *testing.T) {
	t.Helper()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			buf := make([]byte, 1<<20)
			stacks := string(buf[:runtime.Stack(buf, true)])
			var left []string
			for _, g := range strings.Split(stacks, "\n\n") {
				if strings.Contains(g, "internal/stripe.(*") || strings.Contains(g, "internal/stripe.Dial") {
					left = append(left, g)
				}
			}
			if len(left) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("%d goroutines of package stripe outlived the test:\n%s", len(left), strings.Join(left, "\n\n"))
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// delayConn sleeps a random while before each write: stripes that run at different
// speeds, so frames arrive out of order.
type delayConn struct {
	net.Conn
	max time.Duration
}

func (d delayConn) Write(p []byte) (int, error) {
	time.Sleep(time.Duration(mrand.Int64N(int64(d.max) + 1)))
	return d.Conn.Write(p)
}

// pair joins n in-memory stripes into the two ends of one stream. The raw server ends
// are returned for tests that break one.
func pair(t *testing.T, n int, delay time.Duration) (client, server *Conn, raw []net.Conn) {
	t.Helper()
	var cs, ss []net.Conn
	for range n {
		a, b := net.Pipe()
		if delay > 0 {
			a, b = delayConn{a, delay}, delayConn{b, delay}
		}
		cs, ss = append(cs, a), append(ss, b)
	}
	client, server = newConn(cs), newConn(ss)
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server, ss
}

// shorten sets *v to d for the test.
func shorten[T any](t *testing.T, v *T, d T) {
	old := *v
	*v = d
	t.Cleanup(func() { *v = old })
}

// sendRandom writes size random bytes to w in random-sized writes, then half-closes;
// it returns their hash.
func sendRandom(w *Conn, size int, errc chan<- error) [32]byte {
	data := make([]byte, size)
	rand.Read(data)
	go func() {
		p := data
		for len(p) > 0 {
			n := min(len(p), 1+mrand.IntN(100<<10))
			if _, err := w.Write(p[:n]); err != nil {
				errc <- err
				return
			}
			p = p[n:]
		}
		errc <- w.CloseWrite()
	}()
	return sha256.Sum256(data)
}

func readHash(r io.Reader) ([32]byte, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum, n, err
}

// TestInOrderUnderDelays: both ways at once over stripes whose writes are delayed at
// random, through a small reorder buffer, every byte arrives in order.
func TestInOrderUnderDelays(t *testing.T) {
	noLeaks(t)
	shorten(t, &reorderLimit, 3*MaxFrame)
	for _, n := range []int{1, 3, 8} {
		client, server, _ := pair(t, n, 300*time.Microsecond)
		const size = 3 << 20
		errc := make(chan error, 2)
		up := sendRandom(client, size, errc)
		down := sendRandom(server, size, errc)
		gotUp, nUp, err := readHash(server)
		if err != nil || gotUp != up || nUp != size {
			t.Fatalf("n=%d: upload: %d bytes, err %v, hash match %v", n, nUp, err, gotUp == up)
		}
		gotDown, nDown, err := readHash(client)
		if err != nil || gotDown != down || nDown != size {
			t.Fatalf("n=%d: download: %d bytes, err %v, hash match %v", n, nDown, err, gotDown == down)
		}
		for range 2 {
			if err := <-errc; err != nil {
				t.Fatalf("n=%d: writer: %v", n, err)
			}
		}
		if err := client.Close(); err != nil {
			t.Errorf("client close: %v", err)
		}
		server.Close()
	}
}

// TestHalfClose: after CloseWrite the peer reads io.EOF and can still answer.
func TestHalfClose(t *testing.T) {
	noLeaks(t)
	client, server, _ := pair(t, 4, 0)
	go func() {
		client.Write([]byte("request"))
		client.CloseWrite()
	}()
	got, err := io.ReadAll(server)
	if err != nil || string(got) != "request" {
		t.Fatalf("server read %q, %v; want the request and io.EOF", got, err)
	}
	if _, err := client.Write([]byte("more")); err == nil {
		t.Errorf("a write after CloseWrite succeeded")
	}
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		server.Write([]byte("answer"))
		server.Close()
	}()
	got, err = io.ReadAll(client)
	<-closed // Close reads flushWait, which the next test may shorten
	if err != nil || string(got) != "answer" {
		t.Fatalf("client read %q, %v; want the answer and io.EOF", got, err)
	}
}

// TestCloseFlushes: Close sends what was written before it closes the stripes.
func TestCloseFlushes(t *testing.T) {
	noLeaks(t)
	client, server, _ := pair(t, 3, 100*time.Microsecond)
	errc := make(chan error, 1)
	data := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	go func() {
		_, err := client.Write(data)
		client.Close()
		errc <- err
	}()
	got, err := io.ReadAll(server)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, %v; want %d and io.EOF", len(got), err, len(data))
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// TestDeadlines: a read deadline ends a waiting Read with a timeout and the stream goes
// on once it is lifted; a write deadline ends a Write the peer does not drain.
func TestDeadlines(t *testing.T) {
	noLeaks(t)
	shorten(t, &reorderLimit, 4*MaxFrame)
	client, server, _ := pair(t, 2, 0)
	server.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := server.Read(make([]byte, 10))
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past its deadline: %v; want a timeout", err)
	}
	server.SetReadDeadline(time.Time{})
	go client.Write([]byte("late"))
	b := make([]byte, 10)
	n, err := server.Read(b)
	if err != nil || string(b[:n]) != "late" {
		t.Fatalf("read after lifting the deadline: %q, %v", b[:n], err)
	}

	// Nobody reads the server's side: the pipes, then the queue, fill up.
	client.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	_, err = client.Write(make([]byte, 4<<20))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write the peer does not drain: %v; want a timeout", err)
	}
	client.SetDeadline(time.Now().Add(-time.Second))
	if _, err := client.Read(b); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read with a past deadline: %v", err)
	}
}

// TestCloseUnblocks: Close ends a blocked Read and a blocked Write at once (the flush
// bounded by flushWait), and returns only when every goroutine has.
func TestCloseUnblocks(t *testing.T) {
	noLeaks(t)
	shorten(t, &flushWait, 200*time.Millisecond)
	shorten(t, &reorderLimit, 4*MaxFrame)
	client, _, _ := pair(t, 3, 0)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Go(func() { _, err := client.Read(make([]byte, 10)); errs <- err })
	wg.Go(func() { _, err := client.Write(make([]byte, 8<<20)); errs <- err })
	time.Sleep(50 * time.Millisecond) // both are waiting (nothing comes, nothing drains)
	client.Close()
	wg.Wait()
	for range 2 {
		if err := <-errs; !errors.Is(err, net.ErrClosed) {
			t.Errorf("after Close: %v; want net.ErrClosed", err)
		}
	}
	if err := client.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
}

// TestOneStripeDies: a stripe cut in the middle of a stream breaks the whole stream
// with an error on both ends, never a clean end with bytes missing.
func TestOneStripeDies(t *testing.T) {
	noLeaks(t)
	client, server, raw := pair(t, 4, 0)
	errc := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, server)
		errc <- err
	}()
	client.Write(make([]byte, 1<<20))
	raw[2].Close()
	if err := <-errc; err == nil || !errors.Is(err, errBroken) {
		t.Fatalf("server read after a stripe died: %v; want the stream broken", err)
	}
	_, err := io.Copy(io.Discard, client)
	if !errors.Is(err, errBroken) {
		t.Fatalf("client read after a stripe died: %v; want the stream broken", err)
	}
	if _, err := client.Write([]byte("x")); err == nil {
		t.Errorf("write after a stripe died succeeded")
	}
}

// rawFrame is one frame as a hostile peer may send it.
func rawFrame(seq uint64, n uint32, data []byte) []byte {
	b := make([]byte, headerLen, headerLen+len(data))
	for i := range 8 {
		b[i] = byte(seq >> (56 - 8*i))
	}
	b[8], b[9], b[10], b[11] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	return append(b, data...)
}

// TestHostileFrames: a frame longer than MaxFrame, of length 0, repeated, or behind
// the stream breaks the stream; frames sent ahead of the one awaited are held within
// reorderLimit (the sender is made to wait).
func TestHostileFrames(t *testing.T) {
	noLeaks(t)
	shorten(t, &flushWait, 100*time.Millisecond) // nobody reads the end marker
	tests := []struct {
		name   string
		frames [][]byte
	}{
		{"huge length", [][]byte{rawFrame(0, 1<<31, nil)}},
		{"zero length", [][]byte{rawFrame(0, 0, nil)}},
		{"one past the limit", [][]byte{rawFrame(0, MaxFrame+1, nil)}},
		{"duplicate", [][]byte{rawFrame(5, 1, []byte("a")), rawFrame(5, 1, []byte("b"))}},
		{"behind", [][]byte{rawFrame(0, 1, []byte("a")), rawFrame(0, 1, []byte("b"))}},
	}
	for _, tt := range tests {
		a, b := net.Pipe()
		c := newConn([]net.Conn{b})
		go func() {
			for _, f := range tt.frames {
				if _, err := a.Write(f); err != nil {
					return
				}
			}
		}()
		if tt.name == "behind" { // the first one is fine
			c.Read(make([]byte, 1))
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		start := time.Now()
		_, err := c.Read(make([]byte, 10))
		if !errors.Is(err, errBroken) {
			t.Errorf("%s: read %v after %v; want the stream broken", tt.name, err, time.Since(start))
		}
		c.Close()
		a.Close()
	}

	// Frames ahead of frame 0, which never comes: the receiver holds at most
	// reorderLimit (and the frame it reads), then stops reading.
	shorten(t, &reorderLimit, 4*MaxFrame)
	a, b := net.Pipe()
	c := newConn([]net.Conn{b})
	last, sending := sendAhead(a, 63, make([]byte, MaxFrame))
	c.mu.Lock()
	held := c.pendBytes
	c.mu.Unlock()
	if held > reorderLimit || last > 6 {
		t.Errorf("held %d bytes (limit %d) after %d frames were taken; want the sender stopped", held, reorderLimit, last)
	}
	c.Close()
	a.Close()
	sending.Wait()
}

// TestTinyFramesHeldWithinLimit: frames of one byte each, sent ahead of the one
// awaited (a peer that never sends it, or a reader that stopped while the writer
// writes small pieces), hold no more memory than reorderLimit: each frame held takes a
// whole frame buffer, whatever its length, so the limit counts buffers, not bytes.
func TestTinyFramesHeldWithinLimit(t *testing.T) {
	noLeaks(t)
	shorten(t, &flushWait, 100*time.Millisecond)
	shorten(t, &reorderLimit, 8*MaxFrame)
	a, b := net.Pipe()
	c := newConn([]net.Conn{b})
	last, sending := sendAhead(a, 1024, []byte("x"))
	c.mu.Lock()
	held := len(c.pending) * (headerLen + MaxFrame)
	c.mu.Unlock()
	if held > reorderLimit {
		t.Errorf("%d one-byte frames taken, %d held in %d KiB of buffers; want at most reorderLimit (%d KiB)", last, held/(headerLen+MaxFrame), held>>10, reorderLimit>>10)
	}
	c.Close()
	a.Close()
	sending.Wait()
}

// sendAhead writes frames 1 to n carrying data to a from a goroutine of its own (frame
// 0, the one awaited, never comes) and returns the last frame a took within 500 ms;
// the WaitGroup ends once the writer has stopped (when a is closed, for one that
// blocks).
func sendAhead(a net.Conn, n int, data []byte) (last int, sending *sync.WaitGroup) {
	sent := make(chan int, n)
	sending = &sync.WaitGroup{}
	sending.Go(func() {
		defer close(sent)
		for seq := uint64(1); seq <= uint64(n); seq++ {
			if _, err := a.Write(rawFrame(seq, uint32(len(data)), data)); err != nil {
				return
			}
			sent <- int(seq)
		}
	})
	deadline := time.After(500 * time.Millisecond)
	for {
		select {
		case s, ok := <-sent:
			if !ok {
				return last, sending
			}
			last = s
		case <-deadline:
			return last, sending
		}
	}
}
