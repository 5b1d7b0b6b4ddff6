package launcher

import (
	"context"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/stripe"
	"github.com/tether-dev/tether/wire"
)

func TestStripesFor(t *testing.T) {
	tests := []struct {
		rtt  time.Duration
		want int
	}{
		{0, 1}, {300 * time.Microsecond, 1}, {9 * time.Millisecond, 1},
		{10 * time.Millisecond, 2}, {14 * time.Millisecond, 2}, {20 * time.Millisecond, 2},
		{21 * time.Millisecond, 2}, {25 * time.Millisecond, 3}, {40 * time.Millisecond, 4},
		{41 * time.Millisecond, 4}, {80 * time.Millisecond, 8}, {81 * time.Millisecond, 8},
		{300 * time.Millisecond, 8},
	}
	for _, tt := range tests {
		if got := StripesFor(tt.rtt); got != tt.want {
			t.Errorf("for %v, got %d stripes; want %d", tt.rtt, got, tt.want)
		}
	}
}

// TestStripedChoosesByRoundTrip: how many channels one connection opens, by the
// record's offer, the measured round trip and TETHER_STRIPES. A near link (loopback)
// and an older server (no stripes in its record) get one channel, as before.
func TestStripedChoosesByRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		offer   int
		samples []time.Duration
		env     string
		want    int
	}{
		{"older server, distant link", 0, []time.Duration{80 * time.Millisecond}, "", 1},
		{"nothing measured yet", 16, nil, "", 1},
		{"loopback", 16, []time.Duration{400 * time.Microsecond}, "", 1},
		{"a busy moment on loopback", 16, []time.Duration{400 * time.Microsecond, 30 * time.Millisecond}, "", 1},
		{"campus", 16, []time.Duration{21 * time.Millisecond}, "", 2},
		{"wan", 16, []time.Duration{81 * time.Millisecond}, "", 8},
		{"wan, server offers 4", 4, []time.Duration{81 * time.Millisecond}, "", 4},
		{"turned off", 16, []time.Duration{81 * time.Millisecond}, "1", 1},
		{"forced on loopback", 16, []time.Duration{400 * time.Microsecond}, "3", 3},
		{"forced past the offer", 2, nil, "6", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(stripesEnv, tt.env)
			rtt := &linkRTT{}
			for _, d := range tt.samples {
				rtt.add(d)
			}
			raw, dials := countingPipes(t)
			c, err := striped(raw, wire.Record{Stripes: tt.offer}, rtt)(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
			if n := dials(); n != tt.want {
				t.Errorf("for %s, got %d channels; want %d", tt.name, n, tt.want)
			}
		})
	}
}

// TestStripedMeasuresThroughTheAck: with nothing measured (ssh's master, whose local
// connections time nothing), the first connection is a group of one stripe whose ack
// from the listener measures the round trip; on loopback the next goes plain.
func TestStripedMeasuresThroughTheAck(t *testing.T) {
	t.Setenv(stripesEnv, "")
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := stripe.NewListener(inner, nil)
	defer l.Close()
	accepted := make(chan net.Conn, 2)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	raw := Endpoint(func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", inner.Addr().String())
	})
	rtt := &linkRTT{}
	e := striped(raw, wire.Record{Stripes: stripe.MaxStripes}, rtt)
	c, err := e(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if sc, ok := (<-accepted).(*stripe.Conn); !ok || sc.Stripes() != 1 {
		t.Fatalf("first connection accepted as %T; want a group of one stripe", sc)
	} else {
		defer sc.Close()
	}
	var got time.Duration
	var ok bool
	for deadline := time.Now().Add(5 * time.Second); !ok && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		got, ok = rtt.estimate()
	}
	if !ok {
		t.Fatal("the ack measured nothing")
	}
	c2, err := e(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.Write([]byte("GET")) // a client speaks first: the listener looks at it at once
	if s2 := <-accepted; s2 != nil {
		defer s2.Close()
		if _, striped := s2.(*stripe.Conn); striped && got < stripeRTT {
			t.Errorf("on loopback (measured %v) the second connection was striped", got)
		}
	}
}

// TestStripedBudget: the connections of a session hold at most stripeBudget channels
// beyond their first together (each channel can hold a 2 MiB window in the launcher
// for a slow reader), each at most half of what is left, and a closed connection gives
// its channels back.
func TestStripedBudget(t *testing.T) {
	t.Setenv(stripesEnv, "")
	rtt := &linkRTT{}
	rtt.add(81 * time.Millisecond) // 8 stripes a connection
	raw, dials := countingPipes(t)
	e := striped(raw, wire.Record{Stripes: stripe.MaxStripes}, rtt)
	open := func() (net.Conn, int) {
		before := dials()
		c, err := e(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return c, dials() - before
	}
	var conns []net.Conn
	total := 0
	var got []int
	for range 6 {
		c, n := open()
		conns = append(conns, c)
		got = append(got, n)
		total += n
	}
	if want := []int{8, 5, 3, 2, 1, 1}; total-len(conns) > stripeBudget || !slices.Equal(got, want) {
		t.Errorf("six connections took %v channels (%d beyond their first); want %v, at most %d beyond the first in all", got, total-len(conns), want, stripeBudget)
	}
	for _, c := range conns {
		c.Close()
	}
	c, n := open()
	defer c.Close()
	if n != maxAutoStripes {
		t.Errorf("after the others closed a connection took %d channels; want %d", n, maxAutoStripes)
	}
}

// countingPipes is an Endpoint of in-memory pipes whose far ends read and discard
// everything, and how many it has dialled; its readers are waited for when t ends.
func countingPipes(t *testing.T) (Endpoint, func() int) {
	var mu sync.Mutex
	dials := 0
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	raw := Endpoint(func(context.Context) (net.Conn, error) {
		a, b := net.Pipe()
		wg.Go(func() { io.Copy(io.Discard, b); b.Close() })
		mu.Lock()
		dials++
		mu.Unlock()
		return a, nil
	})
	return raw, func() int {
		mu.Lock()
		defer mu.Unlock()
		return dials
	}
}
