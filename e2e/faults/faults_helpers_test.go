//go:build unix

package faults

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tether-dev/tether/e2e"
)

// benchSession is one `tether launch` of the bench app (this test binary run as its
// app: TestMain) through sshd, optionally through a Toxiproxy, with
// TETHER_DEBUG_STATS on for the launcher and the server.
type benchSession struct {
	s        *e2e.SSHD
	proxy    *e2e.ToxicProxy // nil: straight to sshd
	alias    string
	cfg      string // the ssh config file that reaches sshd (through the proxy) as alias
	l        *e2e.Launched
	base     string // http://127.0.0.1:PORT/BASE/
	auth     string // Authorization header value
	statsDir string
	app      int // the app's PID
	appPort  int // the app's TCP port on 127.0.0.1
}

// benchOptions shape startBenchSession's session.
type benchOptions struct {
	proxy bool // a Toxiproxy in front of sshd
	// latency (ms) is added each way on the proxy before the launch, so the launcher's
	// first channel opens see the round trip (it picks its stripes from them).
	latency int
	env     []string // more of the launcher's environment (KEY=VALUE)
}

// startBenchSession starts sshd, a Toxiproxy in front of it when o.proxy, and a
// launch of the bench app through them.
func startBenchSession(t *testing.T, o benchOptions) *benchSession {
	t.Helper()
	var tp *e2e.Toxiproxy
	if o.proxy {
		tp = e2e.StartToxiproxy(t) // first: it may skip the test
	}
	statsDir := t.TempDir()
	os.Chmod(statsDir, 0o755)
	s := e2e.StartSSHD(t, e2e.SSHDOptions{Env: map[string]string{"TETHER_DEBUG_STATS": statsDir}})
	e2e.StopAllOnCleanup(t, s)
	b := &benchSession{s: s, alias: s.Alias, statsDir: statsDir}
	b.cfg = s.Config
	if o.proxy {
		b.proxy = tp.Proxy("sshd", s.Addr())
		for _, stream := range []string{"upstream", "downstream"} {
			if o.latency > 0 {
				if err := b.proxy.AddToxic("latency_"+stream, "latency", stream, map[string]any{"latency": o.latency}); err != nil {
					t.Fatal(err)
				}
			}
		}
		b.alias = "tether-faults"
		b.cfg = s.ThroughProxy(t, b.proxy, b.alias)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	portFile := filepath.Join(t.TempDir(), "app.port")
	args := []string{"launch", "-F", b.cfg, b.alias, "--json", "--no-browser", "--", self, e2e.BenchAppArg, "{port}", portFile}
	b.l = e2e.StartLauncher(t, args, true, append([]string{"TETHER_DEBUG_STATS=" + statsDir}, o.env...)...)
	base := b.l.Line.Session.BaseURL
	if base == "" {
		base = "/"
	}
	b.base = fmt.Sprintf("http://127.0.0.1:%d%s", b.l.Line.LocalPort, base)
	b.auth = "token " + b.l.Line.Session.Token
	apps := e2e.Descendants(b.l.Line.Session.PID, "faults.test")
	if len(apps) != 1 {
		t.Fatalf("app processes under the server %d: %v", b.l.Line.Session.PID, apps)
	}
	b.app = apps[0]
	port, err := os.ReadFile(portFile)
	if err != nil {
		t.Fatalf("the app did not write its port: %v", err)
	}
	fmt.Sscan(string(port), &b.appPort)
	return b
}

func (b *benchSession) launcherPID() int { return b.l.Proc.Cmd.Process.Pid }
func (b *benchSession) serverPID() int   { return b.l.Line.Session.PID }

// lost counts the launcher's "connection to HOST lost" lines so far.
func (b *benchSession) lost() int {
	return strings.Count(b.l.Stderr.String(), "connection to "+b.alias+" lost")
}

// appUnchanged reports whether the app and its server are the same processes as at
// the start (never restarted).
func (b *benchSession) appUnchanged() error {
	now := e2e.Descendants(b.serverPID(), "faults.test")
	if !e2e.Alive(b.serverPID()) || len(now) != 1 || now[0] != b.app {
		return fmt.Errorf("the app was restarted or is gone: server %d alive %v, app before %d, now %v", b.serverPID(), e2e.Alive(b.serverPID()), b.app, now)
	}
	return nil
}

// fresh is a client that opens a new connection for each request.
var fresh = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// get does one fresh GET of path and checks the answer.
func (b *benchSession) get(path string) error {
	req, _ := http.NewRequest(http.MethodGet, b.base+path, nil)
	req.Header.Set("Authorization", b.auth)
	resp, err := fresh.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 || len(body) != 128 || body[0] != 'a' {
		return fmt.Errorf("GET %s: %s, %d bytes", path, resp.Status, len(body))
	}
	return nil
}

// waitAnswers polls a fresh GET of small until it succeeds or limit passes, and
// returns when it first succeeded.
func (b *benchSession) waitAnswers(limit time.Duration) (time.Time, error) {
	deadline := time.Now().Add(limit)
	var err error
	for time.Now().Before(deadline) {
		if err = b.get("small"); err == nil {
			return time.Now(), nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Time{}, fmt.Errorf("the local URL did not answer within %v: %v", limit, err)
}

// procStats is a process's resource use at one moment.
type procStats struct {
	FDs        int   `json:"fds"`
	Goroutines int   `json:"goroutines"`
	RSS        int64 `json:"rss"`
	HeapInuse  int64 `json:"heap_inuse"`
	HeapLive   int64 `json:"heap_live"` // what survived the latest GC
}

// stats reads pid's fds and RSS from /proc and its goroutines and heap from the
// TETHER_DEBUG_STATS file of command cmd, waiting (up to 5 s) for a sample written
// after now.
func (b *benchSession) stats(cmd string, pid int) (procStats, error) {
	now := time.Now()
	path := filepath.Join(b.statsDir, fmt.Sprintf("tether-%s-%d.json", cmd, pid))
	var st struct {
		Time       time.Time `json:"time"`
		Goroutines int       `json:"goroutines"`
		HeapInuse  int64     `json:"heap_inuse"`
		HeapLive   int64     `json:"heap_live"`
	}
	ok := e2e.WaitFor(5*time.Second, func() bool {
		data, err := os.ReadFile(path)
		return err == nil && json.Unmarshal(data, &st) == nil && st.Time.After(now)
	})
	ps := procStats{FDs: e2e.OpenFDs(pid), RSS: e2e.RSS(pid), Goroutines: st.Goroutines, HeapInuse: st.HeapInuse, HeapLive: st.HeapLive}
	if !ok {
		return ps, fmt.Errorf("no fresh stats in %s", path)
	}
	return ps, nil
}

// goroutineDump is the latest goroutine profile of command cmd's process pid.
func (b *benchSession) goroutineDump(cmd string, pid int) string {
	data, _ := os.ReadFile(filepath.Join(b.statsDir, fmt.Sprintf("tether-%s-%d.goroutines", cmd, pid)))
	return string(data)
}

// streamState is what a long-lived stream (a WebSocket echo, a download) went through.
type streamState struct {
	mu       sync.Mutex
	name     string
	opens    int
	openedAt time.Time // the latest open
	lastOK   time.Time
	failures []time.Time
	lastErr  error
	broken   []string // hangs and corrupt data: defects, whatever the fault
}

func (st *streamState) opened() {
	st.mu.Lock()
	st.opens++
	st.openedAt = time.Now()
	st.mu.Unlock()
}

func (st *streamState) ok() {
	st.mu.Lock()
	st.lastOK = time.Now()
	st.mu.Unlock()
}

func (st *streamState) failed(err error) {
	st.mu.Lock()
	st.failures = append(st.failures, time.Now())
	st.lastErr = err
	st.mu.Unlock()
}

func (st *streamState) defect(format string, a ...any) {
	st.mu.Lock()
	st.broken = append(st.broken, fmt.Sprintf(time.Now().Format("15:04:05.000 ")+format, a...))
	st.mu.Unlock()
}

// failedSince reports whether the stream failed at or after t.
func (st *streamState) failedSince(t time.Time) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.failures) > 0 && !st.failures[len(st.failures)-1].Before(t)
}

// reopenedSince reports whether the stream was opened again after t and has worked
// since.
func (st *streamState) reopenedSince(t time.Time) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.openedAt.After(t) && st.lastOK.After(st.openedAt)
}

// okSince reports whether the stream worked after t.
func (st *streamState) okSince(t time.Time) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.lastOK.After(t)
}

func (st *streamState) snapshot() (opens, failures int, broken []string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.opens, len(st.failures), append([]string(nil), st.broken...)
}

// stallLimit is how long a stream may go without progress and without an error before
// it counts as hung: well beyond the longest fault (a 12 s silence) plus detection.
const stallLimit = 45 * time.Second

// runWebSocket keeps a WebSocket echo open until ctx ends: a message every 50 ms, each
// echo checked; reopened after a failure.
func (b *benchSession) runWebSocket(ctx context.Context, st *streamState) {
	wsURL := "ws" + strings.TrimPrefix(b.base, "http") + "ws"
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	h := http.Header{"Authorization": {b.auth}}
	for seq := 0; ctx.Err() == nil; {
		c, _, err := d.DialContext(ctx, wsURL, h)
		if err != nil {
			if ctx.Err() == nil {
				st.failed(err)
			}
			sleepCtx(ctx, 200*time.Millisecond)
			continue
		}
		st.opened()
		stop := context.AfterFunc(ctx, func() { c.Close() })
		for ctx.Err() == nil {
			seq++
			msg := fmt.Sprintf("echo %d", seq)
			c.SetWriteDeadline(time.Now().Add(stallLimit))
			if err = c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
				break
			}
			c.SetReadDeadline(time.Now().Add(stallLimit))
			var got []byte
			if _, got, err = c.ReadMessage(); err != nil {
				break
			}
			if string(got) != msg {
				st.defect("websocket: sent %q, got %q", msg, got)
				err = errors.New("wrong echo")
				break
			}
			st.ok()
			sleepCtx(ctx, 50*time.Millisecond)
		}
		stop()
		c.Close()
		if ctx.Err() == nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				st.defect("websocket: no echo and no error for %v (hung)", stallLimit)
			}
			st.failed(err)
		}
	}
}

// runDownload keeps a never-ending download running until ctx ends, read at about
// 3 MB/s, every byte checked; restarted after a failure.
func (b *benchSession) runDownload(ctx context.Context, st *streamState) {
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, ResponseHeaderTimeout: stallLimit}}
	buf := make([]byte, 32<<10)
	for ctx.Err() == nil {
		rctx, cancel := context.WithCancel(ctx)
		req, _ := http.NewRequestWithContext(rctx, http.MethodGet, b.base+"bytes?n=1099511627776", nil)
		req.Header.Set("Authorization", b.auth)
		resp, err := client.Do(req)
		if err != nil || resp.StatusCode != 200 {
			if err == nil {
				resp.Body.Close()
				err = errors.New(resp.Status)
			}
			cancel()
			if ctx.Err() == nil {
				st.failed(err)
			}
			sleepCtx(ctx, 200*time.Millisecond)
			continue
		}
		st.opened()
		// A read that makes no progress for stallLimit is a hang: cancel it and say so.
		var hung bool
		var hmu sync.Mutex
		watchdog := time.AfterFunc(stallLimit, func() { hmu.Lock(); hung = true; hmu.Unlock(); cancel() })
		var off int64
		for {
			n, rerr := resp.Body.Read(buf)
			for i := 0; i < n; i++ {
				if buf[i] != byte(off+int64(i)) {
					st.defect("download: byte %d is %d, want %d", off+int64(i), buf[i], byte(off+int64(i)))
					rerr = errors.New("corrupt data")
					break
				}
			}
			off += int64(n)
			if n > 0 {
				watchdog.Reset(stallLimit)
				st.ok()
			}
			if rerr != nil {
				err = rerr
				break
			}
			sleepCtx(ctx, 10*time.Millisecond)
		}
		watchdog.Stop()
		resp.Body.Close()
		cancel()
		if ctx.Err() == nil {
			hmu.Lock()
			if hung {
				st.defect("download: no byte and no error for %v (hung) at byte %d", stallLimit, off)
			}
			hmu.Unlock()
			st.failed(err)
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// faultKind is one way to break (or strain) the link between the launcher and sshd.
type faultKind struct {
	name   string
	class  string // "hard", "silent" or "spike" (the session must ride it out)
	weight int
	// apply makes the fault and undoes it, returning when the network is whole again
	// (restored); detail says what exactly was done.
	apply func(b *benchSession, r *rand.Rand) (restored time.Time, detail string, err error)
}

// waitLost waits up to limit for the launcher to report one more lost connection
// than before.
func (b *benchSession) waitLost(before int, limit time.Duration) bool {
	return e2e.WaitFor(limit, func() bool { return b.lost() > before })
}

// faultKinds: hard drops (RST, FIN, the server's processes killed), silent drops
// (traffic blackholed, sshd's processes stopped) and spikes (latency, tiny segments)
// that must not break anything.
var faultKinds = []faultKind{
	{"reset_peer", "hard", 2, func(b *benchSession, r *rand.Rand) (time.Time, string, error) {
		before := b.lost()
		if err := b.proxy.AddToxic("reset", "reset_peer", "downstream", map[string]any{"timeout": 0}); err != nil {
			return time.Time{}, "", err
		}
		noticed := b.waitLost(before, 10*time.Second)
		err := b.proxy.RemoveToxic("reset")
		return time.Now(), fmt.Sprintf("TCP RST (noticed %v)", noticed), err
	}},
	{"limit_data", "hard", 1, func(b *benchSession, r *rand.Rand) (time.Time, string, error) {
		before := b.lost()
		n := 1 + r.IntN(64<<10)
		if err := b.proxy.AddToxic("limit", "limit_data", "downstream", map[string]any{"bytes": n}); err != nil {
			return time.Time{}, "", err
		}
		noticed := b.waitLost(before, 10*time.Second)
		err := b.proxy.RemoveToxic("limit")
		return time.Now(), fmt.Sprintf("closed after %d bytes (noticed %v)", n, noticed), err
	}},
	{"proxy_close", "hard", 2, func(b *benchSession, r *rand.Rand) (time.Time, string, error) {
		off := time.Duration(r.IntN(2000)) * time.Millisecond
		if err := b.proxy.SetEnabled(false); err != nil {
			return time.Time{}, "", err
		}
		time.Sleep(off)
		err := b.proxy.SetEnabled(true)
		return time.Now(), fmt.Sprintf("closed, listener down %v", off), err
	}},
	{"kill_sshd", "hard", 2, func(b *benchSession, r *rand.Rand) (time.Time, string, error) {
		n := b.s.KillConnections()
		if n == 0 {
			return time.Time{}, "", errors.New("no sshd connection process to kill")
		}
		return time.Now(), fmt.Sprintf("SIGKILL %d sshd processes", n), nil
	}},
	{"flap", "hard", 2, func(b *benchSession, r *rand.Rand) (time.Time, string, error) {
		// A flaky link: every connection dies as soon as sshd forks for it, at any
		// stage (key exchange, authentication, the session check after a reconnect).
		// At most 2.5 s: reconnect attempts come at about 0, 0.25, 0.75, 1.75 and
		// 3.75 s (±20%), so the first one after the flapping is at most 2.4 s later.
		hold := time.Duration(1000+r.IntN(1500)) * time.Millisecond
		killed := 0
		for end := time.Now().Add(hold); time.Now().Before(end); time.Sleep(2 * time.Millisecond) {
			killed += b.s.KillConnections()
		}
		return time.Now(), fmt.Sprintf("every sshd connection process killed at once for %v (%d)", hold, killed), nil
	}},
	{"storm", "hard", 1, func(b *benchSession, r *rand.Rand) (time.Time, string, error) {
		// Hard drops back to back, the next before the launcher is done with the last.
		var names []string
		for n := 3 + r.IntN(4); n > 0; n-- {
			switch r.IntN(3) {
			case 0:
				b.s.KillConnections()
				names = append(names, "kill")
			case 1:
				if err := b.proxy.AddToxic("storm-reset", "reset_peer", "downstream", map[string]any{"timeout": 0}); err != nil {
					return time.Time{}, "", err
				}
				time.Sleep(time.Duration(r.IntN(300)) * time.Millisecond)
				if err := b.proxy.RemoveToxic("storm-reset"); err != nil {
					return time.Time{}, "", err
				}
				names = append(names, "reset")
			default:
				if err := b.proxy.SetEnabled(false); err != nil {
					return time.Time{}, "", err
				}
				time.Sleep(time.Duration(r.IntN(300)) * time.Millisecond)
				if err := b.proxy.SetEnabled(true); err != nil {
					return time.Time{}, "", err
				}
				names = append(names, "close")
			}
			time.Sleep(time.Duration(r.IntN(500)) * time.Millisecond)
		}
		return time.Now(), "drops 0-0.5 s apart: " + strings.Join(names, ", "), nil
	}},
	{"blackhole", "silent", 2, func(b *benchSession, r *rand.Rand) (time.Time, string, error) {
		hold := time.Duration(2000+r.IntN(10000)) * time.Millisecond
		for _, dir := range []string{"upstream", "downstream"} {
			if err := b.proxy.AddToxic("blackhole-"+dir, "timeout", dir, map[string]any{"timeout": 0}); err != nil {
				return time.Time{}, "", err
			}
		}
		time.Sleep(hold)
		var err error
		for _, dir := range []string{"upstream", "downstream"} {
			err = errors.Join(err, b.proxy.RemoveToxic("blackhole-"+dir))
		}
		return time.Now(), fmt.Sprintf("every byte dropped for %v, then closed", hold), err
	}},
	{"sigstop_sshd", "silent", 1, func(b *benchSession, r *rand.Rand) (time.Time, string, error) {
		start := time.Now()
		before := b.lost()
		frozen := b.s.ConnectionPIDs()
		if len(frozen) == 0 {
			return time.Time{}, "", errors.New("no sshd connection process to stop")
		}
		for _, pid := range frozen {
			syscall.Kill(pid, syscall.SIGSTOP)
		}
		noticed := b.waitLost(before, 30*time.Second)
		for _, pid := range frozen {
			syscall.Kill(pid, syscall.SIGKILL)
			syscall.Kill(pid, syscall.SIGCONT)
		}
		// New connections worked all along: the network was whole from the start.
		return start, fmt.Sprintf("SIGSTOP %d sshd processes (noticed %v)", len(frozen), noticed), nil
	}},
	{"latency", "spike", 2, func(b *benchSession, r *rand.Rand) (time.Time, string, error) {
		lat := 100 + r.IntN(1400)
		hold := time.Duration(2000+r.IntN(3000)) * time.Millisecond
		for _, dir := range []string{"upstream", "downstream"} {
			if err := b.proxy.AddToxic("latency-"+dir, "latency", dir, map[string]any{"latency": lat, "jitter": lat / 10}); err != nil {
				return time.Time{}, "", err
			}
		}
		// The URL answers during the spike too, only slower.
		var during error
		deadline := time.Now().Add(hold)
		for time.Now().Before(deadline) && during == nil {
			during = b.getSlow("small", 20*time.Second)
		}
		time.Sleep(time.Until(deadline))
		var err error
		for _, dir := range []string{"upstream", "downstream"} {
			err = errors.Join(err, b.proxy.RemoveToxic("latency-"+dir))
		}
		if during != nil {
			err = errors.Join(err, fmt.Errorf("during the spike: %w", during))
		}
		return time.Now(), fmt.Sprintf("+%d ms each way for %v", lat, hold), err
	}},
	{"slicer", "spike", 1, func(b *benchSession, r *rand.Rand) (time.Time, string, error) {
		size := 16 + r.IntN(1024)
		hold := time.Duration(2000+r.IntN(2000)) * time.Millisecond
		for _, dir := range []string{"upstream", "downstream"} {
			if err := b.proxy.AddToxic("slicer-"+dir, "slicer", dir, map[string]any{"average_size": size, "size_variation": size / 2, "delay": 0}); err != nil {
				return time.Time{}, "", err
			}
		}
		time.Sleep(hold)
		var err error
		for _, dir := range []string{"upstream", "downstream"} {
			err = errors.Join(err, b.proxy.RemoveToxic("slicer-"+dir))
		}
		return time.Now(), fmt.Sprintf("segments of ~%d bytes for %v", size, hold), err
	}},
}

// getSlow is get with a longer timeout (for latency spikes).
func (b *benchSession) getSlow(path string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.base+path, nil)
	req.Header.Set("Authorization", b.auth)
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && (resp.StatusCode != 200 || len(body) != 128) {
		err = fmt.Errorf("GET %s: %s, %d bytes", path, resp.Status, len(body))
	}
	return err
}

// pickFault draws a fault kind by weight, among those named in TETHER_FAULTS_KINDS
// (comma-separated; all when unset).
func pickFault(r *rand.Rand) faultKind {
	kinds := faultKinds
	if only := os.Getenv("TETHER_FAULTS_KINDS"); only != "" {
		kinds = nil
		for _, k := range faultKinds {
			if strings.Contains(","+only+",", ","+k.name+",") {
				kinds = append(kinds, k)
			}
		}
		if len(kinds) == 0 {
			panic("TETHER_FAULTS_KINDS=" + only + " names no fault kind")
		}
	}
	total := 0
	for _, k := range kinds {
		total += k.weight
	}
	n := r.IntN(total)
	for _, k := range kinds {
		if n < k.weight {
			return k
		}
		n -= k.weight
	}
	return kinds[len(kinds)-1]
}

// median and maximum of durations.
func medianMax(ds []time.Duration) (time.Duration, time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2], s[len(s)-1]
}

// newAuthRequest is a GET of path under the session's base with its token.
func newAuthRequest(ctx context.Context, b *benchSession, path string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", b.auth)
	return req, nil
}
