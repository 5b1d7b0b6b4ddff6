//go:build unix

package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// Issue 15, Lifecycle: the second, third and hundredth launch.

// launchJSON starts `tether launch -F CONFIG HOST --json --no-browser EXTRA...` and
// waits for its JSON line; env is added to the launcher's environment.
func launchJSON(t *testing.T, s *SSHD, env []string, extra ...string) *Launched {
	t.Helper()
	args := append([]string{"launch", "-F", s.Config, s.Alias, "--json", "--no-browser"}, extra...)
	l := StartLauncher(t, args, true, env...)
	if l.Line.Session.ID == "" {
		t.Fatalf("tether %s: no session in %q; stderr:\n%s", strings.Join(args, " "), l.Stdout.String(), l.Stderr.String())
	}
	return l
}

// detach interrupts a launcher (Ctrl-C once the URL works: the session keeps running).
func detach(t *testing.T, l *Launched) {
	t.Helper()
	if err := l.Interrupt(t); err != nil {
		t.Fatalf("detach: %v; stderr:\n%s", err, l.Stderr.String())
	}
}

// sessionIDs are the ids `tether ls HOST --json` lists, with their states.
func sessionIDs(t *testing.T, s *SSHD) map[string]string {
	t.Helper()
	ids := map[string]string{}
	for _, r := range SessionsOn(t, s) {
		ids[fmt.Sprint(r["id"])] = fmt.Sprint(r["state"])
	}
	return ids
}

// TestLaunchSameAppTwice: launching the same command on the same host again attaches
// to the running session (one line says so, naming it and --new) instead of starting a
// second server; --new starts another, and the next launch takes the newest; another
// command is another app; a launch while the same app is still starting waits for it
// and attaches to it.
func TestLaunchSameAppTwice(t *testing.T) {
	NeedPython(t)
	s := StartSSHD(t, SSHDOptions{})
	StopAllOnCleanup(t, s)
	app := append([]string{"--"}, HTTPServerApp...)

	first := launchJSON(t, s, nil, app...)
	a := first.Line.Session.ID
	detach(t, first)

	again := launchJSON(t, s, nil, app...)
	if got := again.Line.Session.ID; got != a {
		t.Errorf("the second launch of the same command got session %s; want %s, the running one", got, a)
	}
	MustContain(t, "the second launch's stderr", again.Stderr.String(),
		"already runs on "+s.Alias+" as session "+a, "attaching to it (--new starts another)")
	if status, body, _ := Fetch(t, fmt.Sprintf("http://127.0.0.1:%d/", again.Line.LocalPort), "Authorization", "token "+again.Line.Session.Token); status != 200 || !strings.Contains(body, HTTPServerTitle) {
		t.Errorf("the reused session's URL: %d %.100q", status, body)
	}
	detach(t, again)
	if ids := sessionIDs(t, s); len(ids) != 1 || ids[a] != "running" {
		t.Fatalf("after launching the same command twice: %v; want %s alone, running", ids, a)
	}

	// --new: another session; the next plain launch takes the newest of the two.
	fresh := launchJSON(t, s, nil, append([]string{"--new"}, app...)...)
	b := fresh.Line.Session.ID
	if b == a || strings.Contains(fresh.Stderr.String(), "already runs") {
		t.Errorf("launch --new got session %s (first %s); stderr:\n%s", b, a, fresh.Stderr.String())
	}
	detach(t, fresh)
	newest := launchJSON(t, s, nil, app...)
	if got := newest.Line.Session.ID; got != b {
		t.Errorf("with two sessions of the app, launch got %s; want the newest, %s", got, b)
	}
	MustContain(t, "stderr", newest.Stderr.String(), "as session "+b, "attaching to the newest of 2")
	detach(t, newest)

	// Another command (one more argument) is another app.
	other := launchJSON(t, s, nil, append(app, "--directory", "/")...)
	c := other.Line.Session.ID
	if c == a || c == b {
		t.Errorf("another command got session %s; want a new one", c)
	}
	detach(t, other)
	if ids := sessionIDs(t, s); len(ids) != 3 {
		t.Errorf("sessions: %v; want 3 (%s, %s, %s)", ids, a, b, c)
	}

	// A launch while the same app is still starting waits for it and attaches to it.
	slow := append([]string{"--"}, slowApp("2.125")...)
	starter := StartLauncher(t, append([]string{"launch", "-F", s.Config, s.Alias, "--json", "--no-browser"}, slow...), false)
	if !WaitFor(20*time.Second, func() bool {
		for _, st := range sessionIDs(t, s) {
			if st == "starting" {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("the slow app's session never showed as starting; stderr:\n%s", starter.Stderr.String())
	}
	waiter := launchJSON(t, s, nil, slow...)
	if !WaitFor(30*time.Second, func() bool { return strings.Contains(starter.Stdout.String(), "\n") }) {
		t.Fatalf("the first launch of the slow app never got ready; stderr:\n%s", starter.Stderr.String())
	}
	if !strings.Contains(starter.Stdout.String(), `"id":"`+waiter.Line.Session.ID+`"`) {
		t.Errorf("the launch made while the app started got session %s; the starting launch's line: %s", waiter.Line.Session.ID, starter.Stdout.String())
	}
	MustContain(t, "the waiting launch's stderr", waiter.Stderr.String(), "already runs on "+s.Alias+" as session "+waiter.Line.Session.ID)
	if ids := sessionIDs(t, s); len(ids) != 4 {
		t.Errorf("sessions: %v; want 4 (one for the slow app)", ids)
	}
	detach(t, waiter)
	detach(t, starter)
}

// TestSlurmLaunchSameAppTwice: with --slurm, a launch of the same app with the same
// sbatch options attaches to the session whose job runs, or waits with one still
// queued, instead of submitting another job; a session whose job has ended is never
// reused.
func TestSlurmLaunchSameAppTwice(t *testing.T) {
	site := StartSlurmSite(t, SlurmOptions{})
	s := site.Slurm
	Binary(t)

	first := site.Launch(t, "-p debug -t 30", "--no-browser")
	a := first.Line.Session.ID
	detach(t, first)
	again := site.Launch(t, "-p debug -t 30", "--no-browser")
	if got := again.Line.Session.ID; got != a {
		t.Errorf("the second launch got session %s; want %s, whose job runs", got, a)
	}
	MustContain(t, "stderr", again.Stderr.String(), "already submitted on "+site.SSHD.Alias+" with these options, as session "+a, "(--new submits another)")
	if strings.Contains(again.Stderr.String(), "submitted job") {
		t.Errorf("the second launch submitted a job:\n%s", again.Stderr.String())
	}
	if q := site.ActiveJobs(t); len(q) != 1 {
		t.Errorf("the queue: %v; want the one job of session %s", q, a)
	}
	detach(t, again)

	// Its job ends: the next launch submits a new one.
	j, _ := site.JobNamed(t, a)
	if err := s.Scancel(j.ID); err != nil {
		t.Fatal(err)
	}
	s.WaitState(t, j.ID, 30*time.Second, "CANCELLED")
	after := site.Launch(t, "-p debug -t 30", "--no-browser")
	b := after.Line.Session.ID
	if b == a || strings.Contains(after.Stderr.String(), "already submitted") || !strings.Contains(after.Stderr.String(), "submitted job") {
		t.Errorf("after session %s's job ended, launch got session %s; stderr:\n%s", a, b, after.Stderr.String())
	}
	if err := after.Interrupt(t); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := RunTether(t, site.Args("stop", b)...); code != 0 {
		t.Fatalf("stop %s: exit %d: %s", b, code, errOut)
	}

	// A job still queued is waited for, not doubled.
	blocker := s.FillNode(t)
	queued := StartLauncher(t, site.Args("launch", "--slurm", "-p debug -t 30", "--json", "--no-browser", "--detach-pending"), false)
	if !WaitStderr(t, queued, "PENDING (Resources)", 30*time.Second) {
		t.Fatalf("no PENDING line; stderr:\n%s", queued.Stderr.String())
	}
	detach(t, queued)
	var c string
	for _, r := range site.Sessions(t) {
		if r["state"] == "pending" {
			c = fmt.Sprint(r["id"])
		}
	}
	waiter := StartLauncher(t, site.Args("launch", "--slurm", "-p debug -t 30", "--json", "--no-browser"), false)
	if !WaitStderr(t, waiter, "PENDING (Resources)", 30*time.Second) {
		t.Fatalf("the second launch shows no PENDING line; stderr:\n%s", waiter.Stderr.String())
	}
	MustContain(t, "the second launch's stderr", waiter.Stderr.String(), "already submitted on "+site.SSHD.Alias+" with these options, as session "+c)
	if q := site.ActiveJobs(t); len(q) != 2 {
		t.Errorf("the queue: %v; want the blocker and session %s's job", q, c)
	}
	if err := s.Scancel(blocker); err != nil {
		t.Fatal(err)
	}
	if !WaitFor(60*time.Second, func() bool { return strings.Contains(waiter.Stdout.String(), "\n") }) {
		t.Fatalf("no JSON line once the job could run; stderr:\n%s", waiter.Stderr.String())
	}
	if !strings.Contains(waiter.Stdout.String(), `"id":"`+c+`"`) {
		t.Errorf("the waiting launch's line: %s; want session %s", waiter.Stdout.String(), c)
	}
	detach(t, waiter)
}

// laptopState is a state directory for the launcher shared by several tether runs of a
// test (each gets a throwaway HOME), so they remember local ports as one laptop does.
func laptopState(t *testing.T) []string {
	return []string{"XDG_STATE_HOME=" + t.TempDir()}
}

// TestStableLocalPorts: attach comes back on the local port the session had last time
// on this laptop, and so does a launch that reuses the session; a port taken meanwhile
// is said so and another is used; --port wins and is remembered.
func TestStableLocalPorts(t *testing.T) {
	NeedPython(t)
	s := StartSSHD(t, SSHDOptions{})
	StopAllOnCleanup(t, s)
	laptop := laptopState(t)
	app := append([]string{"--"}, HTTPServerApp...)
	attach := func(extra ...string) *Launched {
		t.Helper()
		return StartLauncher(t, append([]string{"attach", "-F", s.Config, s.Alias, "--json", "--no-browser"}, extra...), true, laptop...)
	}
	works := func(l *Launched) {
		t.Helper()
		url := fmt.Sprintf("http://127.0.0.1:%d/", l.Line.LocalPort)
		if status, body, _ := Fetch(t, url, "Authorization", "token "+l.Line.Session.Token); status != 200 || !strings.Contains(body, HTTPServerTitle) {
			t.Errorf("%s: %d %.100q", url, status, body)
		}
	}

	first := launchJSON(t, s, laptop, app...)
	port, id := first.Line.LocalPort, first.Line.Session.ID
	detach(t, first)

	back := attach()
	if back.Line.LocalPort != port || back.Line.Session.ID != id {
		t.Errorf("attach: session %s on port %d; want %s on %d, last time's", back.Line.Session.ID, back.Line.LocalPort, id, port)
	}
	works(back)

	// While it holds the port, another attach says so and takes another.
	second := attach(id)
	if second.Line.LocalPort == port {
		t.Errorf("a second attach got port %d too", port)
	}
	MustContain(t, "the second attach's stderr", second.Stderr.String(),
		fmt.Sprintf("local port %d, session %s's last time, is in use here; using %d this time", port, id, second.Line.LocalPort))
	works(second)
	detach(t, second)
	detach(t, back)

	// A launch of the same app reuses the session, and its port.
	relaunch := launchJSON(t, s, laptop, app...)
	if relaunch.Line.Session.ID != id || relaunch.Line.LocalPort != port {
		t.Errorf("launch again: session %s on port %d; want %s on %d", relaunch.Line.Session.ID, relaunch.Line.LocalPort, id, port)
	}
	detach(t, relaunch)

	// --port N wins, and is the port next time.
	ln := freePort(t)
	given := attach("--port", fmt.Sprint(ln))
	if given.Line.LocalPort != ln {
		t.Errorf("attach --port %d: port %d", ln, given.Line.LocalPort)
	}
	detach(t, given)
	if next := attach(); next.Line.LocalPort != ln {
		t.Errorf("attach after --port %d: port %d; want %d", ln, next.Line.LocalPort, ln)
	} else {
		detach(t, next)
	}
}

// freePort is a loopback port free now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestLsHostTable: `tether ls HOST` shows a table with each session's name, app and
// the local URL this laptop remembers for it, and no token (--show-token shows them);
// `ls HOST --json` keeps the contract's fields, tokens included, and adds local_port.
func TestLsHostTable(t *testing.T) {
	NeedPython(t)
	s := StartSSHD(t, SSHDOptions{})
	StopAllOnCleanup(t, s)
	laptop := laptopState(t)
	web := launchJSON(t, s, laptop, append([]string{"--name", "web", "--"}, HTTPServerApp...)...)
	detach(t, web)
	page := launchJSON(t, s, nil, "builtin") // from another laptop: no local URL here
	detach(t, page)
	ls := func(args ...string) string {
		t.Helper()
		out, errOut, code := RunTetherEnv(t, laptop, append([]string{"ls", "-F", s.Config, s.Alias}, args...)...)
		if code != 0 {
			t.Fatalf("tether ls %s %v: exit %d: %s", s.Alias, args, code, errOut)
		}
		return out
	}

	out := ls()
	rows := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		rows[f[0]] = strings.Join(f, " ")
	}
	want := map[string]string{
		"ID":                 "ID NAME APP STATE STARTED LOCAL URL",
		web.Line.Session.ID:  fmt.Sprintf("%s web %s running", web.Line.Session.ID, strings.Join(HTTPServerApp, " ")[:39]+"…"),
		page.Line.Session.ID: page.Line.Session.ID + " - builtin running",
	}
	for id, w := range want {
		if !strings.HasPrefix(rows[id], w) {
			t.Errorf("ls row %s: %q; want it to start %q\n%s", id, rows[id], w, out)
		}
	}
	if !strings.HasSuffix(rows[web.Line.Session.ID], fmt.Sprintf(" ago http://127.0.0.1:%d/", web.Line.LocalPort)) || !strings.HasSuffix(rows[page.Line.Session.ID], " ago -") {
		t.Errorf("local URLs: want web's port %d and none for the other:\n%s", web.Line.LocalPort, out)
	}
	for _, tok := range []string{web.Line.Session.Token, page.Line.Session.Token} {
		if strings.Contains(out, tok) {
			t.Errorf("ls shows a token:\n%s", out)
		}
	}
	if strings.Contains(out, "--bind 127.0.0.1") || len(rows) != 3 {
		t.Errorf("ls shows more than a row per session:\n%s", out)
	}

	if out := ls("--show-token"); !strings.Contains(out, "TOKEN") || !strings.Contains(out, web.Line.Session.Token) || !strings.Contains(out, page.Line.Session.Token) {
		t.Errorf("ls --show-token:\n%s", out)
	}

	var list []map[string]any
	if err := json.Unmarshal([]byte(ls("--json")), &list); err != nil || len(list) != 2 {
		t.Fatalf("ls --json: %v %v", list, err)
	}
	for _, r := range list {
		for _, k := range []string{"id", "name", "pid", "host", "socket", "url", "token", "base_url", "tls", "cert_sha256", "command", "started", "version", "state"} {
			if _, ok := r[k]; !ok {
				t.Errorf("ls --json record %v lacks %q", r["id"], k)
			}
		}
		switch r["id"] {
		case web.Line.Session.ID:
			if !EqSecret(fmt.Sprint(r["token"]), web.Line.Session.Token) || r["local_port"] != float64(web.Line.LocalPort) {
				t.Errorf("ls --json of web: token or local_port wrong: %v", r)
			}
		case page.Line.Session.ID:
			if _, ok := r["local_port"]; ok || r["app"] != "builtin" {
				t.Errorf("ls --json of the built-in page: %v", r)
			}
		}
	}
}
