//go:build unix

package relay

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/e2e"
	"github.com/tether-dev/tether/relay"
)

// testRelay is a real `tether relay` on loopback (plain ws, as the relay allows there).
type testRelay struct {
	secret string
	url    string
	listen string // host:port it listens on
	proc   *e2e.Proc
	out    *e2e.Buffer
}

var listeningRe = regexp.MustCompile(`relay: listening on (wss?://\S+)`)

func startRelay(t *testing.T) *testRelay {
	t.Helper()
	secret := filepath.Join(t.TempDir(), "relay.secret")
	b := make([]byte, 32)
	rand.Read(b)
	e2e.WriteFile(t, secret, string(b), 0o600)
	return startRelayAt(t, "127.0.0.1:0", secret)
}

// startRelayAt runs `tether relay --listen listen --secret-file secret` (again, after
// a restart).
func startRelayAt(t *testing.T, listen, secret string, args ...string) *testRelay {
	t.Helper()
	out := &e2e.Buffer{}
	cmd := exec.Command(e2e.Binary(t), append([]string{"relay", "--listen", listen, "--secret-file", secret}, args...)...)
	cmd.Stdout, cmd.Stderr = out, out
	p := e2e.Start(t, cmd)
	r := &testRelay{secret: secret, proc: p, out: out}
	if !e2e.WaitFor(20*time.Second, func() bool {
		if m := listeningRe.FindStringSubmatch(out.String()); m != nil {
			r.url = m[1]
		}
		return r.url != ""
	}) {
		t.Fatalf("tether relay did not listen; output:\n%s", out.String())
	}
	_, r.listen, _ = strings.Cut(r.url, "://")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("tether relay output:\n%s", out.String())
		}
		select {
		case <-p.Done():
		default:
		}
	})
	return r
}

// mint is `tether relay token`.
func (r *testRelay) mint(t *testing.T, role, portal, name string) string {
	t.Helper()
	cmd := exec.Command(e2e.Binary(t), "relay", "token", "--secret-file", r.secret, "--role", role, "--portal", portal, name)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tether relay token: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// proxyArgs are the ProxyCommand's arguments: the relay, the portal and the file
// holding the client token (never the token: argv is public).
func (r *testRelay) proxyArgs(portal, tokenFile string) string {
	return r.url + " " + portal + " " + tokenFile
}

// proxy (ssh's ProxyCommand) splices stdin/stdout with one stream to the portal's
// host through the relay: relay.Dial, as the launcher's --relay does.
func proxy(args []string) int {
	if len(args) != 3 {
		fmt.Fprintln(os.Stderr, "proxy: want RELAY-URL PORTAL TOKEN-FILE")
		return 2
	}
	tok, err := os.ReadFile(args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "proxy:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	c, err := relay.Dial(ctx, args[0], strings.TrimSpace(string(tok)), args[1], nil)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "proxy:", err)
		return 1
	}
	done := make(chan struct{}, 2)
	go func() { io.Copy(c, os.Stdin); c.Close(); done <- struct{}{} }()
	go func() { io.Copy(os.Stdout, c); done <- struct{}{} }()
	<-done
	return 0
}
