//go:build unix

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Issue 15, Lifecycle: session state that survives logout, in the XDG places.

// reachable checks that l's URL serves tether's built-in page with the token.
func reachable(t *testing.T, what string, l *Launched) {
	t.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d/", l.Line.LocalPort)
	if status, body, _ := Fetch(t, url, "Authorization", "token "+l.Line.Session.Token); status != 200 || !strings.Contains(body, "tether's built-in app") {
		t.Errorf("%s: %s: %d %.100q", what, url, status, body)
	}
}

// TestDetachedSessionSurvivesLogout: with XDG_RUNTIME_DIR set (systemd hosts), a
// detached session's state is not there: when logind removes that directory at the
// end of the user's last login, the session stays reachable. A session an earlier
// version left in $XDG_RUNTIME_DIR/tether is still listed, attached to and stopped.
func TestDetachedSessionSurvivesLogout(t *testing.T) {
	runtime := t.TempDir()
	s := StartSSHD(t, SSHDOptions{Env: map[string]string{"XDG_RUNTIME_DIR": runtime}})
	StopAllOnCleanup(t, s)

	l := launchJSON(t, s, nil, "builtin")
	id := l.Line.Session.ID
	detach(t, l)
	if _, err := os.Stat(filepath.Join(SessionRoot(s.Home), id, "session.json")); err != nil {
		t.Errorf("the session's record is not in ~/.local/state/tether/sessions: %v", err)
	}
	// logind, at logout: /run/user/UID goes, whatever is in it.
	if err := os.RemoveAll(runtime); err != nil {
		t.Fatal(err)
	}
	back := StartLauncher(t, []string{"attach", "-F", s.Config, s.Alias, id, "--json", "--no-browser"}, true)
	if back.Line.Session.ID != id {
		t.Fatalf("attach after the runtime directory went: %q; stderr:\n%s", back.Stdout.String(), back.Stderr.String())
	}
	reachable(t, "after the runtime directory went", back)
	detach(t, back)

	// A session where an earlier version put it: found, attached to, stopped.
	if err := os.Mkdir(runtime, 0o700); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(runtime, "tether")
	out, errOut, err, _ := SSHRun(t, s, 30*time.Second, "env", "TETHER_STATE_DIR="+old, Binary(t), "serve", "--detach", "--json")
	if err != nil {
		t.Fatalf("a session in %s: %v\n%s%s", old, err, out, errOut)
	}
	var rec struct {
		ID     string `json:"id"`
		Socket string `json:"socket"`
	}
	if JSONUnmarshal(strings.TrimSpace(out), &rec) != nil || !strings.HasPrefix(rec.Socket, old+"/") {
		t.Fatalf("the old-place session's record: %q", out)
	}
	if ids := sessionIDs(t, s); ids[rec.ID] != "running" || ids[id] != "running" {
		t.Errorf("ls --json: %v; want %s (new place) and %s (old place) running", ids, id, rec.ID)
	}
	legacy := StartLauncher(t, []string{"attach", "-F", s.Config, s.Alias, rec.ID, "--json", "--no-browser"}, true)
	reachable(t, "the session in the old place", legacy)
	detach(t, legacy)
	if _, errOut, code := RunTether(t, "stop", "-F", s.Config, s.Alias, rec.ID); code != 0 {
		t.Errorf("stop %s: exit %d: %s", rec.ID, code, errOut)
	}
	if _, err := os.Stat(filepath.Join(old, rec.ID)); !os.IsNotExist(err) {
		t.Errorf("stop left the old-place session's directory: %v", err)
	}
}

// TestXDGDirsHonoured: XDG_CACHE_HOME holds the remote install, XDG_STATE_HOME the
// sessions, and nothing goes to ~/.cache or ~/.local.
func TestXDGDirsHonoured(t *testing.T) {
	cache, state := t.TempDir(), t.TempDir()
	s := StartSSHD(t, SSHDOptions{Env: map[string]string{"XDG_CACHE_HOME": cache, "XDG_STATE_HOME": state}})
	StopAllOnCleanup(t, s)

	l := launchJSON(t, s, nil, "builtin")
	id := l.Line.Session.ID
	reachable(t, "the session", l)
	if bins, _ := filepath.Glob(filepath.Join(cache, "tether", "bin", "tether-*")); len(bins) == 0 {
		t.Errorf("nothing installed in $XDG_CACHE_HOME/tether/bin")
	}
	rec := filepath.Join(state, "tether", "sessions", id, "session.json")
	if fi, err := os.Stat(rec); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the session's record in $XDG_STATE_HOME/tether/sessions: %v", err)
	}
	if !strings.HasPrefix(l.Line.Session.Socket, filepath.Join(state, "tether", "sessions", id)+"/") {
		t.Errorf("the session's socket %s is not in its directory under $XDG_STATE_HOME", l.Line.Session.Socket)
	}
	for _, d := range []string{".cache", ".local"} {
		if _, err := os.Stat(filepath.Join(s.Home, d)); !os.IsNotExist(err) {
			t.Errorf("~/%s was made (%v); want everything in the XDG directories", d, err)
		}
	}
	detach(t, l)
	if ids := sessionIDs(t, s); ids[id] != "running" {
		t.Errorf("ls --json after detach: %v", ids)
	}
}
