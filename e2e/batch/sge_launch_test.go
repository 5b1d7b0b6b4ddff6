//go:build unix

package batch

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tether-dev/tether/e2e"
)

// sgeSite is a Grid Engine "cluster site": a real cell on this machine and a real sshd
// playing its login node (sessions get SGE_ROOT, SGE_CELL and the ports through
// SetEnv).
type sgeSite struct {
	sge    *e2e.SGE
	sshd   *e2e.SSHD
	config string
}

func startSGESite(t *testing.T) *sgeSite {
	t.Helper()
	g := e2e.StartSGE(t)
	env := map[string]string{}
	for _, kv := range g.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	d := e2e.StartSSHD(t, e2e.SSHDOptions{Alias: "sge-login", Env: env})
	cfg := filepath.Join(d.Dir, "ssh_config_site")
	e2e.WriteFile(t, cfg, d.ConfigBlock(), 0o600)
	site := &sgeSite{sge: g, sshd: d, config: cfg}
	// Whatever a failed check left: every session (and so every job).
	e2e.StopAllOnCleanupWith(t, 60*time.Second, site.args("stop", "--all")...)
	return site
}

func (site *sgeSite) args(cmd string, args ...string) []string {
	return append([]string{cmd, "-F", site.config, site.sshd.Alias}, args...)
}

// sessionDir is where the login node keeps a batch session.
func (site *sgeSite) sessionDir(id string) string {
	return filepath.Join(e2e.SlurmSessionRoot(site.sshd.Home), id)
}

// nothingLeft: no job in the cell and no session on the login node.
func (site *sgeSite) nothingLeft(t *testing.T) {
	t.Helper()
	if jobs := site.sge.Jobs(); len(jobs) > 0 {
		t.Errorf("jobs left in the cell: %v", jobs)
	}
	if out, _, _ := e2e.RunTether(t, site.args("ls", "--json")...); strings.TrimSpace(out) != "[]" {
		t.Errorf("sessions left: %s", out)
	}
}

// TestSGELaunch is issue 14's Grid Engine check on a real cell behind a real sshd:
// `launch --sge "-q all.q"` gives a working app in the job through the gate, with the
// job's state while it waits, the node and its time left; ls, logs, detach, attach and
// stop (qdel, nothing left); options tether owns are refused before anything is
// submitted; qsub's refusals come with its words and nothing queued; Ctrl-C while the
// job waits deletes it; a job shorter than the walltime warnings gets one at once; and
// the jupyter preset runs in a job.
func TestSGELaunch(t *testing.T) {
	site := startSGESite(t)
	g := site.sge
	e2e.Binary(t)

	t.Run("launch, ls, logs, detach, attach, stop", func(t *testing.T) {
		start := time.Now()
		// A 90-second h_rt: shorter than every walltime warning, so one comes at once,
		// from the time left Grid Engine's start time and h_rt give.
		l := e2e.StartLauncher(t, site.args("launch", "--sge", "-q all.q -l h_rt=0:01:30", "--json", "--no-browser"), true)
		t.Logf("URL answering %s after the launcher started", e2e.FmtDur(time.Since(start)))
		sess := l.Line.Session
		base := fmt.Sprintf("http://127.0.0.1:%d/", l.Line.LocalPort)
		if status, body, _ := e2e.Fetch(t, base, "Authorization", "token "+sess.Token); status != 200 || !strings.Contains(body, "tether's built-in app") {
			t.Errorf("with the token: %d %.200q", status, body)
		}
		if status, _, _ := e2e.Fetch(t, base, "Accept", "text/html"); status != 401 {
			t.Errorf("without the token: %d", status)
		}
		e2e.MustContain(t, "launcher stderr", l.Stderr.String(), "submitted job", "Grid Engine", "runs on "+g.Host, " left")
		if !e2e.WaitStderr(t, l, "reaches its time limit in about", 10*time.Second) {
			t.Errorf("no walltime warning for a 90 s job; stderr:\n%s", l.Stderr.String())
		}
		if p := e2e.ProcessesWith(sess.Token); len(p) > 0 {
			t.Errorf("the token is on a command line: %q", p)
		}
		var jobID string
		for id, st := range g.Jobs() {
			jobID = id
			if st != "r" {
				t.Errorf("job %s is %q in qstat; want r", id, st)
			}
		}
		if b, err := os.ReadFile(filepath.Join(site.sessionDir(sess.ID), "job.out")); err != nil || strings.Contains(string(b), sess.Token) || !strings.Contains(string(b), "ready on "+g.Host) {
			t.Errorf("job output: %v %q", err, b)
		}

		out, errOut, code := e2e.RunTether(t, site.args("ls")...)
		e2e.MustContain(t, "ls", out, sess.ID, "running", "job "+jobID+" RUNNING (r) on "+g.Host, " left")
		if code != 0 {
			t.Errorf("ls: exit %d: %s", code, errOut)
		}
		if err := l.Interrupt(t); err != nil {
			t.Fatalf("launcher after SIGINT: %v", err)
		}
		e2e.MustContain(t, "stderr after Ctrl-C", l.Stderr.String(), "detached", "tether attach", sess.ID)

		a := e2e.StartLauncher(t, site.args("attach", "--json", "--no-browser"), true)
		if a.Line.Session.ID != sess.ID {
			t.Fatalf("attach found %+v", a.Line.Session)
		}
		if status, _, _ := e2e.Fetch(t, fmt.Sprintf("http://127.0.0.1:%d/", a.Line.LocalPort), "Authorization", "token "+sess.Token); status != 200 {
			t.Errorf("after attach: %d", status)
		}
		a.Interrupt(t)

		out, _, code = e2e.RunTether(t, site.args("logs", sess.ID)...)
		e2e.MustContain(t, "logs", out, "==> job "+jobID+" output", "ready on "+g.Host)
		if code != 0 {
			t.Errorf("logs: exit %d", code)
		}
		// stop --all says what it stopped, and then that nothing is left, in the
		// launcher's words: the login node as the user named it, not as it names itself.
		out, errOut, code = e2e.RunTether(t, site.args("stop", "--all")...)
		if want := "stopped " + sess.ID + " (job " + jobID + " cancelled)\n"; code != 0 || out != want {
			t.Fatalf("stop --all: exit %d: stdout %q, want %q; stderr %s", code, out, want, errOut)
		}
		out, errOut, code = e2e.RunTether(t, site.args("stop", "--all")...)
		if want := "no tether sessions on " + site.sshd.Alias + "\n"; code != 0 || out != want {
			t.Errorf("stop --all with nothing left: exit %d: stdout %q, want %q; stderr %s", code, out, want, errOut)
		}
		site.nothingLeft(t)
	})

	t.Run("options tether owns never reach qsub", func(t *testing.T) {
		for _, opts := range []string{"-o /tmp/x", "-N name", "-t 1-3", "-sync y", "-j y", "-q all.q -b y", "-h", "-w v", "job.sh"} {
			_, errOut, code := e2e.RunTether(t, site.args("launch", "--sge", opts, "--no-browser")...)
			if code != 2 || !strings.HasPrefix(errOut, "tether: --sge ") || strings.Count(errOut, "\n") != 1 {
				t.Errorf("--sge %q: exit %d, stderr %q; want exit 2 and one line", opts, code, errOut)
			}
		}
		site.nothingLeft(t)
	})

	t.Run("qsub refuses: its words, nothing queued", func(t *testing.T) {
		_, errOut, code := e2e.RunTether(t, site.args("launch", "--sge", "-q nosuch.q", "--no-browser")...)
		last := e2e.LastLine(errOut)
		if code != 1 || !strings.HasPrefix(last, "tether: could not submit the job on "+site.sshd.Alias) {
			t.Errorf("exit %d, stderr:\n%s", code, errOut)
		}
		e2e.MustContain(t, "the error", last, "nosuch.q", "qconf -sql", "nothing was submitted")
		site.nothingLeft(t)
	})

	t.Run("pending: Ctrl-C deletes the job", func(t *testing.T) {
		// Fill every slot, so the launch's job waits (qw).
		var blockers []string
		for i := 0; i < g.Slots; i++ {
			out, _, err := g.Run("qsub", "-terse", "-b", "y", "-N", "blocker", "-o", "/dev/null", "-j", "y", "sleep", "600")
			if err != nil {
				t.Fatal(err)
			}
			blockers = append(blockers, strings.TrimSpace(out))
		}
		defer g.Run("qdel", blockers...)
		e2e.WaitFor(20*time.Second, func() bool {
			n := 0
			for _, st := range g.Jobs() {
				if st == "r" {
					n++
				}
			}
			return n == g.Slots
		})
		l := e2e.StartLauncher(t, site.args("launch", "--sge", "-q all.q", "--no-browser"), false)
		if !e2e.WaitStderr(t, l, "PENDING (qw)", 30*time.Second) {
			t.Fatalf("no pending line; stderr:\n%s", l.Stderr.String())
		}
		if err := l.Interrupt(t); err == nil {
			t.Errorf("the launcher exited 0 after Ctrl-C cancelled the job")
		}
		e2e.MustContain(t, "stderr", l.Stderr.String(), "cancelled job", "nothing is left queued")
		g.Run("qdel", blockers...)
		e2e.WaitFor(15*time.Second, func() bool { return len(g.Jobs()) == 0 })
		site.nothingLeft(t)
	})

	t.Run("the jupyter preset in a job", func(t *testing.T) {
		e2e.Need(t, "jupyter-notebook", "jupyter-notebook")
		// Issue 14's own words: tether launch hpc --sge "-q all.q" jupyter.
		l := e2e.StartLauncher(t, site.args("launch", "--sge", "-q all.q", "jupyter", "--json", "--no-browser"), true)
		rec := l.Line.Session
		base := fmt.Sprintf("http://127.0.0.1:%d/", l.Line.LocalPort)
		if code, body, _ := e2e.Fetch(t, base+"tree", "Authorization", "token "+rec.Token); code != 200 || !strings.Contains(body, "notebook_list") {
			t.Errorf("Jupyter in the job, through the gate: %d %.200q", code, body)
		}
		if _, errOut, code := e2e.RunTether(t, site.args("stop", rec.ID)...); code != 0 {
			t.Errorf("stop: exit %d: %s", code, errOut)
		}
		l.Proc.Cmd.Process.Signal(syscall.SIGINT)
		l.Proc.Wait(30 * time.Second)
		site.nothingLeft(t)
	})
}
