//go:build unix

package e2e

import (
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/tokenserver"
	"github.com/tether-dev/tether/wire"
)

// TestSessionsAreIndependent: several detached sessions at once have distinct ids and
// sockets; stopping one by name leaves the other answering; logs reads a detached
// app's output.
func TestSessionsAreIndependent(t *testing.T) {
	env, _ := stateEnv(t)
	start := func(args ...string) wire.Record {
		out := tether(t, env, append([]string{"serve", "--detach", "--json"}, args...)...)
		rec, err := wire.DecodeRecord([]byte(strings.TrimSpace(out)))
		if err != nil {
			t.Fatalf("record %q: %v", out, err)
		}
		KillSessionOnCleanup(t, rec.PID)
		return rec
	}
	a := start("--name", "first")
	b := start("--name", "second", "--", "sh", "-c", "echo hello from second; exec python3 -m http.server $PORT --bind 127.0.0.1")
	if a.ID == b.ID || a.Socket == b.Socket || tokenserver.TokensEqual(a.Token, b.Token) {
		t.Fatalf("sessions share an id, socket or token: %+v %+v", a, b)
	}
	// A second session may not take a running one's name.
	if _, errOut, err := tetherRun(t, env, "serve", "--detach", "--name", "first"); err == nil || !strings.Contains(errOut, "already running") {
		t.Errorf("a second session named first: %v %q", err, errOut)
	}
	for _, r := range []wire.Record{a, b} {
		if code, _ := get(t, unixClient(r.Socket), "http://localhost/", r.Token); code != http.StatusOK {
			t.Errorf("session %s: %d", r.ID, code)
		}
	}
	// One session's token does not open the other.
	if code, _ := get(t, unixClient(b.Socket), "http://localhost/", a.Token); code != http.StatusUnauthorized {
		t.Errorf("a's token on b's socket: %d; want 401", code)
	}
	if logs := tether(t, env, "logs", "second"); !strings.Contains(logs, "hello from second") {
		t.Errorf("logs second: %q", logs)
	}
	tether(t, env, "stop", "first")
	if Alive(a.PID) {
		t.Error("first survived its stop")
	}
	if code, _ := get(t, unixClient(b.Socket), "http://localhost/", b.Token); code != http.StatusOK {
		t.Errorf("second after first stopped: %d", code)
	}
	var list []wire.Record
	if err := JSONUnmarshal(tether(t, env, "ls", "--json"), &list); err != nil || len(list) != 1 || list[0].ID != b.ID || list[0].State != "running" {
		t.Errorf("ls after stopping first: %+v %v", list, err)
	}
	tether(t, env, "stop", "--all")
	if Alive(b.PID) {
		t.Error("second survived stop --all")
	}
}

// TestSessionReadyTimeout: an app that never listens makes --detach give up after
// --ready-timeout, with progress lines, leaving no process, record or directory.
func TestSessionReadyTimeout(t *testing.T) {
	env, root := stateEnv(t)
	start := time.Now()
	out, errOut, err := tetherRun(t, env, "serve", "--detach", "--json", "--ready-timeout", "1500ms", "--", "sleep", "37.25")
	took := time.Since(start)
	if err == nil || strings.Count(out, "\n") != 1 || !strings.Contains(out, `"kind":"not-ready"`) {
		t.Fatalf("detach of an app that never listens: %v, stdout %q; want one failure line", err, out)
	}
	if took < time.Second || took > 10*time.Second {
		t.Errorf("gave up after %s; want about the 1.5s ready timeout", took)
	}
	for _, want := range []string{"waiting for the app to listen on 127.0.0.1:", "--ready-timeout"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if found := ProcessesWith("37.25"); len(found) != 0 {
		t.Errorf("left running: %q", found)
	}
	if des, _ := os.ReadDir(root); len(des) != 0 {
		t.Errorf("the state root holds %v", des)
	}
}

// TestSessionCallerGoneBeforeReady: the launcher runs `serve --detach --cancel-on-eof`
// over SSH and holds the channel's stdin open while it waits. If it goes away before
// the app is ready (Ctrl-C, a dropped connection), sshd closes the channel, stdin
// reaches EOF, and the start is abandoned: no background server, app, record or
// directory is left for nobody to know about.
func TestSessionCallerGoneBeforeReady(t *testing.T) {
	s := StartSSHD(t, SSHDOptions{})
	cmd := exec.Command("ssh", "-F", s.Config, s.Alias, Binary(t), "serve", "--detach", "--json",
		"--cancel-on-eof", "--ready-timeout", "60s", "--", "sleep", "41.75")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	var stderr Buffer
	cmd.Stderr = &stderr
	p := Start(t, cmd)
	if !WaitFor(20*time.Second, func() bool { return strings.Contains(stderr.String(), "waiting for the app") }) {
		t.Fatalf("no progress line from the remote start:\n%s", stderr.String())
	}
	if len(ProcessesWith("41.75")) == 0 {
		t.Fatal("the app is not running while the start waits")
	}
	// The caller vanishes without a word, as a killed launcher would.
	p.Cmd.Process.Kill()
	p.Wait(5 * time.Second)
	if !WaitFor(15*time.Second, func() bool { return len(ProcessesWith("41.75")) == 0 }) {
		t.Errorf("the abandoned start left processes: %q", ProcessesWith("41.75"))
	}
	if !WaitFor(5*time.Second, func() bool { des, _ := os.ReadDir(stateRootOf(s)); return len(des) == 0 }) {
		des, _ := os.ReadDir(stateRootOf(s))
		t.Errorf("the state root still holds %v", des)
	}
}
