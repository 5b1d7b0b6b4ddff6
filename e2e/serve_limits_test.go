//go:build linux

package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// procRSS is a process's resident memory in KiB.
func procRSS(pid int) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return -1
}

// procFDs is how many descriptors a process holds.
func procFDs(pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(ents)
}

// TestServeConnectionFlood (issue 11, item 7b) is the attack on `tether serve --listen
// ADDR --tls` as every user of a cluster network could make it, from the owner's own
// address (in Slurm mode the owner's launcher comes through the login node, like any
// attacker there): 2,000 connections opened and held without a byte, 500 TLS
// connections that each take a 401 and then hold on, and 401-producing requests on
// keep-alive. The server keeps few of them (descriptors and memory stay bounded),
// closes each after its 401, drops the rest when the sign-in time is up, and the
// owner's requests succeed throughout, on a kept connection and on new ones. Old code:
// every connection stayed (the issue measured RSS 16 → 66 MB with 1,356).
func TestServeConnectionFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("a flood of 2,500 connections")
	}
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); lim.Cur < 6000 {
		msg := fmt.Sprintf("the flood needs about 3,000 descriptors here and as many in the old server; the limit is %d (raise ulimit -n)", lim.Cur)
		if Required() {
			t.Fatal("TETHER_E2E=require: " + msg)
		}
		t.Skip(msg)
	}
	env, _ := stateEnv(t)
	s := startServe(t, env, "--listen", "127.0.0.1:0", "--tls")
	rec := s.rec
	pid := rec.PID
	addr := strings.TrimSuffix(strings.TrimPrefix(rec.URL, "https://"), "/")
	tlsConf := &tls.Config{InsecureSkipVerify: true}

	keptTr := &http.Transport{TLSClientConfig: tlsConf}
	defer keptTr.CloseIdleConnections()
	kept := &http.Client{Transport: keptTr, Timeout: 15 * time.Second}
	fresh := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf, DisableKeepAlives: true}, Timeout: 15 * time.Second}
	var firstTryResets atomic.Int64
	owner := func(c *http.Client, retry bool) error {
		for try := 0; ; try++ {
			r, _ := http.NewRequest("GET", rec.URL, nil)
			r.Header.Set("Authorization", "token "+rec.Token)
			resp, err := c.Do(r)
			if err != nil {
				// A new connection may be closed before its TLS handshake when the
				// owner's own client is starved of CPU by the attackers on this host;
				// over a network its ClientHello follows the TCP handshake at once.
				if retry && try == 0 {
					firstTryResets.Add(1)
					continue
				}
				return err
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			return nil
		}
	}
	for range 5 {
		if err := owner(kept, false); err != nil {
			t.Fatalf("the owner before the flood: %v", err)
		}
	}
	time.Sleep(500 * time.Millisecond)
	rss0, fd0 := procRSS(pid), procFDs(pid)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var held []net.Conn
	hold := func(c net.Conn) {
		mu.Lock()
		held = append(held, c)
		mu.Unlock()
	}
	defer func() {
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	}()
	var opened, tlsTried, after401, spam, spamConns atomic.Int64
	wg.Add(3)
	go func() { // 2,000 connections, opened and held without a byte
		defer wg.Done()
		for range 2000 {
			if c, err := net.DialTimeout("tcp", addr, 5*time.Second); err == nil {
				hold(c)
				opened.Add(1)
			}
		}
	}()
	go func() { // 500 TLS connections, each one 401 and then held
		defer wg.Done()
		for range 500 {
			tlsTried.Add(1)
			c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, tlsConf)
			if err != nil {
				continue
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: "+addr+"\r\n\r\n")
			buf := make([]byte, 4096)
			n, _ := c.Read(buf)
			c.SetDeadline(time.Time{})
			if strings.HasPrefix(string(buf[:n]), "HTTP/1.1 401") {
				after401.Add(1)
			}
			hold(c)
		}
	}()
	go func() { // 401s on keep-alive, as fast as they come
		defer wg.Done()
		tr := &http.Transport{TLSClientConfig: tlsConf, DialContext: func(ctx context.Context, n, a string) (net.Conn, error) {
			spamConns.Add(1)
			return (&net.Dialer{}).DialContext(ctx, n, a)
		}}
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr, Timeout: 15 * time.Second}
		for {
			select {
			case <-stop:
				return
			default:
			}
			if resp, err := c.Get(rec.URL); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				spam.Add(1)
			}
		}
	}()

	var fails, newFails []string
	rounds := 0
	peakRSS, peakFDs := rss0, fd0
	began := time.Now()
	for time.Since(began) < 60*time.Second && (opened.Load() < 2000 || tlsTried.Load() < 500 || time.Since(began) < 3*time.Second) {
		rounds++
		if err := owner(kept, false); err != nil {
			fails = append(fails, "kept: "+err.Error())
		}
		if err := owner(fresh, true); err != nil {
			newFails = append(newFails, "new: "+err.Error())
		}
		peakRSS, peakFDs = max(peakRSS, procRSS(pid)), max(peakFDs, procFDs(pid))
	}
	time.Sleep(300 * time.Millisecond)
	rss1, fd1 := procRSS(pid), procFDs(pid)
	peakRSS, peakFDs = max(peakRSS, rss1), max(peakFDs, fd1)
	close(stop)
	wg.Wait()

	// The held ones: the server lets them go when the sign-in time (10 s) is up.
	waitStart := time.Now()
	for procFDs(pid) > fd0+20 && time.Since(waitStart) < 20*time.Second {
		time.Sleep(200 * time.Millisecond)
	}
	fd2 := procFDs(pid)
	if err := owner(kept, false); err != nil {
		fails = append(fails, "kept, after: "+err.Error())
	}
	if err := owner(fresh, false); err != nil {
		fails = append(fails, "new, after: "+err.Error())
	}
	t.Logf("server: RSS %d -> %d KiB (peak %d), descriptors %d -> %d (peak %d), %d %v after the flood; "+
		"attackers: %d held, %d held after a 401, %d 401s on keep-alive over %d connections; "+
		"owner: %d rounds of a kept and a new connection, %d new ones retried once, %d failed",
		rss0, rss1, peakRSS, fd0, fd1, peakFDs, fd2, time.Since(waitStart).Round(time.Second),
		opened.Load(), after401.Load(), spam.Load(), spamConns.Load(), rounds, firstTryResets.Load(), len(fails))
	// The kept connection (signed in) never fails. A new one may, rarely, even after a
	// retry: the attackers and the owner share this process and 2 cores here, and while
	// the owner's TLS handshake waits for CPU, 128 attacker connections can arrive and
	// push it out (at the cap the oldest waiting connection goes). Over a network the
	// ClientHello follows the TCP handshake at once. What must hold is that the owner
	// is never locked out: at most 1 in 100 new connections fails twice.
	if len(fails) > 0 {
		t.Errorf("the owner was refused during the flood: %v", fails[:min(len(fails), 5)])
	}
	if len(newFails)*100 > rounds {
		t.Errorf("the owner's new connections failed %d times in %d rounds (more than 1%%): %v", len(newFails), rounds, newFails[:min(len(newFails), 5)])
	} else if len(newFails) > 0 {
		t.Logf("%d of %d new owner connections failed twice (CPU-starved handshakes): %v", len(newFails), rounds, newFails)
	}
	// Every attack connection was made; a few TLS ones may be closed by the server
	// before their 401 (at the cap, the oldest waiting connection goes): that is the
	// defence at work, not a shortfall of the attack.
	if opened.Load() < 2000 || tlsTried.Load() < 500 || after401.Load() < 400 {
		t.Errorf("the attack did not run in full: %d held, %d TLS tried, %d after a 401", opened.Load(), tlsTried.Load(), after401.Load())
	}
	if limit := fd0 + 256 + 64; peakFDs > limit {
		t.Errorf("the server held %d descriptors during the flood (%d before); want at most %d", peakFDs, fd0, limit)
	}
	if grow := peakRSS - rss0; grow > 32<<10 {
		t.Errorf("the server's RSS grew by %d KiB during the flood; want under 32 MiB", grow)
	}
	if fd2 > fd0+20 {
		t.Errorf("%d descriptors 20 s after the flood (%d before): held connections were kept past the sign-in time", fd2, fd0)
	}
	if spam.Load() > spamConns.Load()+5 {
		t.Errorf("%d 401s came on %d connections: the server kept connections after a 401", spam.Load(), spamConns.Load())
	}
}
