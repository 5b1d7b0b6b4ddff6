//go:build linux

package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// impostorScript is the other user of a shared remote: it watches every process's
// command line for the marker (argv[1]), binds the port that follows it on 127.0.0.1
// before the slow app does, and answers like a web server, printing "took PORT" and
// whatever it receives ("got PORT ..."). It holds the port 10 s, lets go and exits.
const impostorScript = `
import os, socket, sys, threading, time
marker = sys.argv[1].encode()
def port_of():
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            a = open("/proc/" + d + "/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        for i in range(len(a) - 1):
            if a[i] == marker and a[i + 1].isdigit():
                return int(a[i + 1])
    return None
def serve(s, port):
    while True:
        try:
            c, _ = s.accept()
        except OSError:
            return
        c.settimeout(2)
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                d = c.recv(4096)
                if not d:
                    break
                data += d
        except OSError:
            pass
        if data:
            print("got %d %r" % (port, data), flush=True)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 13\r\nConnection: close\r\n\r\nimpostor page")
        c.close()
end = time.time() + 120
while time.time() < end:
    p = port_of()
    if p is None:
        time.sleep(0.005)
        continue
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        s.listen(16)
    except OSError as e:
        print("bind %d: %s" % (p, e), flush=True)
        break
    print("took %d" % p, flush=True)
    threading.Thread(target=serve, args=(s, p), daemon=True).start()
    time.sleep(10)
    s.close()
    print("released %d" % p, flush=True)
    break
`

// marker is a unique word for a test's command lines.
func marker(what string) string {
	var b [6]byte
	rand.Read(b[:])
	return "tether-e2e-" + what + "-" + hex.EncodeToString(b[:])
}

// TestLaunchAppPortImpostor is issue 11's attack through a real launch: another user
// of the remote reads the slow app's port from /proc/*/cmdline and binds it first. The
// app's secret is injected as Authorization on every proxied request. The impostor must
// receive nothing (no probe, no request, no secret); the launcher's terminal says who
// held the port, and the session serves the real app on a fresh port.
func TestLaunchAppPortImpostor(t *testing.T) {
	NeedPython(t)
	u := OtherUser(t)
	s := StartSSHD(t, SSHDOptions{})
	StopAllOnCleanup(t, s)
	mark := marker("impostor")
	var seen Buffer
	imp := u.Command("/usr/bin/python3", "-c", impostorScript, mark)
	imp.Stdout, imp.Stderr = &seen, &seen
	Start(t, imp)

	// The app binds a second after it starts, and keeps trying while the port is taken
	// (as an app that retries would): on the old code the impostor served the first
	// requests, then let go, and the real app took over as if nothing happened.
	app := []string{"/bin/sh", "-c", `sleep 1; until /usr/bin/python3 -m http.server "$1" --bind 127.0.0.1; do sleep 0.2; done`, mark, "{port}"}
	args := append([]string{"launch", "-F", s.Config, s.Alias, "--json", "--app-secret-env", "APP_SECRET",
		"--app-header", "Authorization: Bearer {app_secret}", "--"}, app...)
	start := time.Now()
	l := StartLauncher(t, args, true)
	t.Logf("ready after %s", FmtDur(time.Since(start)))
	base := strings.TrimSuffix(l.Line.URL[:strings.Index(l.Line.URL, "?")], "/") + "/"
	status, body, _ := Fetch(t, base, "Authorization", "token "+l.Line.Session.Token)
	if status != http.StatusOK || !strings.Contains(body, HTTPServerTitle) {
		t.Errorf("through the local URL: %d %.200q; want the real app", status, body)
	}
	got := seen.String()
	if !strings.Contains(got, "took ") {
		t.Fatalf("the impostor took no port (the attack did not happen):\n%s", got)
	}
	if strings.Contains(got, "got ") {
		t.Errorf("the impostor received requests:\n%s", got)
	}
	port := strings.Fields(got[strings.Index(got, "took ")+5:])[0]
	errOut := l.Stderr.String()
	MustContain(t, "the launcher's stderr", errOut, "warning: the app's port 127.0.0.1:"+port+" is held by another user, "+u.Name,
		"starting the app again on another port")
	for _, line := range strings.Split(errOut, "\n") {
		if strings.Contains(line, "warning:") {
			t.Logf("launcher: %s", line)
		}
	}
	l.Interrupt(t)
	t.Logf("done after %s", FmtDur(time.Since(start)))
}

// TestLaunchExposedAppRefused: an app listening on every interface is refused with the
// one-line fix on the launcher's terminal and leaves nothing behind; with
// --allow-exposed it runs, with a warning there.
func TestLaunchExposedAppRefused(t *testing.T) {
	NeedPython(t)
	s := StartSSHD(t, SSHDOptions{})
	StopAllOnCleanup(t, s)
	dir := filepath.Join(t.TempDir(), marker("exposed"))
	os.Mkdir(dir, 0o755)
	// http.server without --bind listens on 0.0.0.0; the directory marks its argv.
	app := []string{"/usr/bin/python3", "-m", "http.server", "{port}", "--directory", dir}
	launchFails(t, "exposed app", 30*time.Second, append([]string{"launch", "-F", s.Config, s.Alias, "--no-browser", "--"}, app...),
		"could not start", "listens on 0.0.0.0:", "without the token", "--bind 127.0.0.1", "--allow-exposed", "nothing was left running")
	if list := SessionsOn(t, s); len(list) != 0 {
		t.Errorf("a refused app left sessions: %v", list)
	}
	if p := ProcessesWith(dir); len(p) > 0 {
		t.Errorf("a refused app left processes: %q", p)
	}

	l := StartLauncher(t, append([]string{"launch", "-F", s.Config, s.Alias, "--json", "--allow-exposed", "--"}, app...), true)
	if status, _, _ := Fetch(t, strings.Replace(l.Line.URL, "?token=", "?x=", 1), "Authorization", "token "+l.Line.Session.Token); status != http.StatusOK {
		t.Errorf("with --allow-exposed: %d", status)
	}
	MustContain(t, "the launcher's stderr", l.Stderr.String(), "warning: the app listens on 0.0.0.0:", "--allow-exposed")
	l.Interrupt(t)
}

// TestSlurmLaunchExposedAppRefused: the job's serve on the node makes the same check;
// the refusal reaches the launcher's terminal and nothing is left queued or running;
// --allow-exposed passes through the Slurm path.
func TestSlurmLaunchExposedAppRefused(t *testing.T) {
	NeedPython(t)
	site := StartSlurmSite(t, SlurmOptions{EnforcePartLimits: "NO"})
	Binary(t)
	dir := filepath.Join(t.TempDir(), marker("slurm-exposed"))
	os.Mkdir(dir, 0o755)
	app := []string{"--", "/usr/bin/python3", "-m", "http.server", "{port}", "--directory", dir}
	_, errOut, code := RunTether(t, site.Args("launch", append([]string{"--slurm", "", "--no-browser"}, app...)...)...)
	if code != 1 {
		t.Errorf("exit %d; want 1; stderr:\n%s", code, errOut)
	}
	MustContain(t, "the error", LastLine(errOut), "listens on 0.0.0.0:", "--bind 127.0.0.1", "--allow-exposed")
	t.Logf("slurm launch: %s", LastLine(errOut))
	if q := site.ActiveJobs(t); len(q) > 0 {
		t.Errorf("jobs left in the queue: %v", q)
	}
	if list := site.Sessions(t); len(list) > 0 {
		t.Errorf("sessions left: %v", list)
	}
	if p := ProcessesWith(dir); len(p) > 0 {
		t.Errorf("processes left: %q", p)
	}

	l := StartLauncher(t, site.Args("launch", append([]string{"--slurm", "", "--json", "--no-browser", "--allow-exposed"}, app...)...), true)
	if status, _, _ := Fetch(t, strings.Replace(l.Line.URL, "?token=", "?x=", 1), "Authorization", "token "+l.Line.Session.Token); status != http.StatusOK {
		t.Errorf("with --allow-exposed through Slurm: %d", status)
	}
	l.Interrupt(t)
}
