//go:build unix

package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/e2e/toxiapi"
)

// ToxiproxyVersion is the Toxiproxy server the fault tests drive; .ci/run installs it
// as toxiproxy-server.
const ToxiproxyVersion = "v2.5.0"

// Toxiproxy is a running toxiproxy-server (github.com/Shopify/toxiproxy) on loopback,
// driven over its HTTP API: a TCP proxy whose connections can be reset, cut silently,
// slowed or sliced on demand. It is a separate program, like sshd, so the faults it
// makes are real TCP behaviour between two real processes.
type Toxiproxy struct {
	// API is the base URL of its HTTP API (http://127.0.0.1:PORT).
	API string
	tb  testing.TB
	log *Buffer
}

// StartToxiproxy starts toxiproxy-server on 127.0.0.1 and stops it by its PID when tb
// ends. It skips tb (fails it under TETHER_E2E=require) when the program is missing.
func StartToxiproxy(tb testing.TB) *Toxiproxy {
	tb.Helper()
	bin, err := FindProgram("toxiproxy-server")
	if err != nil {
		msg := "toxiproxy-server not found: install it with `GOBIN=/usr/local/bin go install github.com/Shopify/toxiproxy/v2/cmd/server@" +
			ToxiproxyVersion + " && mv /usr/local/bin/server /usr/local/bin/toxiproxy-server` (bash .ci/run does)"
		if Required() {
			tb.Fatalf("TETHER_E2E=require: %s", msg)
		}
		tb.Skip(msg)
	}
	var last string
	for attempt := 0; attempt < 5; attempt++ {
		port := FreePort(tb)
		log := &Buffer{}
		cmd := exec.Command(bin, "-host", "127.0.0.1", "-port", strconv.Itoa(port))
		cmd.Stdout, cmd.Stderr = log, log
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LOG_LEVEL=warn"}
		p := Start(tb, cmd)
		t := &Toxiproxy{API: fmt.Sprintf("http://127.0.0.1:%d", port), tb: tb, log: log}
		if WaitFor(10*time.Second, func() bool {
			select {
			case <-p.Done():
				return true
			default:
			}
			resp, err := http.Get(t.API + "/version")
			if err == nil {
				resp.Body.Close()
			}
			return err == nil && resp.StatusCode == 200
		}) {
			select {
			case <-p.Done():
			default:
				tb.Cleanup(func() {
					if tb.Failed() {
						tb.Logf("toxiproxy log:\n%s", log.String())
					}
				})
				return t
			}
		}
		StopGroup(cmd.Process.Pid, p.Done())
		last = log.String()
	}
	tb.Fatalf("toxiproxy-server did not start:\n%s", last)
	return nil
}

// call sends one API request and decodes the JSON answer into out (when not nil).
func (t *Toxiproxy) call(method, path string, body, out any) error {
	return toxiapi.Call(t.API, method, path, body, out)
}

// ToxicProxy is one proxy of a Toxiproxy: it listens on Listen and forwards to an
// upstream.
type ToxicProxy struct {
	Name string
	// Listen is its 127.0.0.1:PORT.
	Listen string
	t      *Toxiproxy
}

// Proxy creates a proxy named name from a fresh 127.0.0.1 port to upstream.
func (t *Toxiproxy) Proxy(name, upstream string) *ToxicProxy {
	t.tb.Helper()
	var got struct {
		Listen string `json:"listen"`
	}
	if err := t.call("POST", "/proxies", map[string]any{"name": name, "listen": "127.0.0.1:0", "upstream": upstream, "enabled": true}, &got); err != nil {
		t.tb.Fatal(err)
	}
	return &ToxicProxy{Name: name, Listen: got.Listen, t: t}
}

// Port is the port the proxy listens on.
func (p *ToxicProxy) Port() int {
	_, port, _ := net.SplitHostPort(p.Listen)
	n, _ := strconv.Atoi(port)
	return n
}

// AddToxic adds a toxic of type typ (latency, timeout, reset_peer, slicer, limit_data,
// bandwidth, slow_close) on stream "upstream" (client to server) or "downstream", on
// every connection of the proxy, open and new.
func (p *ToxicProxy) AddToxic(name, typ, stream string, attrs map[string]any) error {
	return p.t.call("POST", "/proxies/"+p.Name+"/toxics",
		map[string]any{"name": name, "type": typ, "stream": stream, "toxicity": 1.0, "attributes": attrs}, nil)
}

// RemoveToxic removes a toxic added by AddToxic.
func (p *ToxicProxy) RemoveToxic(name string) error {
	return p.t.call("DELETE", "/proxies/"+p.Name+"/toxics/"+name, nil, nil)
}

// SetEnabled turns the proxy on or off. Off closes its listener and every connection
// through it (both sides see the close); on listens again on the same port.
func (p *ToxicProxy) SetEnabled(on bool) error {
	return p.t.call("POST", "/proxies/"+p.Name, map[string]any{"enabled": on}, nil)
}

// ThroughProxy writes an ssh_config (and a known_hosts for the proxy's address) whose
// Host alias reaches s through p, and returns the config's path. Everything else is as
// s.Config: the same key, user and host keys, StrictHostKeyChecking yes.
func (s *SSHD) ThroughProxy(tb testing.TB, p *ToxicProxy, alias string) string {
	tb.Helper()
	known, err := os.ReadFile(s.KnownHosts)
	if err != nil {
		tb.Fatal(err)
	}
	var kh strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(string(known)), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 {
			fmt.Fprintf(&kh, "[127.0.0.1]:%d %s %s\n", p.Port(), f[1], f[2])
		}
	}
	dir := tb.TempDir()
	khPath := filepath.Join(dir, "known_hosts")
	WriteFile(tb, khPath, kh.String(), 0o600)
	cfg := fmt.Sprintf("Host %s\n  HostName 127.0.0.1\n  Port %d\n  User %s\n  IdentityFile %s\n"+
		"  IdentitiesOnly yes\n  UserKnownHostsFile %s\n  GlobalKnownHostsFile /dev/null\n"+
		"  StrictHostKeyChecking yes\n  BatchMode yes\n",
		alias, p.Port(), s.User, s.ClientKey, khPath)
	path := filepath.Join(dir, "ssh_config")
	WriteFile(tb, path, cfg, 0o600)
	return path
}
