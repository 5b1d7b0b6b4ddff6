//go:build unix

package team

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tether-dev/tether/e2e"
	"github.com/tether-dev/tether/wire"
)

// detachedTeam is a team server started with `tether serve --detach`.
type detachedTeam struct {
	t     *testing.T
	state string // TETHER_STATE_DIR
	yml   string
	rec   wire.Record
	dirs  map[string]string // app name → the directory it serves (in its argv: a marker)
}

// tether runs the binary with the test's state directory and returns its output.
func (d *detachedTeam) tether(args ...string) (string, error) {
	cmd := exec.Command(e2e.Binary(d.t), args...)
	cmd.Env = append(cleanEnv(), "TETHER_STATE_DIR="+d.state)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		return "", err
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		return out.String(), fmt.Errorf("tether %s did not end within 60s", strings.Join(args, " "))
	}
}

// appProcs are the live processes of the team's apps (by the directory each serves,
// which is in its argv and its supervisor's; the server's own argv, which holds the
// --app values, aside) and the process groups they are in.
func (d *detachedTeam) appProcs() (pids []string, groups map[int]bool) {
	groups = map[int]bool{}
	for _, dir := range d.dirs {
		for _, p := range e2e.ProcessesWith(dir) {
			pid, _ := strconv.Atoi(p[:strings.IndexByte(p, ':')])
			if pid == d.rec.PID {
				continue
			}
			pids = append(pids, p)
			if g := pgidOf(pid); g > 0 {
				groups[g] = true
			}
		}
	}
	return pids, groups
}

// pgidOf is pid's process group (0 if pid is gone).
func pgidOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 3 || f[0] == "Z" {
		return 0
	}
	g, _ := strconv.Atoi(f[2])
	return g
}

// groupsLeft lists the live members of groups.
func groupsLeft(groups map[int]bool) []int {
	var left []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err == nil && groups[pgidOf(pid)] {
			left = append(left, pid)
		}
	}
	return left
}

const teamKeysFile = `access_control: keys
keys:
  kept:
    hash: %s
    apps: [a, b]
`

const teamGoneKey = `  gone:
    hash: %s
    apps: [a]
`

// startDetachedTeam runs `tether serve --detach --json --name NAME --listen 127.0.0.1:0
// --access team.yml --app a=… --app b=…`; each app is a shell whose child, python's
// http.server, serves its own directory. It returns once detach has returned.
func startDetachedTeam(t *testing.T, state, name string, keys map[string]string, hashes map[string]string) *detachedTeam {
	t.Helper()
	base := t.TempDir()
	d := &detachedTeam{t: t, state: state, yml: filepath.Join(base, "team.yml"), dirs: map[string]string{}}
	e2e.WriteFile(t, d.yml, fmt.Sprintf(teamKeysFile, hashes["kept"])+fmt.Sprintf(teamGoneKey, hashes["gone"]), 0o600)
	args := []string{"serve", "--detach", "--json", "--name", name, "--listen", "127.0.0.1:0", "--access", d.yml}
	for _, app := range []string{"a", "b"} {
		d.dirs[app] = filepath.Join(base, name+"-"+app)
		// The app gets the whole path (/a/): its directory holds a/.
		if err := os.MkdirAll(filepath.Join(d.dirs[app], app), 0o755); err != nil {
			t.Fatal(err)
		}
		// Not exec: python is the shell's child, so it outlives its parent when that
		// dies with the app supervisor.
		args = append(args, "--app", fmt.Sprintf("%s=sh -c 'python3 -m http.server {port} --bind 127.0.0.1 --directory %s; exit 1'", app, d.dirs[app]))
	}
	out, err := d.tether(args...)
	if err != nil {
		t.Fatalf("tether serve --detach: %v\n%s", err, out)
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "{") && strings.Contains(l, `"socket"`) {
			if d.rec, err = wire.DecodeRecord([]byte(l)); err != nil {
				t.Fatalf("ready record %q: %v", l, err)
			}
		}
	}
	if d.rec.PID == 0 || d.rec.URL == "" {
		t.Fatalf("no ready record from tether serve --detach:\n%s", out)
	}
	t.Cleanup(func() {
		if _, err := os.Stat(filepath.Join(state, d.rec.ID)); err == nil {
			d.tether("stop", d.rec.ID) // a failed test's session
		}
		left, _ := d.appProcs() // what a failed stop left
		for _, p := range left {
			pid, _ := strconv.Atoi(p[:strings.IndexByte(p, ':')])
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	if pids, groups := d.appProcs(); len(pids) < 4 || len(groups) != 2 {
		t.Fatalf("the apps' processes: %q in groups %v; want a shell and python for each app, two groups", pids, groups)
	}
	return d
}

func (d *detachedTeam) curl(key, path string) int {
	out, _ := exec.Command("curl", "-sS", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}",
		"-H", "Authorization: Bearer "+key, strings.TrimSuffix(d.rec.URL, "/")+path).Output()
	n, _ := strconv.Atoi(string(out))
	return n
}

// TestTeamServerDetached: a team server in the background (--detach, two apps)
// reloads its access file on SIGHUP; `tether stop NAME` ends both apps and removes the
// session, also after the server and the apps' supervisors were killed outright; a
// second app that fails to start takes the first one down with it.
func TestTeamServerDetached(t *testing.T) {
	e2e.Need(t, "python3", "python3")
	e2e.Need(t, "curl", "curl")
	state := filepath.Join(t.TempDir(), "state")
	keys, hashes := map[string]string{}, map[string]string{}
	for _, name := range []string{"kept", "gone"} {
		keys[name] = fmt.Sprintf("%s-key-%d-long-enough", name, time.Now().UnixNano())
		hashes[name] = hashKey(t, keys[name])
	}

	t.Run("SIGHUP reloads, stop ends both apps", func(t *testing.T) {
		d := startDetachedTeam(t, state, "teamd", keys, hashes)
		if a, b := d.curl(keys["gone"], "/a/"), d.curl(keys["kept"], "/b/"); a != 200 || b != 200 {
			t.Fatalf("before the reload: gone key on /a/ %d, kept key on /b/ %d; want 200, 200", a, b)
		}
		// The background server, by the pid of its record, reloads without the gone key.
		e2e.WriteFile(t, d.yml, fmt.Sprintf(teamKeysFile, hashes["kept"]), 0o600)
		if err := syscall.Kill(d.rec.PID, syscall.SIGHUP); err != nil {
			t.Fatalf("SIGHUP to the server (pid %d): %v", d.rec.PID, err)
		}
		if !e2e.WaitFor(10*time.Second, func() bool { return d.curl(keys["gone"], "/a/") == 401 }) {
			t.Errorf("the removed key after SIGHUP: %d; want 401", d.curl(keys["gone"], "/a/"))
		}
		if code := d.curl(keys["kept"], "/a/"); code != 200 {
			t.Errorf("the kept key after SIGHUP: %d; want 200", code)
		}
		if out, _ := d.tether("ls"); !strings.Contains(out, "running") {
			t.Errorf("after SIGHUP, tether ls does not show the server running:\n%s", out)
		}
		pids, groups := d.appProcs()
		out, err := d.tether("stop", "teamd")
		if err != nil || !strings.Contains(out, "stopped "+d.rec.ID) {
			t.Fatalf("tether stop teamd: %v\n%s", err, out)
		}
		if left, _ := d.appProcs(); len(left) > 0 {
			t.Errorf("app processes left after tether stop: %q (of %q)", left, pids)
		}
		if left := groupsLeft(groups); len(left) > 0 {
			t.Errorf("members of the apps' process groups %v left after tether stop: %v", groups, left)
		}
		if _, err := os.Stat(filepath.Join(state, d.rec.ID)); !os.IsNotExist(err) {
			t.Errorf("the session directory is still there after tether stop: %v", err)
		}
	})

	t.Run("stop after a crash ends both apps", func(t *testing.T) {
		d := startDetachedTeam(t, state, "teamk", keys, hashes)
		pids, groups := d.appProcs()
		// The server stopped (so it cleans nothing up), then killed outright together
		// with each app's supervisor (the group leader): the shells die with their
		// supervisors, the pythons live on in their groups. This is what a platform
		// without the supervisor, or the OOM killer, leaves: only the record knows.
		syscall.Kill(d.rec.PID, syscall.SIGSTOP)
		for g := range groups {
			syscall.Kill(g, syscall.SIGKILL)
		}
		syscall.Kill(d.rec.PID, syscall.SIGKILL)
		if !e2e.WaitFor(5*time.Second, func() bool { return pgidOf(d.rec.PID) == 0 }) {
			t.Fatalf("the server (pid %d) did not die", d.rec.PID)
		}
		// The supervisors and shells take a moment to die.
		if !e2e.WaitFor(5*time.Second, func() bool { left, _ := d.appProcs(); return len(left) == 2 }) {
			left, _ := d.appProcs()
			t.Fatalf("after the crash: %q; want each app's python left (of %q)", left, pids)
		}
		if out, _ := d.tether("ls"); !strings.Contains(out, "dead") {
			t.Errorf("tether ls after the crash does not say dead:\n%s", out)
		}
		out, err := d.tether("stop", "teamk")
		if err != nil {
			t.Fatalf("tether stop teamk: %v\n%s", err, out)
		}
		if left := groupsLeft(groups); len(left) > 0 {
			left2, _ := d.appProcs()
			t.Errorf("after tether stop, members of the apps' groups are left: %v (%q)", left, left2)
		}
		if _, err := os.Stat(filepath.Join(state, d.rec.ID)); !os.IsNotExist(err) {
			t.Errorf("the session directory is still there after tether stop: %v", err)
		}
	})

	t.Run("a failed second app stops the first", func(t *testing.T) {
		d := &detachedTeam{t: t, state: state, dirs: map[string]string{"a": filepath.Join(t.TempDir(), "first-a")}}
		if err := os.Mkdir(d.dirs["a"], 0o755); err != nil {
			t.Fatal(err)
		}
		out, err := d.tether("serve", "--detach", "--name", "teamf",
			"--app", "a=python3 -m http.server {port} --bind 127.0.0.1 --directory "+d.dirs["a"],
			"--app", "b=sh -c 'echo b cannot start; exit 3'")
		if err == nil || !strings.Contains(out, "b cannot start") {
			t.Errorf("serve --detach with a failing second app: %v\n%s", err, out)
		}
		if left, _ := d.appProcs(); len(left) > 0 {
			t.Errorf("app a still runs after b failed to start: %q", left)
		}
		if out, _ := d.tether("ls"); strings.Contains(out, "teamf") {
			t.Errorf("the failed session is listed:\n%s", out)
		}
	})

	if ents, _ := os.ReadDir(state); len(ents) > 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("the state directory still holds %v", names)
	}
}
