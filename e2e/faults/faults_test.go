//go:build unix

package faults

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-dev/tether/e2e"
)

// Fault campaign bounds: a fresh request must succeed this soon after a hard drop
// ends, and after a silent one starts.
const (
	hardBound   = 5 * time.Second
	silentBound = 20 * time.Second
)

// faultCount is how many faults TestFaultCampaign makes: TETHER_FAULTS (`just faults`
// sets 100), else 20, which keeps the test near 2 minutes in CI (the e2e package must
// stay well inside go test's 10-minute default timeout).
func faultCount(t *testing.T) int {
	if v := os.Getenv("TETHER_FAULTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 6 {
			t.Fatalf("TETHER_FAULTS=%q: want a number of faults, at least 6", v)
		}
		return n
	}
	return 20
}

// faultSeed is TETHER_FAULTS_SEED (to replay a run), else the clock.
func faultSeed(t *testing.T) uint64 {
	if v := os.Getenv("TETHER_FAULTS_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("TETHER_FAULTS_SEED=%q: want a number", v)
		}
		return n
	}
	return uint64(time.Now().UnixNano())
}

// faultResult is one fault of the campaign and what the session did.
type faultResult struct {
	kind, class, detail string
	took                time.Duration // the fault itself, until the network was whole
	back                time.Duration // from the end of the fault to a fresh request answered
	fromStart           time.Duration // from the start of the fault to that answer
	wsSurvived          bool
	dlSurvived          bool
}

// TestFaultCampaign: one `tether launch` session of the bench app through Toxiproxy
// and sshd, with a WebSocket echoing and a download running all along, goes through a
// seeded series of random faults: hard drops (RST, FIN after a few bytes, the proxy
// closed, sshd's connection processes killed, a flapping link, a storm of drops back
// to back), silent drops (every byte dropped for
// 2-12 s, sshd's processes stopped) and spikes (latency up to 1.5 s each way, tiny
// segments). After each: a fresh request to the same local URL succeeds (hard: within
// 5 s of the end of the fault; silent: within 20 s of its start); the app was never
// restarted; the WebSocket and the download rode out a spike and came back after a
// drop, never hung and never delivered a wrong byte. At the end, the launcher's and the
// server's open files and goroutines have not grown since the first faults.
// TETHER_FAULTS=N sets the number (default 30; `just faults` runs 100),
// TETHER_FAULTS_SEED replays a run, TETHER_FAULTS_KINDS=a,b draws from those kinds only.
func TestFaultCampaign(t *testing.T) {
	n, seed := faultCount(t), faultSeed(t)
	t.Logf("campaign: %d faults, seed %d (replay: TETHER_FAULTS=%d TETHER_FAULTS_SEED=%d go test -run TestFaultCampaign ./e2e/faults/)", n, seed, n, seed)
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	// The launcher picks its stripes from the round trips it measures, and a latency
	// spike makes it stripe a connection on loopback too: the goroutines the campaign
	// compares would then depend on when its connections were opened. So the campaign
	// runs with a fixed 4 stripes (unless the run sets TETHER_STRIPES), which also puts
	// striped connections through every fault.
	var stripes []string
	if _, ok := os.LookupEnv("TETHER_STRIPES"); !ok {
		stripes = []string{"TETHER_STRIPES=4"}
	}
	b := startBenchSession(t, benchOptions{proxy: true, env: stripes})
	if _, err := b.waitAnswers(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	lpid, spid := b.launcherPID(), b.serverPID()
	idleL, errL := b.stats("launch", lpid)
	idleS, errS := b.stats("serve", spid)
	if errL != nil || errS != nil {
		t.Fatalf("TETHER_DEBUG_STATS: %v %v", errL, errS)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	ws, dl := &streamState{name: "websocket"}, &streamState{name: "download"}
	wg.Add(2)
	go func() { defer wg.Done(); b.runWebSocket(ctx, ws) }()
	go func() { defer wg.Done(); b.runDownload(ctx, dl) }()
	stopTraffic := func() { cancel(); wg.Wait() }
	t.Cleanup(stopTraffic)
	if !e2e.WaitFor(15*time.Second, func() bool { return ws.okSince(time.Time{}) && dl.okSince(time.Time{}) }) {
		t.Fatal("the WebSocket and the download did not start")
	}

	var results []faultResult
	var warmL, warmS procStats
	warmAt := min(5, n/3)
	start := time.Now()
	for i := 1; i <= n; i++ {
		time.Sleep(time.Duration(200+r.IntN(1300)) * time.Millisecond)
		k := pickFault(r)
		t0 := time.Now()
		restored, detail, err := k.apply(b, r)
		if err != nil {
			t.Fatalf("fault %d (%s): %v", i, k.name, err)
		}
		backAt, err := b.waitAnswers(30 * time.Second)
		if err != nil {
			t.Fatalf("fault %d (%s: %s): %v; launcher stderr:\n%s", i, k.name, detail, err, b.l.Stderr.String())
		}
		res := faultResult{kind: k.name, class: k.class, detail: detail, took: restored.Sub(t0),
			back: max(0, backAt.Sub(restored)), fromStart: backAt.Sub(t0)}
		switch k.class {
		case "hard":
			if res.back > hardBound {
				t.Errorf("fault %d (%s: %s): the URL answered %s after the fault ended; want ≤ %v", i, k.name, detail, e2e.FmtDur(res.back), hardBound)
			}
		case "silent":
			if res.fromStart > silentBound {
				t.Errorf("fault %d (%s: %s): the URL answered %s after the silence began; want ≤ %v", i, k.name, detail, e2e.FmtDur(res.fromStart), silentBound)
			}
		case "spike":
			if res.back > hardBound {
				t.Errorf("fault %d (%s: %s): the URL answered %s after the spike; want ≤ %v", i, k.name, detail, e2e.FmtDur(res.back), hardBound)
			}
		}
		if err := b.appUnchanged(); err != nil {
			t.Fatalf("fault %d (%s): %v", i, k.name, err)
		}
		// The streams work again: after a spike, the same ones; after a drop (which
		// ends the SSH connection and every channel on it), reopened ones.
		if k.class == "spike" {
			if !e2e.WaitFor(15*time.Second, func() bool { return ws.okSince(backAt) && dl.okSince(backAt) }) {
				t.Errorf("fault %d (%s: %s): the WebSocket (%v) or the download (%v) made no progress within 15 s of the spike",
					i, k.name, detail, ws.okSince(backAt), dl.okSince(backAt))
			}
			res.wsSurvived, res.dlSurvived = !ws.failedSince(t0), !dl.failedSince(t0)
			if !res.wsSurvived || !res.dlSurvived {
				t.Errorf("fault %d (%s: %s): a spike broke the WebSocket (%v) or the download (%v); launcher stderr:\n%s",
					i, k.name, detail, !res.wsSurvived, !res.dlSurvived, lastLinesOf(b.l.Stderr.String(), 6))
			}
		} else if !e2e.WaitFor(20*time.Second, func() bool { return ws.reopenedSince(t0) && dl.reopenedSince(t0) }) {
			t.Errorf("fault %d (%s: %s): the WebSocket (%v) or the download (%v) was not reopened and working within 20 s of the URL",
				i, k.name, detail, ws.reopenedSince(t0), dl.reopenedSince(t0))
		}
		results = append(results, res)
		t.Logf("fault %3d %-12s %-6s back %6s after the fault, %6s from its start; ws %s, download %s; %s", i, k.name, k.class,
			e2e.FmtDur(res.back), e2e.FmtDur(res.fromStart), survived(res.wsSurvived), survived(res.dlSurvived), detail)
		if i == warmAt {
			warmL, _ = b.stats("launch", lpid)
			warmS, _ = b.stats("serve", spid)
		}
		if t.Failed() {
			break
		}
	}
	elapsed := time.Since(start)
	// Compare with the same traffic running: once settled, the streams are up again.
	time.Sleep(2 * time.Second)
	endL, errL := b.stats("launch", lpid)
	endS, errS := b.stats("serve", spid)
	if errL != nil || errS != nil {
		t.Errorf("TETHER_DEBUG_STATS at the end: %v %v", errL, errS)
	}
	stopTraffic()
	for _, st := range []*streamState{ws, dl} {
		opens, failures, broken := st.snapshot()
		t.Logf("%s: opened %d times, %d failures", st.name, opens, failures)
		for _, d := range broken {
			t.Errorf("%s: %s", st.name, d)
		}
	}
	// And idle again, as before the traffic started.
	var idleEndL, idleEndS procStats
	e2e.WaitFor(10*time.Second, func() bool {
		idleEndL, _ = b.stats("launch", lpid)
		idleEndS, _ = b.stats("serve", spid)
		return idleEndL.FDs <= idleL.FDs && idleEndS.FDs <= idleS.FDs &&
			idleEndL.Goroutines <= idleL.Goroutines+2 && idleEndS.Goroutines <= idleS.Goroutines+2
	})
	sshdConns := len(b.s.ConnectionPIDs())

	summarizeFaults(t, results, elapsed)
	t.Logf("launcher: idle %s | after %d faults %s | after all %s | idle at the end %s", fmtStats(idleL), warmAt, fmtStats(warmL), fmtStats(endL), fmtStats(idleEndL))
	t.Logf("server:   idle %s | after %d faults %s | after all %s | idle at the end %s", fmtStats(idleS), warmAt, fmtStats(warmS), fmtStats(endS), fmtStats(idleEndS))
	t.Logf("sshd connection processes at the end: %d; launcher: %d lost, %d back", sshdConns, b.lost(), strings.Count(b.l.Stderr.String(), "back:"))
	// Growth bounds: a few fds and goroutines of slack for timing (a request in flight,
	// a keepalive); a leak per fault would exceed them within the campaign.
	for _, c := range []struct {
		who        string
		base, end  procStats
		fds, gorts int
	}{
		{"launcher, traffic on", warmL, endL, 6, 12}, {"server, traffic on", warmS, endS, 6, 12},
		{"launcher, idle", idleL, idleEndL, 2, 4}, {"server, idle", idleS, idleEndS, 2, 4},
	} {
		if c.end.FDs > c.base.FDs+c.fds || c.end.Goroutines > c.base.Goroutines+c.gorts {
			t.Errorf("%s: %s, then %s: grew beyond %d fds / %d goroutines", c.who, fmtStats(c.base), fmtStats(c.end), c.fds, c.gorts)
		}
	}
	if t.Failed() {
		t.Logf("launcher goroutines:\n%s", b.goroutineDump("launch", lpid))
		t.Logf("server goroutines:\n%s", b.goroutineDump("serve", spid))
	}
	if sshdConns > 2 {
		t.Errorf("%d sshd connection processes at the end; want the launcher's one connection (2)", sshdConns)
	}
}

func survived(ok bool) string {
	if ok {
		return "rode it out"
	}
	return "reopened"
}

func fmtStats(p procStats) string {
	return fmt.Sprintf("%d fds, %d goroutines, RSS %.1f MB, live heap %.1f MB", p.FDs, p.Goroutines, float64(p.RSS)/1e6, float64(p.HeapLive)/1e6)
}

func lastLinesOf(s string, n int) string {
	ls := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(ls[max(0, len(ls)-n):], "\n")
}

// summarizeFaults logs one line per kind: count, median and worst time back.
func summarizeFaults(t *testing.T, results []faultResult, elapsed time.Duration) {
	byKind := map[string][]faultResult{}
	var kinds []string
	for _, r := range results {
		if _, ok := byKind[r.kind]; !ok {
			kinds = append(kinds, r.kind)
		}
		byKind[r.kind] = append(byKind[r.kind], r)
	}
	sort.Strings(kinds)
	t.Logf("%d faults in %s:", len(results), elapsed.Round(time.Second))
	t.Logf("  %-12s %-6s %5s  %-27s %-27s %s", "kind", "class", "count", "back after end (med/worst)", "from start (med/worst)", "ws/download rode it out")
	for _, k := range kinds {
		var back, from []time.Duration
		wsOK, dlOK := 0, 0
		for _, r := range byKind[k] {
			back, from = append(back, r.back), append(from, r.fromStart)
			if r.wsSurvived {
				wsOK++
			}
			if r.dlSurvived {
				dlOK++
			}
		}
		bm, bw := medianMax(back)
		fm, fw := medianMax(from)
		t.Logf("  %-12s %-6s %5d  %-27s %-27s %d/%d, %d/%d", k, byKind[k][0].class, len(byKind[k]),
			e2e.FmtDur(bm)+" / "+e2e.FmtDur(bw), e2e.FmtDur(fm)+" / "+e2e.FmtDur(fw), wsOK, len(byKind[k]), dlOK, len(byKind[k]))
	}
}

// TestLaunchSurvivesDropDuringSessionCheck: the connection drops again while the
// launcher, just reconnected, checks that the session's server still answers (the
// campaign's flapping link can land there). The launcher must take it as one more
// drop and reconnect, not give up on the session: the same URL answers again and the
// launcher is still running.
func TestLaunchSurvivesDropDuringSessionCheck(t *testing.T) {
	b := startBenchSession(t, benchOptions{proxy: true})
	if _, err := b.waitAnswers(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	backs := func() int { return strings.Count(b.l.Stderr.String(), "back: reconnected to") }
	for round := 1; round <= 3; round++ {
		// Slow answers make the check after a reconnect last a few hundred ms.
		if err := b.proxy.AddToxic("slow", "latency", "downstream", map[string]any{"latency": 400}); err != nil {
			t.Fatal(err)
		}
		before := backs()
		if b.s.KillConnections() == 0 {
			t.Fatal("no sshd connection process to kill")
		}
		if !waitFor1ms(30*time.Second, func() bool { return backs() > before }) {
			t.Fatalf("round %d: no reconnect within 30 s; stderr:\n%s", round, b.l.Stderr.String())
		}
		killed := b.s.KillConnections() // while the check runs
		if err := b.proxy.RemoveToxic("slow"); err != nil {
			t.Fatal(err)
		}
		backAt, err := b.waitAnswers(15 * time.Second)
		time.Sleep(time.Second) // a launcher giving up would be gone by now
		select {
		case <-b.l.Proc.Done():
			t.Fatalf("round %d: the launcher exited after a drop during its session check; stderr:\n%s", round, b.l.Stderr.String())
		default:
		}
		if err != nil {
			t.Fatalf("round %d: %v; stderr:\n%s", round, err, b.l.Stderr.String())
		}
		t.Logf("round %d: killed %d sshd processes during the check; the URL answered again at %s", round, killed, backAt.Format("15:04:05.000"))
		if err := b.appUnchanged(); err != nil {
			t.Fatal(err)
		}
	}
	if s := b.l.Stderr.String(); strings.Contains(s, "does not answer") || strings.Contains(s, "cannot reach") {
		t.Errorf("the launcher gave up on the session at some point:\n%s", s)
	}
}

// waitFor1ms is WaitFor polling every millisecond, for races a 20 ms poll would miss.
func waitFor1ms(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}
