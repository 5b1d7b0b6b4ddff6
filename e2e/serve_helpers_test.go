//go:build unix

package e2e

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/wire"
)

// stateEnv returns the environment for a tether process with its own state root, so
// tests never see each other's sessions or the user's.
func stateEnv(t *testing.T, extra ...string) (env []string, root string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "tether-state-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	root = filepath.Join(dir, "s")
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "TETHER_") {
			env = append(env, e)
		}
	}
	return append(append(env, "TETHER_STATE_DIR="+root), extra...), root
}

// served is a foreground `tether serve --json` started by startServe.
type served struct {
	Proc   *Proc
	rec    wire.Record
	Stderr *Buffer
}

// startServe starts `tether serve --json ARGS` in the foreground and waits for its
// ready record.
func startServe(t *testing.T, env []string, args ...string) *served {
	t.Helper()
	cmd := exec.Command(Binary(t), append([]string{"serve", "--json"}, args...)...)
	cmd.Env = env
	stderr := &Buffer{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := Start(t, cmd)
	line, err := readLine(stdout, 30*time.Second)
	if err != nil {
		t.Fatalf("no ready record from tether serve: %v\nstderr:\n%s", err, stderr)
	}
	rec, err := wire.DecodeRecord([]byte(line))
	if err != nil {
		t.Fatalf("ready record %q: %v", line, err)
	}
	return &served{Proc: p, rec: rec, Stderr: stderr}
}

// readLine reads one line from r within timeout.
func readLine(r io.Reader, timeout time.Duration) (string, error) {
	type result struct {
		s   string
		err error
	}
	ch := make(chan result, 1)
	go func() {
		s, err := bufio.NewReader(r).ReadString('\n')
		ch <- result{s, err}
	}()
	select {
	case res := <-ch:
		return strings.TrimSpace(res.s), res.err
	case <-time.After(timeout):
		return "", context.DeadlineExceeded
	}
}

// unixClient is an HTTP client whose every connection goes to a Unix socket.
func unixClient(socket string) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// get requests url with the token as a Bearer header (none when token is empty) and
// returns the status and body.
func get(t *testing.T, c *http.Client, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func itoa(n int) string { return strconv.Itoa(n) }

// tether runs the binary to completion with env and returns its stdout, failing the
// test if it exits non-zero.
func tether(t *testing.T, env []string, args ...string) string {
	t.Helper()
	out, errOut, err := tetherRun(t, env, args...)
	if err != nil {
		t.Fatalf("tether %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// tetherRun runs the binary to completion (at most a minute) and returns stdout,
// stderr and its exit error.
func tetherRun(t *testing.T, env []string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(Binary(t), args...)
	cmd.Env = env
	var stdout, stderr Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	p := Start(t, cmd)
	err, ok := p.Wait(time.Minute)
	if !ok {
		t.Fatalf("tether %s did not finish within a minute", strings.Join(args, " "))
	}
	return stdout.String(), stderr.String(), err
}
