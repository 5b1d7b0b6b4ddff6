//go:build unix

package batch

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/e2e"
)

// TestSlurmUX is issue 14's "Slurm, as an HPC user found it", each item on one real
// single-node cluster behind real sshds: forgetting --slurm says so in one line; a
// session stopped from another terminal does not send the attached launcher's user to
// its deleted logs, and the hint to start anew names the real options; a -t 10 job gets
// no 10-minute warning at its start; logs shows each app line once; a pending preset
// session shows its preset in ls, and the wait shows how long it has been; ended
// sessions can be pruned from the laptop (ls HOST --prune); --via-node-ssh is
// remembered by attach and its hints; a login node that does not let tether through to
// the nodes is found out before anything is submitted.
func TestSlurmUX(t *testing.T) {
	e2e.NeedPython(t)
	site := e2e.StartSlurmSite(t, e2e.SlurmOptions{})
	s := site.Slurm
	e2e.Binary(t)

	t.Run("forgetting --slurm: one line says so", func(t *testing.T) {
		l := e2e.StartLauncher(t, site.Args("launch", "--json", "--no-browser", "--rm"), true)
		// serve's note, in the laptop's words: the host as typed.
		if n := strings.Count(l.Stderr.String(), site.SSHD.Alias+": note: "+site.SSHD.Alias+" submits Slurm jobs"); n != 1 {
			t.Errorf("%d notes about Slurm; want 1; stderr:\n%s", n, l.Stderr.String())
		}
		e2e.MustContain(t, "the note", l.Stderr.String(), "runs on it, not on a compute node", `launch with --slurm "OPTIONS"`)
		l.Interrupt(t)
		// In a job, no such note.
		j := site.Launch(t, "-t 10", "--no-browser", "--rm")
		if strings.Contains(j.Stderr.String(), "submits Slurm jobs") {
			t.Errorf("a note in a batch session: %s", j.Stderr.String())
		}
		j.Interrupt(t)
	})

	t.Run("stopped from another terminal; -t 10 gets no warning at its start", func(t *testing.T) {
		l := site.Launch(t, "-p debug -t 10", "--no-browser")
		id := l.Line.Session.ID
		if strings.Contains(l.Stderr.String(), "reaches its time limit") {
			t.Errorf("a -t 10 job was warned at its start:\n%s", l.Stderr.String())
		}
		if _, errOut, code := e2e.RunTether(t, site.Args("stop", id)...); code != 0 {
			t.Fatalf("stop: exit %d: %s", code, errOut)
		}
		err, ok := l.Proc.Wait(40 * time.Second)
		if !ok {
			t.Fatalf("the attached launcher did not end after stop; stderr:\n%s", l.Stderr.String())
		}
		out := l.Stderr.String()
		last := e2e.LastLine(out)
		if err == nil || strings.Contains(out, "tether logs") || !strings.Contains(last, "was stopped") {
			t.Errorf("exit %v; stderr:\n%s", err, out)
		}
		e2e.MustContain(t, "the hint", out, "start a new one with `tether launch -F "+site.Config+" "+site.SSHD.Alias+" --slurm '-p debug -t 10'`")
	})

	t.Run("logs: each app line once", func(t *testing.T) {
		// An app that serves, then ends on its own: the session is over (app-exited),
		// and its job's output holds the app's last lines, which logs showed again
		// next to the app log.
		app := append([]string{"sh", "-c", `echo "app-line-$$-once"; exec timeout 3 "$@"`, "sh"}, e2e.HTTPServerApp...)
		l := site.Launch(t, "", append([]string{"--no-browser", "--"}, app...)...)
		id := l.Line.Session.ID
		if _, ok := l.Proc.Wait(30 * time.Second); !ok {
			t.Fatalf("the launcher did not end with the app; stderr:\n%s", l.Stderr.String())
		}
		out, errOut, code := e2e.RunTether(t, site.Args("logs", id)...)
		if code != 0 {
			t.Fatalf("logs: exit %d: %s", code, errOut)
		}
		n := 0
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(strings.TrimPrefix(line, "  | "), "app-line-") {
				n++
			}
		}
		if n != 1 {
			t.Errorf("the app's line is in logs %d times; want once:\n%s", n, out)
		}
		e2e.RunTether(t, site.Args("stop", id)...)
	})

	t.Run("pending preset in ls, the wait's line; ls HOST --prune", func(t *testing.T) {
		blocker := s.FillNode(t)
		defer s.Scancel(blocker)
		tty := startOnTerminal(t, site.Args("launch", "jupyter", "--slurm", "-p debug", "--detach-pending", "--no-browser"))
		if !e2e.WaitFor(30*time.Second, func() bool { return strings.Contains(tty.out.String(), "waiting 3s") }) {
			t.Fatalf("no line counting the wait; output:\n%s", tty.out.String())
		}
		screen := tty.out.String()
		if strings.Contains(screen, "PENDING (Resources) on "+site.SSHD.Alias) || strings.Contains(screen, "on "+site.SSHD.Alias+"; waiting") {
			t.Errorf("the pending line names the login node:\n%s", screen)
		}
		t.Logf("the pending line: %q", e2e.LastLine(strings.ReplaceAll(screen, "\r", "\n")))
		tty.in.Write([]byte{3})
		if _, ok := tty.Proc.Wait(30 * time.Second); !ok {
			t.Fatalf("no exit after Ctrl-C:\n%s", tty.out.String())
		}
		list := site.Sessions(t)
		if len(list) != 1 {
			t.Fatalf("sessions: %v", list)
		}
		id := fmt.Sprint(list[0]["id"])
		out, _, _ := e2e.RunTether(t, site.Args("ls")...)
		if row := e2e.LineWith(out, id); !strings.Contains(row, " jupyter ") || strings.Contains(row, "builtin") {
			t.Errorf("ls of a pending jupyter session:\n%s", out)
		}
		// The job ends outside tether (scancel): the session is over, and stays listed
		// (its logs kept) until pruned.
		j, _ := site.JobNamed(t, id)
		s.Scancel(j.ID)
		s.WaitState(t, j.ID, 20*time.Second, "CANCELLED")
		out, errOut, _ := e2e.RunTether(t, site.Args("ls")...)
		e2e.MustContain(t, "ls", out, id, "ended")
		e2e.MustContain(t, "ls's hint", errOut, "`tether ls -F "+site.Config+" "+site.SSHD.Alias+" --prune` removes them")
		_, errOut, code := e2e.RunTether(t, site.Args("ls", "--prune")...)
		if code != 0 || !strings.Contains(errOut, "pruned "+id+" (ended)") {
			t.Errorf("ls HOST --prune: exit %d: %s", code, errOut)
		}
		if list := site.Sessions(t); len(list) != 0 {
			t.Errorf("after --prune: %v", list)
		}
	})

	t.Run("a site's wrapper from the template", func(t *testing.T) {
		// batch/site/tether-batch-template.sh installed as tether-batch-mysite on the
		// login node's PATH, as a site would.
		bin := t.TempDir()
		tmpl, err := os.ReadFile(filepath.Join(e2e.ModuleRoot(), "batch", "site", "tether-batch-template.sh"))
		if err != nil {
			t.Fatal(err)
		}
		e2e.WriteFile(t, filepath.Join(bin, "tether-batch-mysite"), string(tmpl), 0o755)
		os.Chmod(bin, 0o755)
		wsite := e2e.SlurmSiteOnSSHD(t, s, e2e.StartSSHD(t, e2e.SSHDOptions{Alias: "hpc-site", Env: map[string]string{
			"SLURM_CONF": s.Conf, "PATH": bin + ":" + os.Getenv("PATH")}}))
		before := tetherJobs(t, s)
		_, errOut, code := e2e.RunTether(t, wsite.Args("launch", "--batch", "mysite -t 10 --out=/tmp/x", "--no-browser")...)
		if code != 2 && code != 1 || !strings.Contains(errOut, "--out=/tmp/x (sbatch reads it as --output) is tether's own") || !strings.Contains(errOut, "nothing was submitted") {
			t.Errorf("the wrapper's refusal: exit %d: %s", code, errOut)
		}
		if after := tetherJobs(t, s); after != before {
			t.Errorf("a refused option submitted a job")
		}
		l := e2e.StartLauncher(t, wsite.Args("launch", "--batch", "mysite -t 10", "--json", "--no-browser"), true)
		if status, _, _ := e2e.Fetch(t, fmt.Sprintf("http://127.0.0.1:%d/", l.Line.LocalPort), "Authorization", "token "+l.Line.Session.Token); status != 200 {
			t.Errorf("through the site's wrapper: %d", status)
		}
		out, _, _ := e2e.RunTether(t, wsite.Args("ls")...)
		e2e.MustContain(t, "ls", out, l.Line.Session.ID, "running", "RUNNING on "+s.Node, " left")
		l.Interrupt(t)
		e2e.MustContain(t, "launcher", l.Stderr.String(), "submitting a mysite job")
		if _, errOut, code := e2e.RunTether(t, wsite.Args("stop", l.Line.Session.ID)...); code != 0 {
			t.Errorf("stop: exit %d: %s", code, errOut)
		}
		if j, ok := site.JobNamed(t, l.Line.Session.ID); ok && j.State != "CANCELLED" {
			t.Errorf("after stop: %+v", j)
		}
	})

	t.Run("--via-node-ssh is remembered", func(t *testing.T) {
		l := site.Launch(t, "-t 10", "--via-node-ssh", "--no-browser")
		id := l.Line.Session.ID
		l.Interrupt(t)
		e2e.MustContain(t, "come back", l.Stderr.String(), "come back: tether attach -F "+site.Config+" "+site.SSHD.Alias+" --via-node-ssh "+id)
		a := e2e.StartLauncher(t, site.Args("attach", id, "--json", "--no-browser"), true)
		e2e.MustContain(t, "attach without the flag", a.Stderr.String(), "connecting to node "+s.Node+" through "+site.SSHD.Alias)
		a.Interrupt(t)
		e2e.RunTether(t, site.Args("stop", id)...)
	})

	t.Run("--via-node-ssh where the login node lets nobody through: nothing submitted", func(t *testing.T) {
		closed := e2e.SlurmSiteOnSSHD(t, s, e2e.StartSSHD(t, e2e.SSHDOptions{Alias: "hpc-closed", Env: map[string]string{"SLURM_CONF": s.Conf},
			ExtraConfig: []string{"Match all", "AllowTcpForwarding no"}})) // Match: sshd keeps a setting's first value
		before := tetherJobs(t, s)
		_, errOut, code := e2e.RunTether(t, closed.Args("launch", "--slurm", "-t 10", "--via-node-ssh", "--no-browser")...)
		last := e2e.LastLine(errOut)
		if code != 1 || !strings.Contains(last, "does not let tether through") || !strings.Contains(last, "nothing was submitted") {
			t.Errorf("exit %d, stderr:\n%s", code, errOut)
		}
		if after := tetherJobs(t, s); after != before {
			t.Errorf("jobs submitted: %d tether jobs before, %d after", before, after)
		}
	})
}

// tetherJobs counts the cluster's jobs named tether-…, finished ones included.
func tetherJobs(t *testing.T, s *e2e.Slurm) int {
	t.Helper()
	out, _, err := s.Run("squeue", "-h", "-t", "all", "-o", "%j")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(out, "tether-")
}
