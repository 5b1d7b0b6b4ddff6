//go:build unix

package e2e

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// SlurmSite is a test "cluster site": a real Slurm cluster on this machine and a real
// sshd playing its login node (sessions get SLURM_CONF through SetEnv), with an
// ssh_config naming the login node (Alias) and the compute node (the cluster's node
// name, reached on the same sshd: the node is this machine).
type SlurmSite struct {
	Slurm  *Slurm
	SSHD   *SSHD
	Config string // ssh_config with both hosts
}

// StartSlurmSite starts a Slurm cluster with opts and its login node, hpc-login.
func StartSlurmSite(t *testing.T, opts SlurmOptions) *SlurmSite {
	t.Helper()
	return SlurmSiteOn(t, StartSlurm(t, opts), "hpc-login", nil)
}

// SlurmSiteOn is a login node of cluster s: an sshd named alias whose sessions get
// SLURM_CONF and env.
func SlurmSiteOn(t *testing.T, s *Slurm, alias string, env map[string]string) *SlurmSite {
	t.Helper()
	sessEnv := map[string]string{"SLURM_CONF": s.Conf}
	for k, v := range env {
		sessEnv[k] = v
	}
	return SlurmSiteOnSSHD(t, s, StartSSHD(t, SSHDOptions{Alias: alias, Env: sessEnv}))
}

// SlurmSiteOnSSHD is a login node of cluster s played by d (whose sessions must get
// SLURM_CONF), with an ssh_config naming it and the cluster's node.
func SlurmSiteOnSSHD(t *testing.T, s *Slurm, d *SSHD) *SlurmSite {
	t.Helper()
	node := strings.Replace(d.ConfigBlock(), "Host "+d.Alias+"\n", "Host "+s.Node+"\n", 1)
	cfg := filepath.Join(d.Dir, "ssh_config_site")
	WriteFile(t, cfg, d.ConfigBlock()+node, 0o600)
	site := &SlurmSite{Slurm: s, SSHD: d, Config: cfg}
	// Whatever a failed check left: every session (and so every job) on the login node.
	StopAllOnCleanupWith(t, 60*time.Second, site.Args("stop", "--all")...)
	return site
}

// Args puts the site's ssh_config and the login node first: tether CMD -F CONFIG HOST ARGS.
func (site *SlurmSite) Args(cmd string, args ...string) []string {
	return append([]string{cmd, "-F", site.Config, site.SSHD.Alias}, args...)
}

func (site *SlurmSite) TetherCmd(env []string, cmd string, args ...string) *exec.Cmd {
	c := exec.Command(Binary(site.Slurm.tb), site.Args(cmd, args...)...)
	c.Env = env
	return c
}

// Launch starts `tether launch --slurm OPTS --json EXTRA…` and waits for its JSON line,
// logging when the launcher reported the job submitted, running, and the URL working
// (the JSON line comes once the local URL answered through the tunnel).
func (site *SlurmSite) Launch(t *testing.T, sbatch string, extra ...string) *Launched {
	t.Helper()
	args := site.Args("launch", append([]string{"--slurm", sbatch, "--json"}, extra...)...)
	start := time.Now()
	l := StartLauncher(t, args, false)
	marks := []string{"submitted job", "is RUNNING", "\n"}
	at := make([]time.Duration, len(marks))
	WaitFor(90*time.Second, func() bool {
		select {
		case <-l.Proc.Done():
			return true
		default:
		}
		out := l.Stderr.String()
		for i, m := range marks[:2] {
			if at[i] == 0 && strings.Contains(out, m) {
				at[i] = time.Since(start)
			}
		}
		if strings.Contains(l.Stdout.String(), "\n") {
			at[2] = time.Since(start)
			return true
		}
		return false
	})
	out := l.Stdout.String()
	if strings.Count(out, "\n") != 1 || json.Unmarshal([]byte(out), &l.Line) != nil {
		t.Fatalf("tether %s: stdout %q: want one JSON line; stderr:\n%s", strings.Join(args, " "), out, l.Stderr.String())
	}
	t.Logf("timings from the launcher's start: job submitted %s, RUNNING %s, URL answering %s (RUNNING → URL %s)",
		FmtDur(at[0]), FmtDur(at[1]), FmtDur(at[2]), FmtDur(at[2]-at[1]))
	return l
}

// jobOf returns the squeue line of the session's job, by the job id in ls --json.
func (site *SlurmSite) Sessions(t *testing.T) []map[string]any {
	t.Helper()
	out, errOut, code := RunTether(t, site.Args("ls", "--json")...)
	if code != 0 {
		t.Fatalf("tether ls --json: exit %d: %s", code, errOut)
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("ls --json output %q: %v", out, err)
	}
	return list
}

// JobNamed finds the job named tether-ID in the whole queue (finished jobs included).
func (site *SlurmSite) JobNamed(t *testing.T, id string) (Job, bool) {
	t.Helper()
	out, _, err := site.Slurm.Run("squeue", "-h", "-t", "all", "-n", "tether-"+id, "-o", SqueueFormat)
	if err != nil {
		t.Fatalf("squeue: %v", err)
	}
	line := strings.TrimSpace(out)
	if line == "" {
		return Job{}, false
	}
	f := strings.SplitN(line, "|", 8)
	if len(f) != 8 {
		t.Fatalf("squeue line %q", line)
	}
	return Job{f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7]}, true
}

// ActiveJobs is the queue's jobs that are not over, one "ID NAME STATE" each.
func (site *SlurmSite) ActiveJobs(t *testing.T) []string {
	t.Helper()
	out, _, err := site.Slurm.Run("squeue", "-h", "-o", "%i %j %T")
	if err != nil {
		t.Fatalf("squeue: %v", err)
	}
	var jobs []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l != "" {
			jobs = append(jobs, l)
		}
	}
	return jobs
}

// SessionDir is where the login node keeps the session (the test sshd's HOME).
func (site *SlurmSite) SessionDir(id string) string {
	return filepath.Join(SlurmSessionRoot(site.SSHD.Home), id)
}
