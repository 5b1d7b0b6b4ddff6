//go:build unix

package faults

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tether-dev/tether/e2e"
)

// thousand is how many connections TestTunnelThousandConnections opens at once.
const thousand = 1000

// appPool is how many idle connections to the app the server's proxy may keep
// (tokenserver/proxy.go: MaxIdleConnsPerHost).
const appPool = 256

// TestTunnelThousandConnections: 1,000 connections at once through one launcher's
// local port to the app: first 1,000 requests released together (a burst), then 1,000
// requests the app holds for 3 s, so all 1,000 are open at the same moment. Every one
// is answered correctly; afterwards the launcher's and the server's open files are
// back where they were (no leak). Times and RSS are logged.
func TestTunnelThousandConnections(t *testing.T) {
	e2e.Need(t, "sshd", "openssh-server") // before asking for files this test may not run without
	// Each connection costs a descriptor in the launcher, two in the server (the
	// client's and the app's) and one in sshd and in the app: children inherit this.
	if lim := e2e.RaiseFileLimit(); lim < 3*thousand+512 {
		t.Fatalf("RLIMIT_NOFILE is %d; this test needs %d open files: raise the hard limit (ulimit -Hn)", lim, 3*thousand+512)
	}
	b := startBenchSession(t, benchOptions{})
	lpid, spid := b.launcherPID(), b.serverPID()
	if _, err := b.waitAnswers(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	idleL, errL := b.stats("launch", lpid)
	idleS, errS := b.stats("serve", spid)
	if errL != nil || errS != nil {
		t.Fatalf("TETHER_DEBUG_STATS: %v %v", errL, errS)
	}
	t.Logf("idle: launcher %s; server %s", fmtStats(idleL), fmtStats(idleS))

	for _, phase := range []struct {
		name, path string
		hold       time.Duration
	}{
		{"burst", "small", 0},
		{"held 3 s", "hold?ms=3000", 3 * time.Second},
	} {
		var peakL, peakS procStats
		var peakMu sync.Mutex
		sampleCtx, stopSampling := context.WithCancel(context.Background())
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			for sampleCtx.Err() == nil {
				l := procStats{FDs: e2e.OpenFDs(lpid), RSS: e2e.RSS(lpid)}
				s := procStats{FDs: e2e.OpenFDs(spid), RSS: e2e.RSS(spid)}
				peakMu.Lock()
				peakL.FDs, peakL.RSS = max(peakL.FDs, l.FDs), max(peakL.RSS, l.RSS)
				peakS.FDs, peakS.RSS = max(peakS.FDs, s.FDs), max(peakS.RSS, s.RSS)
				peakMu.Unlock()
				sleepCtx(sampleCtx, 50*time.Millisecond)
			}
		}()
		lat, failures, took := thousandRequests(b, phase.path)
		stopSampling()
		<-sampled
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		var p50, p99, worst time.Duration
		if len(lat) > 0 {
			p50, p99, worst = lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
		}
		t.Logf("%s: %d requests at once, %d answered correctly in %s (per request: p50 %s, p99 %s, worst %s); peak launcher %d fds, RSS %.1f MB; peak server %d fds, RSS %.1f MB",
			phase.name, thousand, len(lat), e2e.FmtDur(took), e2e.FmtDur(p50), e2e.FmtDur(p99), e2e.FmtDur(worst),
			peakL.FDs, float64(peakL.RSS)/1e6, peakS.FDs, float64(peakS.RSS)/1e6)
		for i, f := range failures {
			if i == 10 {
				t.Errorf("… and %d more failures", len(failures)-10)
				break
			}
			t.Errorf("%s: %s", phase.name, f)
		}
		if len(lat) != thousand {
			t.Fatalf("%s: %d of %d requests answered correctly", phase.name, len(lat), thousand)
		}
		if phase.hold > 0 && peakL.FDs < idleL.FDs+thousand {
			t.Errorf("%s: the launcher had at most %d fds open (idle %d): the %d connections were not all open at once", phase.name, peakL.FDs, idleL.FDs, thousand)
		}
		if took > 60*time.Second {
			t.Errorf("%s: %s to answer %d requests; want well under a minute", phase.name, e2e.FmtDur(took), thousand)
		}
		// Every connection is closed again on both sides, but for the server's pool
		// of idle keep-alive connections to the app (tokenserver's proxy keeps up to
		// appPool for 90 s).
		var endL, endS, pooled int
		if !e2e.WaitFor(15*time.Second, func() bool {
			endL, endS, pooled = e2e.OpenFDs(lpid), e2e.OpenFDs(spid), e2e.SocketsTo(spid, b.appPort)
			return endL <= idleL.FDs+2 && endS-pooled <= idleS.FDs+2 && pooled <= appPool
		}) {
			t.Errorf("%s: 15 s later the launcher has %d fds (idle %d), the server %d (idle %d) of which %d to the app (pool at most %d)",
				phase.name, endL, idleL.FDs, endS, idleS.FDs, pooled, appPool)
		}
	}
	endL, _ := b.stats("launch", lpid)
	endS, _ := b.stats("serve", spid)
	pooled := e2e.SocketsTo(spid, b.appPort)
	t.Logf("after: launcher %s; server %s (%d idle connections to the app)", fmtStats(endL), fmtStats(endS), pooled)
	// A pooled connection has two goroutines (its read and write loops).
	if endL.Goroutines > idleL.Goroutines+4 || endS.Goroutines-2*pooled > idleS.Goroutines+4 {
		t.Errorf("goroutines grew: launcher %d → %d, server %d → %d (%d of them the pool's)", idleL.Goroutines, endL.Goroutines, idleS.Goroutines, endS.Goroutines, 2*pooled)
	}
	if err := b.appUnchanged(); err != nil {
		t.Error(err)
	}
}

// thousandRequests sends `thousand` GETs of path at once, each on its own connection,
// and returns the latencies of those answered correctly, the failures and the time
// until the last one finished.
func thousandRequests(b *benchSession, path string) ([]time.Duration, []string, time.Duration) {
	client := &http.Client{Timeout: 90 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, MaxIdleConnsPerHost: -1}}
	defer client.CloseIdleConnections()
	var (
		mu       sync.Mutex
		lat      []time.Duration
		failures []string
		wg       sync.WaitGroup
		ready    atomic.Int32
	)
	release := make(chan struct{})
	for i := 0; i < thousand; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodGet, b.base+path, nil)
			req.Header.Set("Authorization", b.auth)
			ready.Add(1)
			<-release
			t0 := time.Now()
			resp, err := client.Do(req)
			var body []byte
			if err == nil {
				body, err = io.ReadAll(resp.Body)
				resp.Body.Close()
				if err == nil && (resp.StatusCode != 200 || len(body) != 128 || body[0] != 'a') {
					err = fmt.Errorf("%s, %d bytes", resp.Status, len(body))
				}
			}
			d := time.Since(t0)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failures = append(failures, fmt.Sprintf("after %s: %v", e2e.FmtDur(d), err))
				return
			}
			lat = append(lat, d)
		}()
	}
	e2e.WaitFor(10*time.Second, func() bool { return ready.Load() == thousand })
	start := time.Now()
	close(release)
	wg.Wait()
	return lat, failures, time.Since(start)
}
