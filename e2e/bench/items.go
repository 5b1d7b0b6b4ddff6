//go:build linux

package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

const mb = 1e6

// sizes and durations of the items, full or --quick.
func (b *bench) bulkSize() int64 {
	if n := b.profileBulkSize(); n > 0 {
		return n
	}
	if b.o.quick {
		return 64 << 20
	}
	return 512 << 20
}

func (b *bench) window() time.Duration {
	if b.o.quick {
		return time.Second
	}
	return 3 * time.Second
}

// item runs one round of an item over every path, in order (A B A B over rounds).
func (b *bench) item(name string) error {
	if name == "reconnect" {
		if b.onProfile() {
			return b.reconnectCut()
		}
		return b.reconnect()
	}
	for _, p := range b.paths {
		if isSSH(p.name) && p.proc.exited() {
			if err := b.startSSHL(p); err != nil {
				return err
			}
		}
		var err error
		switch name {
		case "download":
			err = b.download(p)
		case "upload":
			err = b.upload(p)
		case "parallel":
			err = b.parallel(p)
		case "small":
			for _, conc := range []int{1, 50} {
				if err = b.small(p, conc); err != nil {
					break
				}
			}
		case "newconn":
			err = b.newConns(p)
		case "ws":
			err = b.ws(p)
		case "launch":
			err = b.launchTimes(p)
		case "memory":
			err = b.memory(p)
		case "jupyter":
			err = b.jupyter(p)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
	}
	return nil
}

// client is a fresh HTTP client for one measurement: keep-alive (unless told),
// enough idle connections, no compression, large buffers; the same for every path.
func client(keepAlive bool) *http.Client {
	return &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{Proxy: nil,
		MaxIdleConns: 256, MaxIdleConnsPerHost: 256, DisableKeepAlives: !keepAlive, DisableCompression: true,
		ReadBufferSize: 128 << 10, WriteBufferSize: 128 << 10, ForceAttemptHTTP2: false}}
}

func (p *route) request(ctx context.Context, method, rel string, body io.Reader, n int64) *http.Request {
	req, _ := http.NewRequestWithContext(ctx, method, p.base+rel, body)
	if body != nil {
		req.ContentLength = n
	}
	if p.auth != "" {
		req.Header.Set("Authorization", p.auth)
	}
	return req
}

// get fetches rel and returns the body's length.
func (p *route) get(ctx context.Context, c *http.Client, rel string, buf []byte) (int64, error) {
	resp, err := c.Do(p.request(ctx, "GET", rel, nil, 0))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{resp.Body}, buf)
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("GET %s: %s", rel, resp.Status)
	}
	return n, err
}

// 1. One large download and one large upload.
func (b *bench) download(p *route) error {
	c := client(true)
	defer c.CloseIdleConnections()
	size := b.bulkSize()
	start := time.Now()
	n, err := p.get(b.ctx, c, "bytes?n="+strconv.FormatInt(size, 10), make([]byte, 256<<10))
	if err != nil || n != size {
		return fmt.Errorf("download: got %d of %d bytes: %v", n, size, err)
	}
	b.record(metric{"download", "MB/s", true}, p.name, float64(size)/mb/time.Since(start).Seconds())
	return nil
}

// zeros is an io.Reader of n bytes.
type zeros struct{ n int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	k := int(min(int64(len(p)), z.n))
	clear(p[:k])
	z.n -= int64(k)
	return k, nil
}

func (b *bench) upload(p *route) error {
	c := client(true)
	defer c.CloseIdleConnections()
	size := b.bulkSize()
	start := time.Now()
	resp, err := c.Do(p.request(b.ctx, "POST", "upload", &zeros{size}, size))
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.TrimSpace(string(body)) != strconv.FormatInt(size, 10) {
		return fmt.Errorf("upload: the app got %q bytes, want %d (%s)", body, size, resp.Status)
	}
	b.record(metric{"upload", "MB/s", true}, p.name, float64(size)/mb/time.Since(start).Seconds())
	return nil
}

// 2. Six parallel downloads, aggregate.
func (b *bench) parallel(p *route) error {
	c := client(true)
	defer c.CloseIdleConnections()
	each := b.bulkSize() / 4
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	start := time.Now()
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := p.get(b.ctx, c, "bytes?n="+strconv.FormatInt(each, 10), make([]byte, 256<<10))
			if err == nil && n != each {
				err = fmt.Errorf("got %d of %d bytes", n, each)
			}
			errs <- err
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	b.record(metric{"6 parallel downloads", "MB/s", true}, p.name, float64(6*each)/mb/elapsed.Seconds())
	return nil
}

// 3. Small requests over conc keep-alive connections: requests/s and latency.
func (b *bench) small(p *route, conc int) error {
	c := client(true)
	defer c.CloseIdleConnections()
	run := func(d time.Duration) ([]float64, time.Duration, error) {
		var mu sync.Mutex
		var all []float64
		var firstErr error
		var wg sync.WaitGroup
		start := time.Now()
		deadline := start.Add(d)
		for range conc {
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, 4096)
				lat := make([]float64, 0, 4096)
				for time.Now().Before(deadline) && b.ctx.Err() == nil {
					t0 := time.Now()
					if _, err := p.get(b.ctx, c, "small", buf); err != nil {
						mu.Lock()
						firstErr = err
						mu.Unlock()
						return
					}
					lat = append(lat, float64(time.Since(t0))/float64(time.Millisecond))
				}
				mu.Lock()
				all = append(all, lat...)
				mu.Unlock()
			}()
		}
		wg.Wait()
		return all, time.Since(start), firstErr
	}
	if _, _, err := run(200 * time.Millisecond); err != nil { // open the connections
		return err
	}
	lat, elapsed, err := run(b.window())
	if err != nil {
		return err
	}
	sort.Float64s(lat)
	suffix := fmt.Sprintf(" (%d conn)", conc)
	if conc > 1 {
		suffix = fmt.Sprintf(" (%d conns)", conc)
	}
	b.record(metric{"small req/s" + suffix, "req/s", true}, p.name, float64(len(lat))/elapsed.Seconds())
	b.record(metric{"small p50" + suffix, "ms", false}, p.name, percentile(lat, 0.50))
	b.record(metric{"small p99" + suffix, "ms", false}, p.name, percentile(lat, 0.99))
	b.record(metric{"small p99.9" + suffix, "ms", false}, p.name, percentile(lat, 0.999))
	return nil
}

// 4. New connections per second, one small request each, 4 at a time.
func (b *bench) newConns(p *route) error {
	c := client(false)
	var n int64
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(b.window())
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 4096)
			k := int64(0)
			for time.Now().Before(deadline) && b.ctx.Err() == nil {
				if _, err := p.get(b.ctx, c, "small", buf); err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				k++
			}
			mu.Lock()
			n += k
			mu.Unlock()
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	b.record(metric{"new connections/s", "conn/s", true}, p.name, float64(n)/time.Since(start).Seconds())
	return nil
}

func (p *route) dialWS(ctx context.Context) (*websocket.Conn, error) {
	h := http.Header{}
	if p.auth != "" {
		h.Set("Authorization", p.auth)
	}
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 4096, WriteBufferSize: 4096}
	c, resp, err := d.DialContext(ctx, "ws"+strings.TrimPrefix(p.base, "http")+"ws", h)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	return c, err
}

// 5. WebSocket: round trip of a small message, and messages/s streamed.
func (b *bench) ws(p *route) error {
	c, err := p.dialWS(b.ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	msg := []byte("0123456789abcdef0123456789abcdef")
	trips, stream := 2000, 50000
	if b.o.quick {
		trips, stream = 500, 10000
	}
	trips, stream = b.profileWS(trips, stream)
	rtt := make([]float64, 0, trips)
	for range trips {
		t0 := time.Now()
		if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
			return err
		}
		if _, _, err := c.ReadMessage(); err != nil {
			return err
		}
		rtt = append(rtt, float64(time.Since(t0))/float64(time.Millisecond))
	}
	b.record(metric{"WebSocket round trip", "ms", false}, p.name, median(rtt))
	start := time.Now()
	werr := make(chan error, 1)
	go func() {
		for range stream {
			if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
				werr <- err
				return
			}
		}
		werr <- nil
	}()
	for range stream {
		if _, _, err := c.ReadMessage(); err != nil {
			return err
		}
	}
	if err := <-werr; err != nil {
		return err
	}
	b.record(metric{"WebSocket msgs/s", "msg/s", true}, p.name, float64(stream)/time.Since(start).Seconds())
	return nil
}

// 6. Launch to a working URL, the binary in place and the first time (with its
// upload), against `ssh HOST true`.
func (b *bench) launchTimes(p *route) error {
	mLaunch := metric{"launch (installed) / ssh true", "s", false}
	mFirst := metric{"first launch (upload) / ssh true", "s", false}
	if p.name == pathSSHSock {
		return nil // ssh -L itself is timed once, as "ssh"
	}
	if p.name == pathSSH {
		start := time.Now()
		cmd := exec.CommandContext(b.ctx, "ssh", "-F", b.sshd.config, "-o", "ControlMaster=no", "-o", "ControlPath=none", b.sshd.alias, "true")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("ssh true: %v: %s", err, out)
		}
		d := time.Since(start).Seconds()
		b.record(mLaunch, p.name, d)
		b.record(mFirst, p.name, d)
		return nil
	}
	lp, _, d, err := b.launch(p.bin, p.name+"-launch", p.extra...)
	if err != nil {
		return err
	}
	lp.interrupt()
	b.record(mLaunch, p.name, d.Seconds())
	// Remove this binary's install (tether-VERSION-SHA12) so the next launch uploads it.
	sum, err := fileSHA12(p.bin)
	if err != nil {
		return err
	}
	installed, _ := filepath.Glob(filepath.Join(b.installedHome(p), ".cache", "tether", "bin", "tether-*-"+sum))
	if len(installed) == 0 {
		return fmt.Errorf("found no installed %s on the remote", filepath.Base(p.bin))
	}
	for _, f := range installed {
		os.Remove(f)
	}
	lp, _, d, err = b.launch(p.bin, p.name+"-launch", p.extra...)
	if err != nil {
		return err
	}
	lp.interrupt()
	b.record(mFirst, p.name, d.Seconds())
	return nil
}

// 7. Reconnect: kill sshd's connection processes, time until each tether URL answers.
func (b *bench) reconnect() error {
	var targets []*route
	for _, p := range b.paths {
		if !isSSH(p.name) && p.name != pathRelay { // the relay path does not go through sshd
			targets = append(targets, p)
		}
	}
	if b.sshd.killConnections() == 0 {
		return fmt.Errorf("found no sshd connection process to kill")
	}
	if err := b.timeAnswers(targets, time.Now(), time.Second, "the SSH connection's death", metric{"reconnect", "s", false}); err != nil {
		return err
	}
	time.Sleep(200 * time.Millisecond)
	return nil
}

// 8. Memory: the remote server idle and with 100 open WebSockets, and the launcher
// (for ssh -L: the ssh client). Each tether round uses a fresh session.
func (b *bench) memory(p *route) error {
	const n = 100
	kb := 1024.0
	idleM, wsM := metric{"launcher RSS idle", "MB", false}, metric{"launcher RSS, 100 WebSockets", "MB", false}
	srvIdle, srvWS := metric{"server RSS idle", "MB", false}, metric{"server RSS, 100 WebSockets", "MB", false}
	// The long-running launcher (or ssh -L) has carried every item so far: its peak.
	if hwm, err := statusKB(p.proc.cmd.Process.Pid, "VmHWM:"); err == nil {
		b.record(metric{"launcher peak RSS (all items)", "MB", false}, p.name, hwm*kb/mb)
	}
	if isSSH(p.name) {
		r, err := rssKB(p.proc.cmd.Process.Pid)
		if err != nil {
			return err
		}
		b.record(idleM, p.name, r*kb/mb)
		conns, err := openWS(b.ctx, p, n)
		defer closeAll(conns)
		if err != nil {
			return err
		}
		r, err = rssKB(p.proc.cmd.Process.Pid)
		if err != nil {
			return err
		}
		b.record(wsM, p.name, r*kb/mb)
		return nil
	}
	lp, l, _, err := b.launch(p.bin, p.name+"-memory", p.extra...)
	if err != nil {
		return err
	}
	defer lp.interrupt()
	fresh := &route{name: p.name, base: fmt.Sprintf("http://127.0.0.1:%d%s", l.LocalPort, l.Session.BaseURL), auth: "Bearer " + l.Session.Token}
	pid, err := b.serverPID(p.bin, l.Session.ID, p.extra)
	if err != nil {
		return err
	}
	time.Sleep(time.Second)
	for _, m := range []struct {
		m   metric
		pid int
	}{{srvIdle, pid}, {idleM, lp.cmd.Process.Pid}} {
		r, err := rssKB(m.pid)
		if err != nil {
			return err
		}
		b.record(m.m, p.name, r*kb/mb)
	}
	conns, err := openWS(b.ctx, fresh, n)
	defer closeAll(conns)
	if err != nil {
		return err
	}
	for _, m := range []struct {
		m   metric
		pid int
	}{{srvWS, pid}, {wsM, lp.cmd.Process.Pid}} {
		r, err := rssKB(m.pid)
		if err != nil {
			return err
		}
		b.record(m.m, p.name, r*kb/mb)
	}
	return nil
}

// serverPID finds the session's server with `tether ls HOST --json`.
func (b *bench) serverPID(bin, id string, extra []string) (int, error) {
	target, env := b.target(extra)
	args := append(append(append([]string{"ls"}, target...), "--json"), slices.DeleteFunc(slices.Clone(extra), func(s string) bool { return s == "--ssh" || s == "openssh" })...)
	cmd := exec.CommandContext(b.ctx, bin, args...)
	cmd.Env = append([]string{"HOME=" + filepath.Join(b.dir, "launcher-home-"+pathTether), "PATH=" + os.Getenv("PATH")}, env...)
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("tether ls --json: %v", err)
	}
	var list []struct {
		ID  string `json:"id"`
		PID int    `json:"pid"`
	}
	if err := json.Unmarshal(out, &list); err != nil {
		return 0, fmt.Errorf("tether ls --json: %v", err)
	}
	for _, s := range list {
		if s.ID == id {
			return s.PID, nil
		}
	}
	return 0, fmt.Errorf("tether ls --json does not list session %s", id)
}

// openWS opens n WebSockets through p, each proven by one echo.
func openWS(ctx context.Context, p *route, n int) ([]*websocket.Conn, error) {
	var conns []*websocket.Conn
	for range n {
		c, err := p.dialWS(ctx)
		if err != nil {
			return conns, err
		}
		conns = append(conns, c)
		if err := c.WriteMessage(websocket.TextMessage, []byte("hi")); err != nil {
			return conns, err
		}
		if _, _, err := c.ReadMessage(); err != nil {
			return conns, err
		}
	}
	return conns, nil
}

func closeAll(conns []*websocket.Conn) {
	for _, c := range conns {
		c.Close()
	}
}

// fileSHA12 is the first 12 hex digits of the file's SHA-256, as the install names it.
func fileSHA12(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

// timeAnswers asks each target for a small body until it answers (each request's
// client timing out after timeout; at most 60 s after start) and records, under m, the
// time from start to each target's first answer; after names what start was.
func (b *bench) timeAnswers(targets []*route, start time.Time, timeout time.Duration, after string, m metric) error {
	type res struct {
		name string
		d    time.Duration
		err  error
	}
	out := make(chan res, len(targets))
	for _, p := range targets {
		go func() {
			c := &http.Client{Timeout: timeout, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
			for time.Since(start) < 60*time.Second && b.ctx.Err() == nil {
				if _, err := p.get(b.ctx, c, "small", make([]byte, 4096)); err == nil {
					out <- res{p.name, time.Since(start), nil}
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
			out <- res{p.name, 0, fmt.Errorf("%s did not answer within 60 s of %s", p.name, after)}
		}()
	}
	for range targets {
		r := <-out
		if r.err != nil {
			return r.err
		}
		b.record(m, r.name, r.d.Seconds())
	}
	return nil
}
