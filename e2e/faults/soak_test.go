//go:build unix

package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-dev/tether/e2e"
)

// soakSample is one row of the soak's table.
type soakSample struct {
	At       float64   `json:"at_s"`
	Launcher procStats `json:"launcher"`
	Server   procStats `json:"server"`
	Faults   int       `json:"faults"`
	Requests int64     `json:"requests"`
}

// TestSoak (`just soak`; only with TETHER_SOAK=DUR, never in CI): one session through
// Toxiproxy and sshd for DUR under mixed traffic (a WebSocket echoing every 50 ms, a
// never-ending download, page loads of six parallel requests every second, an 8 MiB
// download every 10 s) with a random fault of the campaign's kinds every minute. Every
// TETHER_SOAK_EVERY (default 30 s) it samples the launcher's and the server's RSS,
// heap, open files and goroutines; it prints the table, the slopes (least squares over
// all but the first fifth, the warm-up) and writes JSON to bench-results/ (or
// TETHER_SOAK_OUT). It fails when a request fails after the session came back, a
// stream hangs or gets a wrong byte, or open files or goroutines grow.
func TestSoak(t *testing.T) {
	durS := os.Getenv("TETHER_SOAK")
	if durS == "" {
		t.Skip("the soak runs only when asked: TETHER_SOAK=30m (just soak)")
	}
	dur, err := time.ParseDuration(durS)
	if err != nil || dur < time.Minute {
		t.Fatalf("TETHER_SOAK=%q: want a duration of at least 1m, e.g. 30m", durS)
	}
	every := 30 * time.Second
	if v := os.Getenv("TETHER_SOAK_EVERY"); v != "" {
		if every, err = time.ParseDuration(v); err != nil || every < time.Second {
			t.Fatalf("TETHER_SOAK_EVERY=%q: want a duration of at least 1s", v)
		}
	}
	seed := faultSeed(t)
	t.Logf("soak: %v, a sample every %v, fault seed %d", dur, every, seed)
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := startBenchSession(t, benchOptions{proxy: true})
	lpid, spid := b.launcherPID(), b.serverPID()

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	ws, dl := &streamState{name: "websocket"}, &streamState{name: "download"}
	var reqMu sync.Mutex
	var requests int64
	var reqFailures []string
	var inFault sync.Mutex // held while a fault and its recovery run: page-load failures then are expected
	faultEnd := time.Now()
	pageLoads := func() {
		defer wg.Done()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		n := 0
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			n++
			var pw sync.WaitGroup
			errs := make(chan error, 7)
			for i := 0; i < 6; i++ {
				pw.Add(1)
				go func() { defer pw.Done(); errs <- b.get("small") }()
			}
			if n%10 == 0 {
				pw.Add(1)
				go func() { defer pw.Done(); errs <- b.getBytes(8 << 20) }()
			}
			start := time.Now()
			pw.Wait()
			close(errs)
			if !inFault.TryLock() {
				continue // a fault is on: its own checks judge the session
			}
			calm := start.After(faultEnd)
			inFault.Unlock()
			reqMu.Lock()
			for err := range errs {
				requests++
				if err != nil && calm && ctx.Err() == nil {
					reqFailures = append(reqFailures, time.Now().Format("15:04:05 ")+err.Error())
				}
			}
			reqMu.Unlock()
		}
	}
	wg.Add(3)
	go func() { defer wg.Done(); b.runWebSocket(ctx, ws) }()
	go func() { defer wg.Done(); b.runDownload(ctx, dl) }()
	go pageLoads()
	stopTraffic := func() { cancel(); wg.Wait() }
	t.Cleanup(stopTraffic)

	var samples []soakSample
	faults := 0
	start := time.Now()
	sample := func() {
		l, _ := b.stats("launch", lpid)
		s, _ := b.stats("serve", spid)
		reqMu.Lock()
		n := requests
		reqMu.Unlock()
		sm := soakSample{At: time.Since(start).Seconds(), Launcher: l, Server: s, Faults: faults, Requests: n}
		samples = append(samples, sm)
		t.Logf("%7.0fs  launcher %5.1f MB RSS %5.1f MB live heap %3d fds %3d goroutines | server %5.1f MB RSS %5.1f MB live heap %3d fds %3d goroutines | %d faults, %d requests",
			sm.At, mb(l.RSS), mb(l.HeapLive), l.FDs, l.Goroutines, mb(s.RSS), mb(s.HeapLive), s.FDs, s.Goroutines, faults, n)
	}
	sample()
	nextSample, nextFault := start.Add(every), start.Add(time.Minute)
	for time.Since(start) < dur && !t.Failed() {
		time.Sleep(200 * time.Millisecond)
		if !time.Now().Before(nextFault) {
			k := pickFault(r)
			inFault.Lock()
			_, detail, err := k.apply(b, r)
			if err == nil {
				_, err = b.waitAnswers(30 * time.Second)
			}
			faultEnd = time.Now()
			inFault.Unlock()
			faults++
			if err != nil {
				t.Errorf("fault %d (%s: %s): %v", faults, k.name, detail, err)
			}
			if err := b.appUnchanged(); err != nil {
				t.Error(err)
			}
			nextFault = nextFault.Add(time.Minute)
		}
		if !time.Now().Before(nextSample) {
			sample()
			nextSample = nextSample.Add(every)
		}
	}
	sample()
	stopTraffic()
	for _, st := range []*streamState{ws, dl} {
		opens, failures, broken := st.snapshot()
		t.Logf("%s: opened %d times, %d failures", st.name, opens, failures)
		for _, d := range broken {
			t.Errorf("%s: %s", st.name, d)
		}
	}
	for i, f := range reqFailures {
		if i == 10 {
			t.Errorf("… and %d more failed requests", len(reqFailures)-10)
			break
		}
		t.Errorf("request failed while no fault was on: %s", f)
	}

	// Slopes over all but the warm-up (the first fifth).
	steady := samples[len(samples)/5:]
	slope := func(f func(soakSample) float64) float64 {
		var xs, ys []float64
		for _, s := range steady {
			xs, ys = append(xs, s.At/3600), append(ys, f(s))
		}
		return leastSquares(xs, ys)
	}
	slopes := map[string]float64{
		"launcher_rss_mb_per_hour":     slope(func(s soakSample) float64 { return mb(s.Launcher.RSS) }),
		"launcher_heap_mb_per_hour":    slope(func(s soakSample) float64 { return mb(s.Launcher.HeapInuse) }),
		"server_rss_mb_per_hour":       slope(func(s soakSample) float64 { return mb(s.Server.RSS) }),
		"server_heap_mb_per_hour":      slope(func(s soakSample) float64 { return mb(s.Server.HeapInuse) }),
		"launcher_fds_per_hour":        slope(func(s soakSample) float64 { return float64(s.Launcher.FDs) }),
		"server_fds_per_hour":          slope(func(s soakSample) float64 { return float64(s.Server.FDs) }),
		"launcher_goroutines_per_hour": slope(func(s soakSample) float64 { return float64(s.Launcher.Goroutines) }),
		"server_goroutines_per_hour":   slope(func(s soakSample) float64 { return float64(s.Server.Goroutines) }),
	}
	first, last := steady[0], samples[len(samples)-1]
	t.Logf("soak %v: %d faults, %d requests, WebSocket and download reopened after each drop", time.Since(start).Round(time.Second), faults, last.Requests)
	t.Logf("slopes after the warm-up (%d samples from %.0f s): launcher RSS %+.2f MB/h, live heap %+.2f MB/h, fds %+.2f/h, goroutines %+.2f/h; server RSS %+.2f MB/h, live heap %+.2f MB/h, fds %+.2f/h, goroutines %+.2f/h",
		len(steady), first.At, slopes["launcher_rss_mb_per_hour"], slopes["launcher_heap_mb_per_hour"], slopes["launcher_fds_per_hour"], slopes["launcher_goroutines_per_hour"],
		slopes["server_rss_mb_per_hour"], slopes["server_heap_mb_per_hour"], slopes["server_fds_per_hour"], slopes["server_goroutines_per_hour"])
	if err := writeSoakJSON(dur, every, seed, samples, slopes); err != nil {
		t.Error(err)
	}
	// Open files and goroutines: the same traffic is on at both ends, so the last
	// sample may exceed the first steady one only by what is in flight.
	for _, c := range []struct {
		who         string
		first, last procStats
	}{{"launcher", first.Launcher, last.Launcher}, {"server", first.Server, last.Server}} {
		if c.last.FDs > c.first.FDs+8 || c.last.Goroutines > c.first.Goroutines+16 {
			t.Errorf("%s grew: %s after the warm-up, %s at the end", c.who, fmtStats(c.first), fmtStats(c.last))
		}
	}
}

func mb(n int64) float64 { return float64(n) / 1e6 }

// leastSquares is the slope of the least-squares line through (xs, ys).
func leastSquares(xs, ys []float64) float64 {
	n := float64(len(xs))
	if n < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx, sy, sxx, sxy = sx+xs[i], sy+ys[i], sxx+xs[i]*xs[i], sxy+xs[i]*ys[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}

// getBytes downloads n bytes of the bench app's pattern on a fresh connection.
func (b *benchSession) getBytes(n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := newAuthRequest(ctx, b, fmt.Sprintf("bytes?n=%d", n))
	resp, err := fresh.Transport.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	buf := make([]byte, 64<<10)
	got := 0
	for {
		k, err := resp.Body.Read(buf)
		for i := 0; i < k; i++ {
			if buf[i] != byte(got+i) {
				return fmt.Errorf("bytes?n=%d: byte %d is %d", n, got+i, buf[i])
			}
		}
		got += k
		if err != nil {
			break
		}
	}
	if resp.StatusCode != 200 || got != n {
		return fmt.Errorf("bytes?n=%d: %s, %d bytes", n, resp.Status, got)
	}
	return nil
}

// writeSoakJSON writes the soak's samples and slopes to TETHER_SOAK_OUT or
// bench-results/soak-DATE.json in the module.
func writeSoakJSON(dur, every time.Duration, seed uint64, samples []soakSample, slopes map[string]float64) error {
	path := os.Getenv("TETHER_SOAK_OUT")
	if path == "" {
		dir := filepath.Join(e2e.ModuleRoot(), "bench-results")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		path = filepath.Join(dir, "soak-"+time.Now().UTC().Format("20060102-150405")+".json")
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	doc := map[string]any{
		"date":     time.Now().UTC().Format(time.RFC3339),
		"duration": dur.String(), "every": every.String(), "seed": seed,
		"machine": map[string]any{"cpus": runtime.NumCPU(), "kernel": strings.TrimSpace(string(kernel)), "go": runtime.Version()},
		"slopes":  slopes, "samples": samples,
	}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Printf("soak: JSON in %s\n", path)
	return nil
}
