package launcher

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/tether-dev/tether/wire"
)

func TestStripesFor(t *testing.T) {
	tests := []struct {
		rtt  time.Duration
		want int
	}{
		{0, 1}, {300 * time.Microsecond, 1}, {9 * time.Millisecond, 1},
		{10 * time.Millisecond, 1}, {11 * time.Millisecond, 2}, {20 * time.Millisecond, 2},
		{40 * time.Millisecond, 4}, {80 * time.Millisecond, 8}, {300 * time.Millisecond, 8},
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
		{"campus", 16, []time.Duration{21 * time.Millisecond}, "", 3},
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
			var mu sync.Mutex
			dials := 0
			var wg sync.WaitGroup
			defer wg.Wait()
			raw := Endpoint(func(context.Context) (net.Conn, error) {
				a, b := net.Pipe()
				wg.Go(func() { io.Copy(io.Discard, b); b.Close() })
				mu.Lock()
				dials++
				mu.Unlock()
				return a, nil
			})
			c, err := striped(raw, wire.Record{Stripes: tt.offer}, rtt)(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
			if dials != tt.want {
				t.Errorf("for %s, got %d channels; want %d", tt.name, dials, tt.want)
			}
		})
	}
}
