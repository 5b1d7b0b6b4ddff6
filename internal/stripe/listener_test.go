package stripe

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// logBuf collects a listener's log lines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// listen starts a Listener on loopback TCP and a goroutine handing its connections to
// the returned channel.
func listen(t *testing.T) (*Listener, <-chan net.Conn, *logBuf) {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuf{}
	l := NewListener(inner, slog.New(slog.NewTextHandler(logs, nil)))
	accepted := make(chan net.Conn, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		close(accepted)
		for c := range accepted {
			c.Close()
		}
	})
	return l, accepted, logs
}

func dialer(l *Listener) func(context.Context) (net.Conn, error) {
	return func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", l.Addr().String())
	}
}

func next(t *testing.T, accepted <-chan net.Conn) net.Conn {
	t.Helper()
	select {
	case c := <-accepted:
		t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("nothing accepted")
		return nil
	}
}

func nothingAccepted(t *testing.T, accepted <-chan net.Conn, why string) {
	t.Helper()
	select {
	case c := <-accepted:
		c.Close()
		t.Errorf("%s: a connection was handed out", why)
	case <-time.After(200 * time.Millisecond):
	}
}

// TestListenerJoinsStripes: a group dialled through the listener is handed out as one
// stream, both ways, and the log says so.
func TestListenerJoinsStripes(t *testing.T) {
	noLeaks(t)
	l, accepted, logs := listen(t)
	acked := make(chan time.Duration, 1)
	client, err := Dial(context.Background(), 6, dialer(l), func(d time.Duration) { acked <- d })
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server := next(t, accepted)
	sc, ok := server.(*Conn)
	if !ok || sc.Stripes() != 6 {
		t.Fatalf("accepted %T; want a *Conn of 6 stripes", server)
	}
	errc := make(chan error, 2)
	up := sendRandom(client, 2<<20, errc)
	got, n, err := readHash(server)
	if err != nil || got != up {
		t.Fatalf("upload: %d bytes, %v, hash match %v", n, err, got == up)
	}
	down := sendRandom(sc, 2<<20, errc)
	got, n, err = readHash(client)
	if err != nil || got != down {
		t.Fatalf("download: %d bytes, %v, hash match %v", n, err, got == down)
	}
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	select {
	case d := <-acked:
		if d <= 0 {
			t.Errorf("the ack timed %v", d)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("no ack from the listener")
	}
	if !strings.Contains(logs.String(), `msg="striped connection" stripes=6`) {
		t.Errorf("log: %q; want the striped connection", logs.String())
	}
}

// TestListenerPassesOthersThrough: what is not a stripe (HTTP, TLS, a NUL-led thing
// that is not the magic, a client slower than the sniff) is handed out unchanged,
// and a silent client holds no other back.
func TestListenerPassesOthersThrough(t *testing.T) {
	noLeaks(t)
	shorten(t, &sniffTimeout, 300*time.Millisecond)
	l, accepted, _ := listen(t)

	silent, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	for _, first := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
		"\x00tether-strip!/1 and then something else entirely",
	} {
		passesThrough(t, l, accepted, first)
	}
	// The silent one comes out after the sniff's deadline, unchanged.
	s := next(t, accepted)
	silent.Write([]byte("late"))
	got := make([]byte, 4)
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(s, got); err != nil || string(got) != "late" {
		t.Errorf("silent client: %q, %v", got, err)
	}
	// A lone NUL (a prefix of the magic, then silence) comes out after the deadline.
	passesThrough(t, l, accepted, "\x00")
}

// passesThrough sends first to l and checks it is handed out unchanged, as the very
// connection (an answer and a half-close reach the client).
func passesThrough(t *testing.T, l *Listener, accepted <-chan net.Conn, first string) {
	t.Helper()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte(first))
	s := next(t, accepted)
	if _, ok := s.(*Conn); ok {
		t.Fatalf("%q: handed out as stripes", first)
	}
	got := make([]byte, len(first))
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(s, got); err != nil || string(got) != first {
		t.Errorf("handed out %q, %v; want %q", got, err, first)
	}
	if _, err := s.(io.ReaderFrom).ReadFrom(strings.NewReader("o")); err != nil {
		t.Errorf("ReadFrom: %v", err)
	}
	s.Write([]byte("k"))
	if err := s.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Errorf("CloseWrite: %v", err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(c); string(b) != "ok" || err != nil {
		t.Errorf("client got %q, %v; want the answer then EOF", b, err)
	}
}

// sendHello opens a connection to l and sends one hello; it returns the connection.
func sendHello(t *testing.T, l *Listener, id [16]byte, index, count byte) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	b := append(append([]byte(Magic), id[:]...), index, count)
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	return c
}

// closedByServer reports whether the server closed c (within 5 s).
func closedByServer(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Read(make([]byte, 1))
	return err == io.EOF || errors.Is(err, net.ErrClosed) || err != nil && !isTimeout(err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func newID() [16]byte {
	var id [16]byte
	rand.Read(id[:])
	return id
}

// TestListenerRefusesHostileHellos: each bound of the hello holds; what breaks one is
// closed, never handed out, and the listener goes on serving.
func TestListenerRefusesHostileHellos(t *testing.T) {
	noLeaks(t)
	shorten(t, &groupTimeout, 300*time.Millisecond)
	l, accepted, logs := listen(t)

	for _, tt := range []struct {
		name         string
		index, count byte
	}{
		{"count 0", 0, 0},
		{"count 17", 0, MaxStripes + 1},
		{"count 255", 3, 255},
		{"index past count", 4, 4},
	} {
		c := sendHello(t, l, newID(), tt.index, tt.count)
		if !closedByServer(c) {
			t.Errorf("%s: not closed", tt.name)
		}
	}

	// Duplicate index: the whole group is dropped.
	id := newID()
	a := sendHello(t, l, id, 0, 3)
	b := sendHello(t, l, id, 0, 3)
	if !closedByServer(a) || !closedByServer(b) {
		t.Errorf("duplicate index: the group's stripes were not closed")
	}
	// And its id stays refused.
	c := sendHello(t, l, id, 1, 3)
	if !closedByServer(c) {
		t.Errorf("a stripe of a dropped group's id was not closed")
	}

	// A count that disagrees with the group's.
	id = newID()
	a = sendHello(t, l, id, 0, 2)
	b = sendHello(t, l, id, 1, 3)
	if !closedByServer(a) || !closedByServer(b) {
		t.Errorf("disagreeing count: the group's stripes were not closed")
	}

	// A group that never completes is dropped after groupTimeout.
	a = sendHello(t, l, newID(), 0, 2)
	if !closedByServer(a) {
		t.Errorf("a group that never completed was kept")
	}
	nothingAccepted(t, accepted, "hostile hellos")

	// A second group reusing a joined group's id is refused.
	id = newID()
	sendHello(t, l, id, 0, 1)
	next(t, accepted)
	c = sendHello(t, l, id, 0, 1)
	if !closedByServer(c) {
		t.Errorf("a second group with a used id was taken")
	}
	nothingAccepted(t, accepted, "reused id")

	// The listener still works.
	client, err := Dial(context.Background(), 2, dialer(l), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if s, ok := next(t, accepted).(*Conn); !ok || s.Stripes() != 2 {
		t.Errorf("a good group after the hostile ones was not joined")
	}
	for _, want := range []string{"out of bounds", "disagrees", "did not complete", "was used already"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

// TestListenerBoundsGroups: at most maxGroups wait; a stripe beyond is refused.
func TestListenerBoundsGroups(t *testing.T) {
	noLeaks(t)
	l, _, logs := listen(t)
	for range maxGroups {
		sendHello(t, l, newID(), 0, 2)
	}
	// The hellos are looked at in their own goroutines: wait for all to be held.
	for deadline := time.Now().Add(5 * time.Second); ; {
		l.mu.Lock()
		n := len(l.groups)
		l.mu.Unlock()
		if n == maxGroups {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d groups held; want %d", n, maxGroups)
		}
		time.Sleep(10 * time.Millisecond)
	}
	c := sendHello(t, l, newID(), 0, 2)
	if !closedByServer(c) {
		t.Errorf("group %d was taken", maxGroups+1)
	}
	if !strings.Contains(logs.String(), "too many groups") {
		t.Errorf("log: %s", logs.String())
	}
}

// TestListenerCloseEndsAll: Close ends the connections being looked at and the groups
// waiting, and Accept returns net.ErrClosed.
func TestListenerCloseEndsAll(t *testing.T) {
	noLeaks(t)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewListener(inner, nil)
	silent, _ := net.Dial("tcp", l.Addr().String())
	defer silent.Close()
	half := sendHello(t, l, newID(), 0, 2)
	time.Sleep(50 * time.Millisecond)
	l.Close()
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v", err)
	}
	if !closedByServer(silent) || !closedByServer(half) {
		t.Errorf("connections held by the listener outlived Close")
	}
}

// TestListenerBoundsSniffing: at most maxSniffing connections are looked at at once;
// the next waits for a slot (here, until a silent one's sniff times out).
func TestListenerBoundsSniffing(t *testing.T) {
	noLeaks(t)
	shorten(t, &maxSniffing, 2)
	shorten(t, &sniffTimeout, 300*time.Millisecond)
	l, accepted, _ := listen(t)
	var silent []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		silent = append(silent, c)
	}
	time.Sleep(50 * time.Millisecond) // both are being looked at
	plain, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	plain.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	var order []string
	for range 3 {
		c := next(t, accepted)
		if c.RemoteAddr().String() == plain.LocalAddr().String() {
			order = append(order, "plain")
		} else {
			order = append(order, "silent")
		}
	}
	// Without the bound the plain one, which speaks at once, would come out first.
	if order[0] == "plain" {
		t.Errorf("accepted %v; want the plain one to wait for a silent one's slot", order)
	}
}

// TestListenerBoundsRecentIDs: at most maxRecent used ids are remembered, the oldest
// forgotten first.
func TestListenerBoundsRecentIDs(t *testing.T) {
	noLeaks(t)
	shorten(t, &maxRecent, 2)
	l, accepted, _ := listen(t)
	ids := [][16]byte{newID(), newID(), newID()}
	for _, id := range ids {
		sendHello(t, l, id, 0, 1)
		next(t, accepted)
	}
	l.mu.Lock()
	n := len(l.recent)
	_, first := l.recent[ids[0]]
	_, last := l.recent[ids[2]]
	l.mu.Unlock()
	if n != 2 || first || !last {
		t.Errorf("remembered %d ids (the first %v, the last %v); want the 2 newest", n, first, last)
	}
}

// TestListenerEvictsSilentWhenFull: with every slot held by a silent connection (a
// stuck client of our own user), a plain client is served after evictAfter, not after
// sniffTimeout: the silent connection looked at longest is handed out as it is.
func TestListenerEvictsSilentWhenFull(t *testing.T) {
	noLeaks(t)
	shorten(t, &maxSniffing, 2)
	shorten(t, &sniffTimeout, 20*time.Second)
	shorten(t, &evictAfter, 200*time.Millisecond)
	l, accepted, _ := listen(t)
	for range 2 {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	time.Sleep(50 * time.Millisecond) // both are being looked at
	plain, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	plain.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	start := time.Now()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case c := <-accepted:
			c.Close()
			if c.RemoteAddr().String() == plain.LocalAddr().String() {
				t.Logf("the plain client was accepted after %v", time.Since(start))
				return
			}
		case <-deadline:
			t.Fatalf("the plain client was not accepted in 5 s while silent connections held every slot (sniffTimeout %v)", sniffTimeout)
		}
	}
}
