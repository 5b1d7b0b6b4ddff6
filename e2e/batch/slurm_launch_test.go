//go:build unix

package batch

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/tether-dev/tether/e2e"
)

// TestSlurmLaunch is issue 8's end-to-end check, on one real Slurm cluster (clusters are
// serialised) behind one real sshd: launch --slurm gives a working app on the compute
// node through the login node (also in Chromium, WebSocket and cookie flow through the
// TLS hop), ls shows the job, detach and attach come back, logs show the job's output,
// stop cancels the job and leaves no process; --via-node-ssh; Slurm's refusals and
// never-starting jobs fail with Slurm's words and leave nothing queued; a pending job
// shows its reason, --detach-pending leaves it queued and Ctrl-C otherwise cancels it;
// a job whose app fails shows its output. EnforcePartLimits=NO, Slurm's own default,
// so an over-limit job is queued (and must be recognised as never starting).
func TestSlurmLaunch(t *testing.T) {
	site := e2e.StartSlurmSite(t, e2e.SlurmOptions{EnforcePartLimits: "NO"})
	s := site.Slurm
	e2e.Binary(t)

	t.Run("launch, browser, ls, detach, attach, logs, stop", func(t *testing.T) {
		l := site.Launch(t, "-p debug -t 30") // the first job of a fresh cluster: ~3 s to its first scheduling pass
		sess := l.Line.Session
		tok := sess.Token
		base := fmt.Sprintf("http://127.0.0.1:%d/", l.Line.LocalPort)

		// squeue shows the job, running on the node, named after the session.
		j, ok := site.JobNamed(t, sess.ID)
		if !ok || j.State != "RUNNING" || j.Node != s.Node || j.Partition != "debug" {
			t.Fatalf("squeue: %+v (found %v)", j, ok)
		}
		var rec map[string]any
		json.Unmarshal([]byte(strings.TrimSpace(l.Stdout.String())), &struct {
			Session *map[string]any `json:"session"`
		}{&rec})
		if rec["job_id"] != j.ID || rec["node"] != s.Node || rec["tls"] != true || !strings.HasPrefix(fmt.Sprint(rec["url"]), "https://") || rec["addr"] == "" {
			t.Errorf("the record lacks the job, node or address: %v", rec)
		}

		// The app answers through the local URL: plain http here, TLS on the hop.
		if status, body, _ := e2e.Fetch(t, base, "Authorization", "token "+tok); status != 200 || !strings.Contains(body, "tether's built-in app") {
			t.Errorf("with the token: %d %.200q", status, body)
		}
		if status, _, _ := e2e.Fetch(t, base, "Accept", "text/html"); status != 401 {
			t.Errorf("without the token: %d", status)
		}
		// The token is in no command line and not in the job's output file.
		if p := e2e.ProcessesWith(tok); len(p) > 0 {
			t.Errorf("the token is on a command line: %q", p)
		}
		if b, err := os.ReadFile(filepath.Join(site.SessionDir(sess.ID), "job.out")); err != nil || strings.Contains(string(b), tok) || !strings.Contains(string(b), "ready on "+s.Node) {
			t.Errorf("job output: %v %q", err, b)
		}

		// Chromium, through the launcher's one-time code: the built-in page and its
		// WebSocket (cookie + Origin checks through the TLS hop).
		var target string
		if !e2e.WaitFor(10*time.Second, func() bool { ts := e2e.OpenedTargets(l); target = strings.Join(ts, " "); return len(ts) > 0 }) {
			t.Fatalf("the launcher opened no browser")
		}
		ctx := e2e.Browser(t)
		if err := chromedp.Do(e2e.WithTimeout(ctx, 20*time.Second), chromedp.Navigate(target)); err != nil {
			t.Fatal(err)
		}
		var ws string
		e2e.WaitFor(15*time.Second, func() bool {
			ws, _ = chromedp.Run(e2e.WithTimeout(ctx, 2*time.Second), chromedp.Text("#ws"))
			return ws == "connected"
		})
		loc, _ := chromedp.Run(e2e.WithTimeout(ctx, 5*time.Second), chromedp.Location())
		host, _ := chromedp.Run(e2e.WithTimeout(ctx, 5*time.Second), chromedp.Text("#host"))
		if ws != "connected" || loc != base || !strings.HasPrefix(host, s.Node) {
			html, _ := chromedp.Run(e2e.WithTimeout(ctx, 5*time.Second), chromedp.OuterHTML("html"))
			t.Errorf("Chromium: WebSocket %q, at %q (want %q), host %q\n%s", ws, loc, base, host, html)
		}
		// A reload works by the cookie alone (the one-time code is spent).
		if err := chromedp.Do(e2e.WithTimeout(ctx, 20*time.Second), chromedp.Navigate(base)); err != nil {
			t.Fatal(err)
		}
		if title, _ := chromedp.Run(e2e.WithTimeout(ctx, 5*time.Second), chromedp.Title()); !strings.Contains(title, sess.ID) {
			t.Errorf("reload by cookie: title %q", title)
		}
		// The server saw TLS, so its cookie is Secure and __Host-: Chromium keeps it for
		// http://127.0.0.1 (a potentially trustworthy origin).
		cookies, err := chromedp.Run(e2e.WithTimeout(ctx, 5*time.Second), func(ctx context.Context, tg *chromedp.Target) (network.GetCookiesResult, error) {
			return cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{})
		})
		var ours []string
		for _, c := range cookies.Cookies {
			if strings.HasPrefix(c.Name, "__Host-tether-") && c.Secure && c.HTTPOnly && c.Path == "/" {
				ours = append(ours, c.Name)
			}
		}
		if err != nil || len(ours) != 1 {
			t.Errorf("Chromium's cookies for %s: %v (err %v); want one Secure, HttpOnly __Host-tether- cookie", base, cookies.Cookies, err)
		}

		// ls over SSH: the job, its state, node and time left.
		out, errOut, code := e2e.RunTether(t, site.Args("ls")...)
		e2e.MustContain(t, "ls", out, sess.ID, "running", "job "+j.ID+" RUNNING on "+s.Node, " left")
		if code != 0 {
			t.Errorf("ls: exit %d: %s", code, errOut)
		}
		for _, r := range site.Sessions(t) {
			if r["id"] == sess.ID && (r["state"] != "running" || r["job_id"] != j.ID || r["node"] != s.Node) {
				t.Errorf("ls --json: %v", r)
			}
		}

		// Detach (Ctrl-C): exit 0, the job keeps running, the user is told how to come back.
		if err := l.Interrupt(t); err != nil {
			t.Fatalf("launcher after SIGINT: %v", err)
		}
		e2e.MustContain(t, "stderr after Ctrl-C", l.Stderr.String(), "detached", "tether attach", sess.ID)
		if j2, _ := site.JobNamed(t, sess.ID); j2.State != "RUNNING" {
			t.Fatalf("after detach the job is %+v", j2)
		}

		// attach from "another laptop" (a fresh HOME; only SSH).
		a := e2e.StartLauncher(t, site.Args("attach", "--json", "--no-browser"), true)
		if a.Line.Session.ID != sess.ID || !e2e.EqSecret(a.Line.Session.Token, tok) {
			t.Fatalf("attach found %+v", a.Line.Session)
		}
		abase := fmt.Sprintf("http://127.0.0.1:%d/", a.Line.LocalPort)
		if status, body, _ := e2e.Fetch(t, abase, "Authorization", "token "+tok); status != 200 || !strings.Contains(body, sess.ID) {
			t.Errorf("after attach: %d %.100q", status, body)
		}
		e2e.MustContain(t, "attach stderr", a.Stderr.String(), "job "+j.ID+" runs on "+s.Node)
		// A dropped SSH connection: the launcher reconnects to the login node and the same
		// local URL answers again (the TLS hop and the job's watch start over).
		if n := site.SSHD.KillConnections(); n == 0 {
			t.Fatal("no sshd connection process to kill")
		}
		dropped := time.Now()
		if !e2e.WaitFor(20*time.Second, func() bool {
			status, body, _ := e2e.Fetch(t, abase, "Authorization", "token "+tok)
			return status == 200 && strings.Contains(body, sess.ID)
		}) {
			t.Fatalf("the URL did not come back after the connection was killed; stderr:\n%s", a.Stderr.String())
		}
		t.Logf("the local URL answered again %s after the SSH connection was killed", e2e.FmtDur(time.Since(dropped)))
		a.Interrupt(t)

		// logs: the job's output file and the app log.
		out, errOut, code = e2e.RunTether(t, site.Args("logs", sess.ID)...)
		e2e.MustContain(t, "logs", out, "==> job "+j.ID+" output", "ready on "+s.Node, "==> app log")
		if code != 0 {
			t.Errorf("logs: exit %d: %s", code, errOut)
		}

		// stop = scancel, waiting until the job is gone; no process of it remains.
		pids := s.JobPIDs(j.ID)
		if len(pids) == 0 {
			t.Fatalf("scontrol listpids %s: no processes", j.ID)
		}
		_, errOut, code = e2e.RunTether(t, site.Args("stop", sess.ID)...)
		if code != 0 {
			t.Fatalf("stop: exit %d: %s", code, errOut)
		}
		if j2, ok := site.JobNamed(t, sess.ID); ok && !strings.Contains("CANCELLED COMPLETED", j2.State) {
			t.Errorf("after stop the job is %+v", j2)
		}
		for _, pid := range pids {
			if e2e.Alive(pid) {
				t.Errorf("process %d of job %s is alive after stop", pid, j.ID)
			}
		}
		if _, err := os.Stat(site.SessionDir(sess.ID)); !os.IsNotExist(err) {
			t.Errorf("the session directory is still there: %v", err)
		}
		if _, err := os.Stat(sess.Socket); !os.IsNotExist(err) {
			t.Errorf("the node's socket %s is still there", sess.Socket)
		}
	})

	t.Run("via node ssh, an app, walltime warning, --rm", func(t *testing.T) {
		e2e.NeedPython(t)
		logins := strings.Count(site.SSHD.Log(), "Accepted publickey")
		l := site.Launch(t, "-t 1", append([]string{"--via-node-ssh", "--rm", "--no-browser", "--"}, e2e.HTTPServerApp...)...)
		sess := l.Line.Session
		base := fmt.Sprintf("http://127.0.0.1:%d/", l.Line.LocalPort)
		if status, body, _ := e2e.Fetch(t, base, "Authorization", "token "+sess.Token); status != 200 || !strings.Contains(body, e2e.HTTPServerTitle) {
			t.Errorf("through the node's socket: %d %.200q", status, body)
		}
		// Three logins: the login node, then the node through it (ProxyJump: the jump
		// host's own connection, and the node's).
		if n := strings.Count(site.SSHD.Log(), "Accepted publickey") - logins; n != 3 {
			t.Errorf("%d SSH logins; want 3 (login node, jump, node)", n)
		}
		// A one-minute job: the launcher warns at once (both warnings due: one line).
		e2e.MustContain(t, "launcher stderr", l.Stderr.String(), "connecting to node "+s.Node+" through "+site.SSHD.Alias,
			"reaches its time limit in about 1 minute")
		if n := strings.Count(l.Stderr.String(), "reaches its time limit"); n != 1 {
			t.Errorf("%d walltime warnings; want 1", n)
		}
		j, _ := site.JobNamed(t, sess.ID)
		pids := s.JobPIDs(j.ID)
		apps := 0
		for _, pid := range pids {
			if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(comm)) == "python3" {
				apps++
			}
		}
		if apps != 1 {
			t.Errorf("scontrol listpids %s: %v, %d of them the app; want the app among them", j.ID, pids, apps)
		}
		// --rm: Ctrl-C stops the session, which is scancel.
		if err := l.Interrupt(t); err != nil {
			t.Fatalf("launcher after SIGINT: %v\n%s", err, l.Stderr.String())
		}
		for _, pid := range pids {
			if e2e.Alive(pid) {
				t.Errorf("process %d of job %s is alive after --rm stopped it", pid, j.ID)
			}
		}
		e2e.MustContain(t, "launcher stderr", l.Stderr.String(), "stopped session "+sess.ID)
		if j2, ok := site.JobNamed(t, sess.ID); ok && j2.State != "CANCELLED" {
			t.Errorf("job %s after --rm: %+v", j.ID, j2)
		}
		if _, err := os.Stat(site.SessionDir(sess.ID)); !os.IsNotExist(err) {
			t.Errorf("the session directory is still there: %v", err)
		}
	})

	t.Run("a preset in the job: jupyter", func(t *testing.T) {
		e2e.Need(t, "jupyter-notebook", "jupyter-notebook")
		l := e2e.StartLauncher(t, site.Args("launch", "jupyter", "--slurm", "-t 10", "--json", "--no-browser"), true)
		rec := l.Line.Session
		base := fmt.Sprintf("http://127.0.0.1:%d/", l.Line.LocalPort)
		if code, body, _ := e2e.Fetch(t, base+"tree", "Authorization", "token "+rec.Token); code != 200 || !strings.Contains(body, "notebook_list") {
			t.Errorf("Jupyter in the job, through the gate: %d %.200q", code, body)
		}
		if j, ok := site.JobNamed(t, rec.ID); !ok || j.State != "RUNNING" {
			t.Errorf("the job: %+v", j)
		}
		if _, errOut, code := e2e.RunTether(t, site.Args("stop", rec.ID)...); code != 0 {
			t.Errorf("stop: exit %d: %s", code, errOut)
		}
		l.Proc.Cmd.Process.Signal(syscall.SIGINT)
		l.Proc.Wait(30 * time.Second)
	})

	// Nothing queued and no session left on the login node.
	nothingLeft := func(t *testing.T) {
		t.Helper()
		if q := site.ActiveJobs(t); len(q) > 0 {
			t.Errorf("jobs left in the queue: %v", q)
		}
		if list := site.Sessions(t); len(list) > 0 {
			t.Errorf("sessions left: %v", list)
		}
	}

	t.Run("bad partition: Slurm's words, at once", func(t *testing.T) {
		start := time.Now()
		_, errOut, code := e2e.RunTether(t, site.Args("launch", "--slurm", "-p nosuch", "--no-browser")...)
		t.Logf("bad partition refused in %s", e2e.FmtDur(time.Since(start)))
		last := e2e.LastLine(errOut)
		if code != 1 || !strings.HasPrefix(last, "tether: could not submit the job on "+site.SSHD.Alias) {
			t.Errorf("exit %d, stderr:\n%s", code, errOut)
		}
		e2e.MustContain(t, "the error", last, "invalid partition specified: nosuch", "Invalid partition name specified", "sinfo -s", "nothing was submitted")
		nothingLeft(t)
	})

	t.Run("never starts: time over the partition's limit", func(t *testing.T) {
		// EnforcePartLimits=NO: sbatch accepts the job, which would pend forever.
		_, errOut, code := e2e.RunTether(t, site.Args("launch", "--slurm", "-p debug -t 5:00:00", "--no-browser")...)
		last := e2e.LastLine(errOut)
		if code != 1 {
			t.Errorf("exit %d, stderr:\n%s", code, errOut)
		}
		e2e.MustContain(t, "the error", last, "can never start: Slurm says Partition", "it was cancelled", "ask for less time with -t")
		t.Logf("the error: %s", last)
		nothingLeft(t)
	})

	t.Run("the app fails in the job: its output", func(t *testing.T) {
		_, errOut, code := e2e.RunTether(t, site.Args("launch", "--slurm", "", "--no-browser", "--", "sh", "-c", "echo boom-from-the-app >&2; exit 3")...)
		if code != 1 {
			t.Errorf("exit %d, stderr:\n%s", code, errOut)
		}
		e2e.MustContain(t, "stderr", errOut, "boom-from-the-app", "output (")
		e2e.MustContain(t, "the error", e2e.LastLine(errOut), "before tether was ready on "+s.Node, "exited with status 3", "nothing was left queued or running")
		nothingLeft(t)
	})

	t.Run("pending: its reason, Ctrl-C cancels, --detach-pending, attach", func(t *testing.T) {
		blocker := s.FillNode(t)
		// Ctrl-C without --detach-pending, not on a terminal: the job is cancelled.
		l := e2e.StartLauncher(t, site.Args("launch", "--slurm", "-p debug", "--json", "--no-browser"), false)
		if !e2e.WaitStderr(t, l, "PENDING (Resources)", 30*time.Second) {
			t.Fatalf("no PENDING (Resources) line; stderr:\n%s", l.Stderr.String())
		}
		err := l.Interrupt(t)
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
			t.Errorf("exit %v; want 130", err)
		}
		e2e.MustContain(t, "stderr", l.Stderr.String(), "not a terminal, so cancelling it", "nothing is left queued")
		if q := site.ActiveJobs(t); len(q) != 1 || q[0] != blocker+" blocker RUNNING" {
			t.Errorf("queue after Ctrl-C: %v; want the blocker alone", q)
		}

		// On a terminal, Ctrl-C asks; "n" leaves the job queued; stop cancels it.
		tty := startOnTerminal(t, site.Args("launch", "--slurm", "-p debug", "--no-browser"))
		if !e2e.WaitFor(30*time.Second, func() bool { return strings.Contains(tty.out.String(), "PENDING (Resources)") }) {
			t.Fatalf("on a terminal: no PENDING (Resources); output:\n%s", tty.out.String())
		}
		tty.in.Write([]byte{3}) // Ctrl-C, through the terminal
		if !e2e.WaitFor(10*time.Second, func() bool { return strings.Contains(tty.out.String(), "? [Y/n]") }) {
			t.Fatalf("no question after Ctrl-C on a terminal; output:\n%s", tty.out.String())
		}
		tty.in.Write([]byte("n\n"))
		if _, ok := tty.Proc.Wait(30 * time.Second); !ok {
			t.Fatalf("tether did not exit after the answer; output:\n%s", tty.out.String())
		}
		e2e.MustContain(t, "terminal", tty.out.String(), "cancel job", "(PENDING)? [Y/n]", "stays queued")
		list := site.Sessions(t)
		if len(list) != 1 || list[0]["state"] != "pending" {
			t.Fatalf("after answering n: %v", list)
		}
		id := fmt.Sprint(list[0]["id"])
		queued, _ := site.JobNamed(t, id)
		if queued.State != "PENDING" {
			t.Errorf("after answering n the job is %+v", queued)
		}
		if _, errOut, code := e2e.RunTether(t, site.Args("stop", id)...); code != 0 {
			t.Errorf("stop of a pending job: exit %d: %s", code, errOut)
		}
		if j, ok := site.JobNamed(t, id); ok && j.State != "CANCELLED" {
			t.Errorf("after stop: %+v", j)
		}

		// --detach-pending: Ctrl-C leaves it queued.
		l = e2e.StartLauncher(t, site.Args("launch", "--slurm", "-p debug", "--json", "--no-browser", "--detach-pending"), false)
		if !e2e.WaitStderr(t, l, "PENDING (Resources)", 30*time.Second) {
			t.Fatalf("no PENDING (Resources) line; stderr:\n%s", l.Stderr.String())
		}
		if err := l.Interrupt(t); err != nil {
			t.Errorf("exit %v; want 0", err)
		}
		e2e.MustContain(t, "stderr", l.Stderr.String(), "stays queued", "attach when it runs: tether attach")
		list = site.Sessions(t)
		if len(list) != 1 || list[0]["state"] != "pending" {
			t.Fatalf("sessions: %v", list)
		}
		id = fmt.Sprint(list[0]["id"])
		job, _ := list[0]["job"].(map[string]any)
		if job["state"] != "PENDING" || job["reason"] != "Resources" {
			t.Errorf("ls --json job: %v", job)
		}
		out, _, _ := e2e.RunTether(t, site.Args("ls")...)
		e2e.MustContain(t, "ls", out, id, "pending", "PENDING (Resources)", "limit 1:00:00")

		// attach waits for it; once the blocker goes, the session comes up.
		a := e2e.StartLauncher(t, site.Args("attach", id, "--json", "--no-browser"), false)
		if !e2e.WaitStderr(t, a, "PENDING (Resources)", 30*time.Second) {
			t.Fatalf("attach shows no PENDING (Resources) line; stderr:\n%s", a.Stderr.String())
		}
		if err := s.Scancel(blocker); err != nil {
			t.Fatal(err)
		}
		if !e2e.WaitFor(60*time.Second, func() bool { return strings.Contains(a.Stdout.String(), "\n") }) {
			t.Fatalf("attach: no JSON line once the job could run; stderr:\n%s", a.Stderr.String())
		}
		if err := json.Unmarshal([]byte(a.Stdout.String()), &a.Line); err != nil || a.Line.Session.ID != id {
			t.Fatalf("attach: %q %v", a.Stdout.String(), err)
		}
		if status, _, _ := e2e.Fetch(t, fmt.Sprintf("http://127.0.0.1:%d/", a.Line.LocalPort), "Authorization", "token "+a.Line.Session.Token); status != 200 {
			t.Errorf("after attach: %d", status)
		}

		// The job ends under the attached launcher (scancel here, as its time limit
		// would): the launcher says so, with the reason, and exits.
		j, _ := site.JobNamed(t, id)
		if err := s.Scancel(j.ID); err != nil {
			t.Fatal(err)
		}
		err = nil
		select {
		case <-a.Proc.Done():
			err, _ = a.Proc.Wait(time.Second)
		case <-time.After(30 * time.Second):
			t.Fatalf("the attached launcher did not notice the job's end; stderr:\n%s", a.Stderr.String())
		}
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Errorf("attach after the job ended: %v; want exit 1", err)
		}
		e2e.MustContain(t, "attach's last line", e2e.LastLine(a.Stderr.String()), "session "+id+" on "+site.SSHD.Alias+" has ended: job "+j.ID+" was cancelled (CANCELLED)", "tether logs")
		out, _, _ = e2e.RunTether(t, site.Args("ls")...)
		e2e.MustContain(t, "ls", out, id, "ended (stopped by a signal)", "job "+j.ID+" CANCELLED")
		if _, errOut, code := e2e.RunTether(t, site.Args("stop", id)...); code != 0 {
			t.Errorf("stop: exit %d: %s", code, errOut)
		}
		nothingLeft(t)
	})
}

// onTerminal is tether run on a pseudo-terminal (util-linux script): in carries keys
// (Ctrl-C is byte 3), out what the terminal shows.
type onTerminal struct {
	Proc *e2e.Proc
	in   io.WriteCloser
	out  *e2e.Buffer
}

func startOnTerminal(t *testing.T, args []string) *onTerminal {
	t.Helper()
	script := e2e.Need(t, "script", "bsdutils")
	line := e2e.Binary(t)
	for _, a := range args {
		line += " '" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	env, _ := e2e.LauncherEnv(t)
	cmd := exec.Command(script, "-q", "-e", "-c", line, "/dev/null")
	cmd.Env = append(env, "TERM=dumb")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	term := &onTerminal{in: in, out: &e2e.Buffer{}}
	cmd.Stdout, cmd.Stderr = term.out, term.out
	term.Proc = e2e.Start(t, cmd)
	// script runs tether in a session of its own: stop it by PID too.
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		for _, p := range e2e.Descendants(pid, "") {
			syscall.Kill(p, syscall.SIGKILL)
		}
		in.Close()
	})
	return term
}
