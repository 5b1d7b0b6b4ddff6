//go:build unix

package faults

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/e2e"
)

// TestStripedSlowReaders: six downloads whose client stops reading (a slow browser, a
// paused stream) through launchers 80 ms from the server. Each SSH channel buffers up
// to its window (2 MiB in x/crypto) in the launcher, so a connection striped over N
// channels can hold N windows: the launcher's RSS is measured striped (as chosen at
// this round trip) and with TETHER_STRIPES=1 (one channel, as ssh -L), on the same
// session: the striped launcher holds at most stalledBudget channels' windows more.
func TestStripedSlowReaders(t *testing.T) {
	b := startBenchSession(t, benchOptions{proxy: true, latency: 40})
	s, cfg, l := b.s, b.cfg, b.l
	rec := l.Line.Session
	one := e2e.StartLauncher(t, []string{"attach", "-F", cfg, b.alias, rec.ID, "--json", "--no-browser"}, true, "TETHER_STRIPES=1")

	stalled := func(name string, la *e2e.Launched) int64 {
		pid := la.Proc.Cmd.Process.Pid
		before := e2e.RSS(pid)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for range 6 {
			c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", la.Line.LocalPort))
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
			fmt.Fprintf(c, "GET %sbytes?n=%d HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: token %s\r\n\r\n", rec.BaseURL, 256<<20, rec.Token)
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReaderSize(c, 4096), nil)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("%s: download: %v %v", name, resp, err)
			}
			// Then nothing more is read.
		}
		// Wait for the launcher to fill what it buffers: its RSS unchanged for 2 s.
		last, since, peak := e2e.RSS(pid), time.Now(), int64(0)
		e2e.WaitFor(30*time.Second, func() bool {
			r := e2e.RSS(pid)
			peak = max(peak, r)
			if r > last+256<<10 || r < last-256<<10 {
				last, since = r, time.Now()
			}
			return time.Since(since) > 2*time.Second
		})
		t.Logf("%s: launcher RSS %.1f MB before, %.1f MB with 6 stalled downloads (peak %.1f MB)", name, float64(before)/1e6, float64(last)/1e6, float64(peak)/1e6)
		return peak
	}
	striped := stalled("striped", l)
	single := stalled("TETHER_STRIPES=1", one)
	log := serverLog(t, s.Home, rec.ID)
	t.Logf("groups joined: %d; striped %.1f MB vs one channel %.1f MB", strings.Count(log, `msg="striped connection"`), float64(striped)/1e6, float64(single)/1e6)
	// Beyond one channel each: the budget's channels (a window each) and the reorder
	// buffers (2 MiB a striped connection), with a quarter for slack.
	const window, reorder = 2 << 20, 2 << 20
	if budget := int64(stalledBudget*window+6*reorder) * 5 / 4; striped-single > budget {
		t.Errorf("six stalled downloads: the striped launcher held %.1f MB more than one channel each; want at most %.1f MB (%d channels' windows and 6 reorder buffers)", float64(striped-single)/1e6, float64(budget)/1e6, stalledBudget)
	}
}

// stalledBudget is the channels beyond one a connection that the launcher may open for
// a session's connections together (launcher/stripes.go's stripeBudget).
const stalledBudget = 14
