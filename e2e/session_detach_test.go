//go:build unix

package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tether-dev/tether/wire"
)

func stateRootOf(s *SSHD) string { return SessionRoot(s.Home) }

func lsOverSSH(t *testing.T, s *SSHD) []wire.Record {
	t.Helper()
	out, errOut, err, _ := SSHRun(t, s, 30*time.Second, Binary(t), "ls", "--json")
	if err != nil {
		t.Fatalf("ls --json: %v\n%s%s", err, out, errOut)
	}
	var list []wire.Record
	if err := JSONUnmarshal(out, &list); err != nil {
		t.Fatalf("ls --json printed %q: %v", out, err)
	}
	return list
}

func stateOf(list []wire.Record, id string) string {
	for _, r := range list {
		if r.ID == id {
			return r.State
		}
	}
	return "(not listed)"
}

var pyServer = []string{"--", "python3", "-m", "http.server", "{port}", "--bind", "127.0.0.1"}

// TestSessionDetachOverSSH is issue 3's main path through a real sshd: detach returns
// at once, the session answers on its socket with the token and 401 without, ls lists
// it, the token is in no process's argv, another uid gets EACCES on the socket, SIGHUP
// is shrugged off, and stop removes everything.
func TestSessionDetachOverSSH(t *testing.T) {
	s := StartSSHD(t, SSHDOptions{})
	rec := DetachOverSSH(t, s, append([]string{"--name", "web"}, pyServer...)...)
	if rec.Name != "web" || rec.URL != "" || !strings.HasPrefix(rec.Socket, stateRootOf(s)) {
		t.Errorf("record: %+v", rec)
	}
	sock := unixClient(rec.Socket)
	if code, _ := get(t, sock, "http://localhost/", ""); code != http.StatusUnauthorized {
		t.Errorf("socket without token: %d; want 401", code)
	}
	if code, body := get(t, sock, "http://localhost/", rec.Token); code != http.StatusOK || !strings.Contains(body, "Directory listing") {
		t.Errorf("socket with token: %d %.80q", code, body)
	}
	apps := Descendants(rec.PID, "python3")
	if len(apps) != 1 {
		t.Fatalf("the server's app processes: %v", apps)
	}
	if st := stateOf(lsOverSSH(t, s), rec.ID); st != wire.StateRunning {
		t.Errorf("ls --json: state %q; want running", st)
	}

	// The token is in no process's argv: not the server's, not the app's.
	if found := ProcessesWith(rec.Token); len(found) != 0 {
		t.Errorf("the token is in a command line: %q", found)
	}
	// Nor in the app's environment.
	if env, err := os.ReadFile("/proc/" + itoa(apps[0]) + "/environ"); err == nil && strings.Contains(string(env), rec.Token) {
		t.Error("the token is in the app's environment")
	}

	// Another user of the machine cannot reach the socket.
	if os.Geteuid() == 0 {
		py := "/usr/bin/python3"
		cmd := exec.Command(py, "-c", "import socket, sys\ns = socket.socket(socket.AF_UNIX)\ntry:\n  s.connect(sys.argv[1]); print('connected')\nexcept OSError as e:\n  print(e.strerror)", rec.Socket)
		cmd.Dir = "/"
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "Permission denied" {
			t.Errorf("uid 65534 connecting to the socket: %q, %v; want Permission denied", out, err)
		}
	} else {
		t.Log("not root: the second-uid check runs in remote's unit tests only when root")
	}

	// SIGHUP (a terminal or connection going away) leaves a detached server alone.
	syscall.Kill(rec.PID, syscall.SIGHUP)
	time.Sleep(300 * time.Millisecond)
	if code, _ := get(t, sock, "http://localhost/", rec.Token); code != http.StatusOK {
		t.Errorf("after SIGHUP: %d; want 200", code)
	}

	// stop: no process, socket, record or directory left.
	out, errOut, err, _ := SSHRun(t, s, 30*time.Second, Binary(t), "stop", "web")
	if err != nil || !strings.Contains(out, "stopped "+rec.ID) {
		t.Fatalf("stop: %v\n%s%s", err, out, errOut)
	}
	if Alive(rec.PID) || Alive(apps[0]) {
		t.Errorf("after stop: server alive %v, app alive %v", Alive(rec.PID), Alive(apps[0]))
	}
	if _, err := os.Lstat(rec.Socket); !os.IsNotExist(err) {
		t.Errorf("the socket is still there: %v", err)
	}
	if des, _ := os.ReadDir(stateRootOf(s)); len(des) != 0 {
		t.Errorf("the state root still holds %v", des)
	}
	if list := lsOverSSH(t, s); len(list) != 0 {
		t.Errorf("ls after stop: %+v", list)
	}
}

// TestSessionSurvivesConnectionDeath: the SSH connection that started the session
// dies (sshd's processes killed, as a dropped network would); the session answers.
func TestSessionSurvivesConnectionDeath(t *testing.T) {
	s := StartSSHD(t, SSHDOptions{})
	cmd := exec.Command("ssh", "-F", s.Config, s.Alias,
		Binary(t)+" serve --detach --json -- python3 -m http.server {port} --bind 127.0.0.1; echo started-sleeping; exec sleep 120")
	var out Buffer
	cmd.Stdout = &out
	proc := Start(t, cmd)
	if !WaitFor(30*time.Second, func() bool { return strings.Contains(out.String(), "started-sleeping") }) {
		t.Fatalf("the session did not start:\n%s", out.String())
	}
	rec, err := wire.DecodeRecord([]byte(strings.SplitN(out.String(), "\n", 2)[0]))
	if err != nil {
		t.Fatal(err)
	}
	KillSessionOnCleanup(t, rec.PID)
	// The connection's own leftovers (the remote sleep) are killed by PID at the end.
	sleepers := Descendants(s.PID(), "sleep")
	t.Cleanup(func() {
		for _, pid := range sleepers {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	if n := s.KillConnections(); n == 0 {
		t.Fatal("no connection to kill")
	}
	if _, exited := proc.Wait(10 * time.Second); !exited {
		t.Fatal("the ssh client did not notice its connection died")
	}
	time.Sleep(300 * time.Millisecond)
	if code, _ := get(t, unixClient(rec.Socket), "http://localhost/", rec.Token); code != http.StatusOK {
		t.Errorf("after the connection died: %d; want 200", code)
	}
	if st := stateOf(lsOverSSH(t, s), rec.ID); st != wire.StateRunning {
		t.Errorf("ls: %s; want running", st)
	}
	if _, errOut, err, _ := SSHRun(t, s, 30*time.Second, Binary(t), "stop", "--all"); err != nil {
		t.Fatalf("stop --all: %v\n%s", err, errOut)
	}
	if Alive(rec.PID) {
		t.Error("the server survived stop --all")
	}
}

// TestSessionKilledServerTakesItsApp: kill -9 of the server leaves no part of the app
// behind, not even a background child that ignores TERM, and ls says dead (never
// running) until stop or --prune clears it.
func TestSessionKilledServerTakesItsApp(t *testing.T) {
	s := StartSSHD(t, SSHDOptions{})
	rec := DetachOverSSH(t, s, "--", "sh", "-c",
		`'(trap "" TERM; exec sleep 300) & exec python3 -m http.server {port} --bind 127.0.0.1'`)
	apps := Descendants(rec.PID, "python3")
	kids := Descendants(rec.PID, "sleep")
	if len(apps) != 1 || len(kids) != 1 {
		t.Fatalf("app processes: python3 %v, sleep %v", apps, kids)
	}
	killed := time.Now()
	syscall.Kill(rec.PID, syscall.SIGKILL)
	if !WaitFor(10*time.Second, func() bool { return !Alive(apps[0]) && !Alive(kids[0]) }) {
		t.Fatalf("the app outlived its killed server: python3 alive %v, its TERM-ignoring child alive %v", Alive(apps[0]), Alive(kids[0]))
	}
	t.Logf("app and its TERM-ignoring child gone %s after kill -9 of the server", time.Since(killed).Round(100*time.Millisecond))
	if st := stateOf(lsOverSSH(t, s), rec.ID); st != wire.StateDead {
		t.Errorf("ls: %s; want dead", st)
	}
	out, errOut, err, _ := SSHRun(t, s, 30*time.Second, Binary(t), "ls")
	if err != nil || !strings.Contains(out, rec.ID) || !strings.Contains(out, "dead") {
		t.Errorf("ls: %v\n%s%s", err, out, errOut)
	}
	if _, errOut, err, _ := SSHRun(t, s, 30*time.Second, Binary(t), "ls", "--prune"); err != nil || !strings.Contains(errOut, "pruned "+rec.ID) {
		t.Errorf("ls --prune: %v\n%s", err, errOut)
	}
	if des, _ := os.ReadDir(stateRootOf(s)); len(des) != 0 {
		t.Errorf("the state root still holds %v", des)
	}
}

// TestSessionFailingAppDetach: an app that fails before it is ready makes --detach fail
// within seconds with the app's output, leaving no process, socket, record or
// directory.
func TestSessionFailingAppDetach(t *testing.T) {
	s := StartSSHD(t, SSHDOptions{})
	out, errOut, err, took := SSHRun(t, s, 30*time.Second, Binary(t), "serve", "--detach", "--json", "--",
		"sh", "-c", "'echo loading config; echo \"error: no such notebook dir-xyzzy\" >&2; exit 7'")
	if err == nil {
		t.Fatalf("detach of a failing app succeeded:\n%s", out)
	}
	if took > 10*time.Second {
		t.Errorf("failing took %s; want seconds", took)
	}
	// DESIGN.md: --json prints exactly one JSON line on failure too: error, hint and
	// app_output (the app's last lines, which the launcher shows).
	var failure struct {
		Error     string   `json:"error"`
		Hint      string   `json:"hint"`
		AppOutput []string `json:"app_output"`
	}
	if strings.Count(out, "\n") != 1 || json.Unmarshal([]byte(out), &failure) != nil || !strings.Contains(failure.Error, "exited with status 7") ||
		failure.Hint == "" || !slices.Contains(failure.AppOutput, "error: no such notebook dir-xyzzy") {
		t.Errorf("stdout of a failed start: %q; want one JSON line with error, hint and app_output", out)
	}
	for _, want := range []string{"no such notebook dir-xyzzy", "exited with status 7"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if found := ProcessesWith("dir-xyzzy"); len(found) != 0 {
		t.Errorf("processes left: %q", found)
	}
	if des, _ := os.ReadDir(stateRootOf(s)); len(des) != 0 {
		t.Errorf("a failed start left %v in the state root", des)
	}
	if found := ProcessesWith(Binary(t) + "\x00serve\x00--ready-fd"); len(found) != 0 {
		t.Errorf("background servers left: %q", found)
	}
}
