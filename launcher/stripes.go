package launcher

import (
	"context"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/tether-dev/tether/internal/stripe"
	"github.com/tether-dev/tether/wire"
)

// Striping (package internal/stripe): one SSH channel carries at most its window per
// round trip (2 MiB in x/crypto and OpenSSH: 26 MB/s at 80 ms however fast the link),
// so on a distant link a browser connection is carried over several channels, when the
// session's record says its socket joins stripes. The round trip decides how many: on
// a near link one channel is not the limit and more only cost CPU.

// stripesEnv overrides the choice (tests and the bench): 1 turns striping off, N forces
// N stripes (up to what the record allows).
const stripesEnv = "TETHER_STRIPES"

// stripeRTT is the round trip from which striping pays, and stripeStep the round trip
// each further stripe is for: N = RTT / stripeStep rounded, 1 below stripeRTT, 2 to
// maxAutoStripes from it (rounded, not raised: a channel open measures a little more
// than the round trip). Measured through Toxiproxy (README "Past the window"): at
// 80 ms, 8 stripes carry one download at 5x ssh -L's one channel.
const (
	stripeRTT      = 10 * time.Millisecond
	stripeStep     = 10 * time.Millisecond
	maxAutoStripes = 8
)

// stripeBudget bounds the channels beyond the first that a session's open connections
// hold together. Each channel buffers up to its window (2 MiB) in the launcher when
// the browser reads slowly, so without a bound six stalled downloads striped over 8
// held 147 MB (TestStripedSlowReaders; 40 MB over one channel each). A connection
// takes at most half of what is left (rounded up): alone it gets 8 channels, and six
// opened at once get 8, 5, 3, 2, 1, 1 rather than 8, 8 and one each.
const stripeBudget = 2 * (maxAutoStripes - 1)

// StripesFor is how many stripes a browser connection takes over a link of round
// trip rtt (when the server joins stripes); the bench prints the ceiling from it.
func StripesFor(rtt time.Duration) int {
	if rtt < stripeRTT {
		return 1
	}
	return max(2, min(maxAutoStripes, int((rtt+stripeStep/2)/stripeStep)))
}

// linkRTT estimates the link's round trip from how long channel opens take (one round
// trip each through x/crypto): the least of the latest few, so a busy moment of this
// machine does not read as a distant link.
type linkRTT struct {
	mu      sync.Mutex
	samples [8]time.Duration
	n       int
}

func (m *linkRTT) add(d time.Duration) {
	m.mu.Lock()
	m.samples[m.n%len(m.samples)] = d
	m.n++
	m.mu.Unlock()
}

// estimate is the round trip; false before any channel was opened.
func (m *linkRTT) estimate() (time.Duration, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.n == 0 {
		return 0, false
	}
	least := m.samples[0]
	for _, d := range m.samples[:min(m.n, len(m.samples))] {
		least = min(least, d)
	}
	return least, true
}

// timed is dial with each successful open's duration added to m.
func (m *linkRTT) timed(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		start := time.Now()
		c, err := dial(ctx, network, addr)
		if err == nil {
			m.add(time.Since(start))
		}
		return c, err
	}
}

// striped is raw carrying each connection over as many stripes as the link's round
// trip (m) asks for, at most what rec allows; raw itself where striping does not pay
// or the server does not join stripes (an older one: its record has no stripes).
func striped(raw Endpoint, rec wire.Record, m *linkRTT) Endpoint {
	limit := min(rec.Stripes, stripe.MaxStripes)
	force, _ := strconv.Atoi(os.Getenv(stripesEnv))
	if limit < 2 || force == 1 {
		return raw
	}
	// The listener's ack comes two round trips after the dial began (the channel's
	// open, then the hello and the ack), through ssh's master too.
	onRTT := func(d time.Duration) { m.add(d / 2) }
	budget := &extraStripes{free: stripeBudget}
	return func(ctx context.Context) (net.Conn, error) {
		n := force
		if n < 1 {
			rtt, ok := m.estimate()
			switch {
			case !ok:
				n = 1 // nothing measured yet (ssh's master): a group of one measures it
			case StripesFor(rtt) < 2:
				return raw(ctx)
			default:
				n = StripesFor(rtt)
			}
		}
		n = min(n, limit)
		if n < 1 {
			return raw(ctx)
		}
		extra := budget.take(n - 1)
		if n > 1 && extra == 0 {
			return raw(ctx) // the budget is spent: one channel, as ssh -L
		}
		c, err := stripe.Dial(ctx, 1+extra, raw, onRTT)
		if err != nil {
			budget.give(extra)
			return nil, err
		}
		return &budgetedConn{Conn: c, give: func() { budget.give(extra) }}, nil
	}
}

// extraStripes is what is left of stripeBudget.
type extraStripes struct {
	mu   sync.Mutex
	free int
}

// take reserves up to n channels, at most half of those left (rounded up), and returns
// how many it got.
func (b *extraStripes) take(n int) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n = max(0, min(n, (b.free+1)/2))
	b.free -= n
	return n
}

func (b *extraStripes) give(n int) {
	b.mu.Lock()
	b.free += n
	b.mu.Unlock()
}

// budgetedConn gives its channels back to the budget once closed.
type budgetedConn struct {
	*stripe.Conn
	once sync.Once
	give func()
}

func (c *budgetedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.give)
	return err
}
