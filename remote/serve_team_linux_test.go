package remote

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// withMarker lists the live processes whose argv holds marker (a team app's, and its
// supervisor's, which carries the app's argv).
func withMarker(marker string) []int {
	var pids []int
	for pid := range liveProcs() {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if err == nil && bytes.Contains(b, []byte(marker)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// teamHTTPApp is --app NAME=… for a python http.server on {port} serving dir (the
// marker in its argv); with deaf, it ignores SIGTERM.
func teamHTTPApp(name, dir string, deaf bool) string {
	cmd := "python3 -m http.server {port} --bind 127.0.0.1 --directory " + dir
	if deaf {
		cmd = `sh -c 'trap "" TERM; exec ` + cmd + `'`
	}
	return name + "=" + cmd
}

// TestTeamRecordKeepsEveryApp: a team server's record names each app's process
// group, so that stop (killLeftovers, which runs when the server could not stop them)
// ends them all, not only the last one started.
func TestTeamRecordKeepsEveryApp(t *testing.T) {
	root := tempRoot(t)
	old := appGrace
	appGrace = time.Second
	defer func() { appGrace = old }()
	dir := t.TempDir()
	a, b := filepath.Join(dir, "team-a"), filepath.Join(dir, "team-b")
	for _, d := range []string{a, b} {
		must(t, os.Mkdir(d, 0o755))
	}
	// Apps that ignore TERM: this server, seeing app b end, takes a grace to stop app
	// a, so what is left right after killLeftovers is what killLeftovers left.
	r := startServe(t, ServeOptions{Apps: []string{teamHTTPApp("a", a, true), teamHTTPApp("b", b, true)}})
	if len(withMarker(a)) == 0 || len(withMarker(b)) == 0 {
		t.Fatalf("apps not running: a %v, b %v", withMarker(a), withMarker(b))
	}
	sf, err := readRecord(filepath.Join(root, r.rec.ID, recordFile))
	if err != nil {
		t.Fatal(err)
	}
	// What stop does for a server that is gone (here, before this one notices).
	killLeftovers(context.Background(), sf)
	if left := append(withMarker(a), withMarker(b)...); len(left) > 0 {
		t.Errorf("processes of the team's apps left after killLeftovers: %v (record: app_pid %d)", left, sf.AppPID)
	}
	r.stop(t)
}

// TestTeamAppsStopTogether: the server's own exit stops its apps side by side, each
// within its grace, so apps that ignore TERM cost one grace, not one each (stop waits
// for a server only serverStopWait).
func TestTeamAppsStopTogether(t *testing.T) {
	tempRoot(t)
	old := appGrace
	appGrace = 2 * time.Second
	defer func() { appGrace = old }()
	dir := t.TempDir()
	a, b := filepath.Join(dir, "deaf-a"), filepath.Join(dir, "deaf-b")
	for _, d := range []string{a, b} {
		must(t, os.Mkdir(d, 0o755))
	}
	r := startServe(t, ServeOptions{Apps: []string{teamHTTPApp("a", a, true), teamHTTPApp("b", b, true)}})
	began := time.Now()
	r.stop(t)
	took := time.Since(began)
	if left := append(withMarker(a), withMarker(b)...); len(left) > 0 {
		t.Errorf("processes left after the server stopped: %v", left)
	}
	// Two graces (4 s) in turn; one (2 s) and the gate's shutdown together.
	if took >= 2*appGrace-300*time.Millisecond {
		t.Errorf("stopping two apps that ignore TERM took %s; want about one grace (%s)", took, appGrace)
	}
	t.Logf("two apps ignoring TERM stopped in %s (grace %s)", took.Round(time.Millisecond), appGrace)
}

// TestTeamFailedStartStopsEarlierApps: when the second app fails to start, the first
// (already running) is stopped and the session leaves nothing behind.
func TestTeamFailedStartStopsEarlierApps(t *testing.T) {
	root := tempRoot(t)
	dir := t.TempDir()
	a := filepath.Join(dir, "first")
	must(t, os.Mkdir(a, 0o755))
	var stderr syncBuffer
	err := Serve(context.Background(), ServeOptions{Apps: []string{teamHTTPApp("a", a, false), "b=sh -c 'echo b fails; exit 3'"},
		JSON: true, Stdout: &stderr, Stderr: &stderr})
	if err == nil {
		t.Fatal("the team server started although app b exits at once")
	}
	if left := withMarker(a); len(left) > 0 {
		t.Errorf("app a still runs after b failed to start: %v", left)
	}
	if ents, _ := os.ReadDir(root); len(ents) > 0 {
		t.Errorf("the failed start left %d entries in the state directory", len(ents))
	}
	t.Logf("error: %v", err)
}
