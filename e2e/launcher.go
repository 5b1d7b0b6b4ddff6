//go:build unix

package e2e

import (
	"bufio"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Launched is a `tether launch`/`attach`/`demo` process run with --json.
type Launched struct {
	Proc   *Proc
	Stdout *Buffer
	Stderr *Buffer
	Line   LaunchLine
	Opened string // the file the opener (TETHER_BROWSER) writes its arguments to
}

// LaunchLine is the --json line (DESIGN.md's contract).
type LaunchLine struct {
	URL       string `json:"url"`
	LocalPort int    `json:"local_port"`
	Session   struct {
		ID      string   `json:"id"`
		Name    string   `json:"name"`
		PID     int      `json:"pid"`
		Socket  string   `json:"socket"`
		Token   string   `json:"token"`
		BaseURL string   `json:"base_url"`
		Command []string `json:"command"`
		Version string   `json:"version"`
	} `json:"session"`
}

// LauncherEnv is the local environment for the launcher: a throwaway HOME (nothing of
// the real one is read or written), TETHER_BROWSER capturing what would be opened, and
// the run's TETHER_STRIPES if set.
func LauncherEnv(t *testing.T) (env []string, opened string) {
	t.Helper()
	dir := t.TempDir()
	opened = filepath.Join(dir, "opened")
	opener := filepath.Join(dir, "opener")
	os.WriteFile(opener, []byte("#!/bin/sh\nprintf '%s\\n' \"$@\" >> "+opened+"\n"), 0o700)
	home := filepath.Join(dir, "home")
	os.Mkdir(home, 0o700)
	env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "TETHER_BROWSER=" + opener, "BROWSER=", "XDG_CACHE_HOME=", "XDG_RUNTIME_DIR="}
	// TETHER_STRIPES forces striping (or turns it off) in every launcher a run starts,
	// so any e2e test doubles as a test of striped connections.
	if v, ok := os.LookupEnv("TETHER_STRIPES"); ok {
		env = append(env, "TETHER_STRIPES="+v)
	}
	return env, opened
}

// StartLauncher runs tether with args (and extraEnv, KEY=VALUE, added to
// launcherEnv's) and, when wantJSON, waits for its JSON line.
func StartLauncher(t *testing.T, args []string, wantJSON bool, extraEnv ...string) *Launched {
	t.Helper()
	return StartLauncherBin(t, Binary(t), args, wantJSON, extraEnv...)
}

// StartLauncherBin is startLauncher with the tether at bin.
func StartLauncherBin(t *testing.T, bin string, args []string, wantJSON bool, extraEnv ...string) *Launched {
	t.Helper()
	env, opened := LauncherEnv(t)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(env, extraEnv...)
	l := &Launched{Stdout: &Buffer{}, Stderr: &Buffer{}, Opened: opened}
	cmd.Stdout, cmd.Stderr = l.Stdout, l.Stderr
	l.Proc = Start(t, cmd)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("tether %s stderr:\n%s", strings.Join(args, " "), l.Stderr.String())
		}
	})
	if !wantJSON {
		return l
	}
	if !WaitFor(60*time.Second, func() bool {
		select {
		case <-l.Proc.Done():
			return true
		default:
		}
		return strings.Contains(l.Stdout.String(), "\n")
	}) {
		t.Fatalf("no JSON line from tether %s", strings.Join(args, " "))
	}
	out := l.Stdout.String()
	if !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
		t.Fatalf("tether %s: stdout %q: want one JSON line (stderr: %s)", strings.Join(args, " "), out, l.Stderr.String())
	}
	if err := json.Unmarshal([]byte(out), &l.Line); err != nil {
		t.Fatalf("JSON line %q: %v", out, err)
	}
	return l
}

// Interrupt sends SIGINT to the launcher (Ctrl-C) and waits for it to exit.
func (l *Launched) Interrupt(t *testing.T) error {
	t.Helper()
	l.Proc.Cmd.Process.Signal(syscall.SIGINT)
	err, ok := l.Proc.Wait(30 * time.Second)
	if !ok {
		t.Fatalf("the launcher did not exit after SIGINT; stderr:\n%s", l.Stderr.String())
	}
	return err
}

// RunTether runs a short tether command and returns stdout, stderr and the exit code.
func RunTether(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return RunTetherEnv(t, nil, args...)
}

// RunTetherEnv is runTether with extra environment variables.
func RunTetherEnv(t *testing.T, extraEnv []string, args ...string) (string, string, int) {
	t.Helper()
	env, _ := LauncherEnv(t)
	cmd := exec.Command(Binary(t), args...)
	cmd.Env = append(env, extraEnv...)
	var out, errb Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	p := Start(t, cmd)
	err, ok := p.Wait(60 * time.Second)
	if !ok {
		t.Fatalf("tether %s did not finish", strings.Join(args, " "))
	}
	code := 0
	if ee, isExit := err.(*exec.ExitError); isExit {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("tether %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), code
}

// NoRedirect is a client that shows redirects instead of following them.
var NoRedirect = &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// Fetch GETs url with optional headers and returns status, body and the response.
func Fetch(t *testing.T, url string, header ...string) (int, string, *http.Response) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := NoRedirect.Do(req)
	if err != nil {
		return 0, err.Error(), nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b), resp
}

// OpenedTargets returns what the launcher asked the opener to open.
func OpenedTargets(l *Launched) []string {
	b, _ := os.ReadFile(l.Opened)
	var out []string
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// SessionsOn lists the sessions on the sshd's "remote" with `tether ls HOST --json`.
func SessionsOn(t *testing.T, s *SSHD) []map[string]any {
	t.Helper()
	out, errOut, code := RunTether(t, "ls", "-F", s.Config, s.Alias, "--json")
	if code != 0 {
		t.Fatalf("tether ls %s --json: exit %d: %s", s.Alias, code, errOut)
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("ls --json output %q: %v", out, err)
	}
	return list
}

// StopAllOnCleanup stops every session on the remote when the test ends, by the
// remote's own `tether stop --all` run as the launcher would.
func StopAllOnCleanup(t *testing.T, s *SSHD) {
	StopAllOnCleanupWith(t, 30*time.Second, "stop", "-F", s.Config, s.Alias, "--all")
}

// StopAllOnCleanupWith runs `tether ARGS` (a stop --all) when the test ends, killing it
// after limit: what a failed check left behind goes with the test.
func StopAllOnCleanupWith(t *testing.T, limit time.Duration, args ...string) {
	t.Cleanup(func() {
		env, _ := LauncherEnv(t)
		cmd := exec.Command(Binary(t), args...)
		cmd.Env = env
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err == nil {
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(limit):
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-done
			}
		}
	})
}

func MustContain(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s lacks %q:\n%s", what, sub, s)
		}
	}
}

// EqSecret compares secrets in constant time (tokenserver's lint wants it everywhere).
func EqSecret(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

func FmtDur(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }

// ExecGoRun is `go run . demo --no-browser --json` in the module, with the Go caches of
// this process (HOME is a throwaway one).
func ExecGoRun(t *testing.T, env []string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("go", "run", ".", "demo", "--no-browser", "--json")
	cmd.Dir = ModuleRoot()
	for _, k := range []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOROOT"} {
		out, err := exec.Command("go", "env", k).Output()
		if err == nil && strings.TrimSpace(string(out)) != "" {
			env = append(env, k+"="+strings.TrimSpace(string(out)))
		}
	}
	cmd.Env = append(env, "GOFLAGS=-mod=mod", "GOPROXY=off", "CGO_ENABLED=0")
	return cmd
}

// StartKernel starts a kernel of the launched Jupyter through the launcher's local URL,
// the token in Authorization as a script would send it; it returns the token, the
// local host:port and the kernel's id.
func StartKernel(t *testing.T, l *Launched) (tok, base, kernel string) {
	t.Helper()
	tok = l.Line.Session.Token
	base = fmt.Sprintf("127.0.0.1:%d", l.Line.LocalPort)
	req, _ := http.NewRequest("POST", "http://"+base+"/api/kernels", strings.NewReader("{}"))
	req.Header.Set("Authorization", "token "+tok)
	resp, err := NoRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var k struct{ ID string }
	json.NewDecoder(resp.Body).Decode(&k)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || k.ID == "" {
		t.Fatalf("POST /api/kernels through the launcher's URL: %d %+v", resp.StatusCode, k)
	}
	return tok, base, k.ID
}
