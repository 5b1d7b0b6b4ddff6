//go:build linux

package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// portlessApp is http.server on a port of its own choosing written into the command
// (no {port}, {socket} or $PORT), serving dir; bind "" listens on every interface.
func portlessApp(port int, dir, bind string) []string {
	app := []string{"/usr/bin/python3", "-m", "http.server", strconv.Itoa(port), "--directory", dir}
	if bind != "" {
		app = append(app, "--bind", bind)
	}
	return app
}

// TestLaunchCommandWithoutPort: `tether launch HOST -- python3 -m http.server N --bind
// 127.0.0.1`, a COMMAND that names its own port instead of {port}, is served from the
// port the app listens on within seconds (on the old code serve waited on $PORT for its
// 5-minute ready timeout), and the launcher's terminal says so in one line. The same
// app on every interface is refused at once, as with {port}, and leaves nothing.
func TestLaunchCommandWithoutPort(t *testing.T) {
	NeedPython(t)
	s := StartSSHD(t, SSHDOptions{})
	StopAllOnCleanup(t, s)
	Binary(t)
	dir := filepath.Join(t.TempDir(), marker("portless"))
	os.Mkdir(dir, 0o755)
	WriteFile(t, filepath.Join(dir, "portless-marker.txt"), "hello\n", 0o644)
	port := FreePort(t)
	start := time.Now()
	l := StartLauncher(t, append([]string{"launch", "-F", s.Config, s.Alias, "--json", "--no-browser", "--"}, portlessApp(port, dir, "127.0.0.1")...), true)
	took := time.Since(start)
	status, body, _ := Fetch(t, strings.Replace(l.Line.URL, "?token=", "?x=", 1), "Authorization", "token "+l.Line.Session.Token)
	if status != http.StatusOK || !strings.Contains(body, "portless-marker.txt") {
		t.Errorf("through the local URL: %d %.200q; want the app's directory listing", status, body)
	}
	want := "tether: " + s.Alias + ": note: the app listens on 127.0.0.1:" + strconv.Itoa(port) + "; using it"
	MustContain(t, "the launcher's stderr", l.Stderr.String(), want)
	if strings.Contains(l.Stderr.String(), "no {port} or {socket}") {
		t.Errorf("the launcher still says the app must listen on $PORT:\n%s", l.Stderr.String())
	}
	if took > 20*time.Second {
		t.Errorf("the URL worked after %s; want seconds", FmtDur(took))
	}
	t.Logf("URL working after %s; %s", FmtDur(took), LineWith(l.Stderr.String(), "using it"))
	l.Interrupt(t)

	exposedDir := filepath.Join(t.TempDir(), marker("portless-exposed"))
	os.Mkdir(exposedDir, 0o755)
	launchFails(t, "the same app on every interface", 20*time.Second,
		append([]string{"launch", "-F", s.Config, s.Alias, "--no-browser", "--"}, portlessApp(FreePort(t), exposedDir, "")...),
		"listens on", "--bind 127.0.0.1", "--allow-exposed", "nothing was left running")
	if p := ProcessesWith(exposedDir); len(p) > 0 {
		t.Errorf("a refused app left processes: %q", p)
	}
	for _, sess := range SessionsOn(t, s) {
		if sess["id"] != l.Line.Session.ID {
			t.Errorf("a refused app left a session: %v", sess)
		}
	}
}

// TestSlurmLaunchCommandWithoutPort: a batch job's serve runs the same code: the job
// gets ready on the port the app listens on, and the job's output says so.
func TestSlurmLaunchCommandWithoutPort(t *testing.T) {
	NeedPython(t)
	site := StartSlurmSite(t, SlurmOptions{EnforcePartLimits: "NO"})
	Binary(t)
	dir := filepath.Join(t.TempDir(), marker("slurm-portless"))
	os.Mkdir(dir, 0o755)
	WriteFile(t, filepath.Join(dir, "portless-marker.txt"), "hello\n", 0o644)
	port := FreePort(t)
	start := time.Now()
	l := site.Launch(t, "-t 5", append([]string{"--no-browser", "--"}, portlessApp(port, dir, "127.0.0.1")...)...)
	took := time.Since(start)
	status, body, _ := Fetch(t, strings.Replace(l.Line.URL, "?token=", "?x=", 1), "Authorization", "token "+l.Line.Session.Token)
	if status != http.StatusOK || !strings.Contains(body, "portless-marker.txt") {
		t.Errorf("through the local URL: %d %.200q; want the app's directory listing", status, body)
	}
	id := l.Line.Session.ID
	out, _ := os.ReadFile(filepath.Join(site.SessionDir(id), "job.out"))
	MustContain(t, "the job's output", string(out), "note: the app listens on 127.0.0.1:"+strconv.Itoa(port)+"; using it")
	t.Logf("URL working after %s; job output: %s", FmtDur(took), LineWith(string(out), "using it"))
	l.Interrupt(t)
	if _, errOut, code := RunTether(t, site.Args("stop", id)...); code != 0 {
		t.Errorf("stop: exit %d: %s", code, errOut)
	}
}
