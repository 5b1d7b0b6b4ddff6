//go:build unix

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SGE is a real single-node Grid Engine cell on this machine (Debian's gridengine
// 8.1.9): sge_qmaster and sge_execd started by the harness in the foreground from a
// temp SGE_ROOT of their own, on ports chosen free, with one queue (all.q) on the one
// host. Every client reaches them on 127.0.0.1 (the cell's host is localhost); the
// daemons themselves listen on all addresses (0.0.0.0, seen with ss: Grid Engine's
// commlib has no setting to bind one), like Slurm's where the host's name does not
// resolve to loopback. Clients reach it through Env (SGE_ROOT, SGE_CELL and the ports);
// nothing under /var/lib/gridengine or /var/spool/gridengine is read or written but
// the programs themselves. Everything is stopped by PID when the test ends, and the
// temp root (spools, logs) is removed.
type SGE struct {
	// Root is the cell's SGE_ROOT: links to Debian's programs, the cell's common
	// directory (bootstrap, act_qmaster, host_aliases), the spools and the logs.
	Root string
	// Env is what a client needs: SGE_ROOT, SGE_CELL, SGE_QMASTER_PORT, SGE_EXECD_PORT.
	Env []string
	// Host is the one host's name in the cell ("localhost": every name of this machine
	// is an alias of it in host_aliases, so that commlib's reverse lookups agree).
	Host string
	// Queue is the one queue, all.q, with Slots slots on Host.
	Queue string
	Slots int
	// QmasterPort and ExecdPort are the daemons' ports.
	QmasterPort, ExecdPort int
	// ColdStart is how long StartSGE took until the queue took jobs.
	ColdStart time.Duration

	tb testing.TB
}

// sgePackages are the Debian packages the cell needs.
const sgePackages = "gridengine-master gridengine-exec gridengine-client"

// sgeDist is where Debian installs Grid Engine's SGE_ROOT (bin, lib, util, utilbin).
const sgeDist = "/var/lib/gridengine"

// StartSGE starts a single-node Grid Engine cell and stops it when tb ends: every
// job is deleted, then sge_execd and sge_qmaster are stopped by PID, then any process
// left of this cell (a shepherd, a job) is killed by PID. The daemons' logs are
// printed if the test failed. It skips (or fails under TETHER_E2E=require) when a
// program is missing, naming the Debian packages.
func StartSGE(tb testing.TB) *SGE {
	tb.Helper()
	bins := map[string]string{}
	for _, prog := range []string{"sge_qmaster", "sge_execd", "qsub", "qstat", "qdel", "qconf", "qacct"} {
		bins[prog] = Need(tb, prog, sgePackages)
	}
	for _, d := range []string{"bin", "lib", "util", "utilbin"} {
		if _, err := os.Stat(filepath.Join(sgeDist, d)); err != nil {
			if Required() {
				tb.Fatalf("%s/%s is missing: reinstall %s", sgeDist, d, sgePackages)
			}
			tb.Skipf("%s/%s is missing: install %s", sgeDist, d, sgePackages)
		}
	}
	start := time.Now()
	u, err := user.Current()
	if err != nil {
		tb.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "tether-sge-")
	if err != nil {
		tb.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	g := &SGE{Root: dir, Host: "localhost", Queue: "all.q", Slots: max(2, runtime.NumCPU()), tb: tb}
	g.QmasterPort, g.ExecdPort = FreePort(tb), FreePort(tb)
	for g.ExecdPort == g.QmasterPort {
		g.ExecdPort = FreePort(tb)
	}
	g.Env = []string{"SGE_ROOT=" + dir, "SGE_CELL=default",
		fmt.Sprintf("SGE_QMASTER_PORT=%d", g.QmasterPort), fmt.Sprintf("SGE_EXECD_PORT=%d", g.ExecdPort)}
	tb.Cleanup(func() {
		// Runs after both daemons are stopped.
		g.killLeftovers()
		if tb.Failed() {
			tb.Logf("grid engine logs (%s):\n%s", dir, g.Logs())
		}
		os.RemoveAll(dir)
	})
	common := filepath.Join(dir, "default", "common")
	for _, d := range []string{common, filepath.Join(dir, "spool", "qmaster"), filepath.Join(dir, "spool", "execd")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	for _, d := range []string{"bin", "lib", "util", "utilbin"} {
		if err := os.Symlink(filepath.Join(sgeDist, d), filepath.Join(dir, d)); err != nil {
			tb.Fatal(err)
		}
	}
	qspool := filepath.Join(dir, "spool", "qmaster")
	WriteFile(tb, filepath.Join(common, "bootstrap"), strings.Join([]string{
		"# Written by tether's e2e harness: a single-node test cell.",
		"admin_user              " + u.Username,
		"default_domain          none",
		"ignore_fqdn             true",
		"spooling_method         classic",
		"spooling_lib            libspoolc",
		"spooling_params         " + common + ";" + qspool,
		"binary_path             /usr/sbin",
		"qmaster_spool_dir       " + qspool,
		"security_mode           none",
		"listener_threads        2",
		"worker_threads          2",
		"scheduler_threads       1",
	}, "\n")+"\n", 0o644)
	WriteFile(tb, filepath.Join(common, "act_qmaster"), g.Host+"\n", 0o644)
	// commlib compares the name a peer gives with what its address resolves to here:
	// 127.0.0.1 may read as localhost or as this host's name, so all are one host.
	aliases := []string{g.Host}
	if h, err := os.Hostname(); err == nil && h != g.Host {
		aliases = append(aliases, h)
		if short, _, ok := strings.Cut(h, "."); ok {
			aliases = append(aliases, short)
		}
	}
	WriteFile(tb, filepath.Join(common, "host_aliases"), strings.Join(aliases, " ")+"\n", 0o644)

	// The cell's spool and global configuration, as Debian's init_cluster makes them,
	// with jobs of any uid (tests run as root), no mail, and accounting flushed at once.
	conf, err := os.ReadFile("/usr/share/gridengine/default-configuration")
	if err != nil {
		tb.Fatalf("reading gridengine's default configuration: %v", err)
	}
	var cb strings.Builder
	for _, l := range strings.Split(string(conf), "\n") {
		k, _, _ := strings.Cut(strings.TrimSpace(l), " ")
		switch k {
		case "execd_spool_dir":
			l = "execd_spool_dir " + filepath.Join(dir, "spool", "execd")
		case "mailer":
			l = "mailer /bin/true"
		case "min_uid", "min_gid":
			l = k + " 0"
		case "load_report_time":
			l = "load_report_time 00:00:05"
		case "reporting_params":
			l = "reporting_params accounting=true reporting=false flush_time=00:00:01 joblog=false sharelog=00:00:00"
		}
		cb.WriteString(l + "\n")
	}
	WriteFile(tb, filepath.Join(dir, "configuration"), cb.String(), 0o644)
	utilbin := filepath.Join(sgeDist, "utilbin")
	if _, err := os.Stat(filepath.Join(utilbin, "spoolinit")); err != nil {
		utilbin = "/usr/lib/gridengine"
	}
	for _, args := range [][]string{
		{"spoolinit", "classic", "libspoolc", common + ";" + qspool, "init"},
		{"spooldefaults", "configuration", filepath.Join(dir, "configuration")},
		{"spooldefaults", "complexes", "/usr/share/gridengine/util/resources/centry"},
		{"spooldefaults", "usersets", "/usr/share/gridengine/util/resources/usersets"},
		{"spooldefaults", "managers", u.Username},
	} {
		prog := filepath.Join(utilbin, args[0])
		if _, err := os.Stat(prog); err != nil {
			prog = filepath.Join("/usr/lib/gridengine", args[0])
		}
		cmd := exec.Command(prog, args[1:]...)
		cmd.Env = g.Environ()
		if out, err := cmd.CombinedOutput(); err != nil {
			tb.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	// sge_qmaster in the foreground (SGE_ND), then the cell's host, queue and a
	// scheduler that runs every second.
	qmaster := g.startDaemon(tb, bins["sge_qmaster"], "qmaster.out")
	if !WaitFor(20*time.Second, func() bool {
		select {
		case <-qmaster.Done():
			tb.Fatalf("sge_qmaster exited:\n%s", g.Logs())
		default:
		}
		_, _, err := g.run(5*time.Second, "qconf", "-sh")
		return err == nil
	}) {
		tb.Fatalf("sge_qmaster does not answer on port %d:\n%s", g.QmasterPort, g.Logs())
	}
	g.mustRun(tb, "qconf", "-as", g.Host)
	WriteFile(tb, filepath.Join(dir, "exechost"), "hostname "+g.Host+"\nload_scaling NONE\ncomplex_values NONE\nuser_lists NONE\n"+
		"xuser_lists NONE\nprojects NONE\nxprojects NONE\nusage_scaling NONE\nreport_variables NONE\n", 0o644)
	g.mustRun(tb, "qconf", "-Ae", filepath.Join(dir, "exechost"))
	tmpl, _ := g.mustRun(tb, "qconf", "-sq")
	var qb strings.Builder
	for _, l := range strings.Split(tmpl, "\n") {
		k, _, _ := strings.Cut(l, " ")
		switch k {
		case "qname":
			l = "qname " + g.Queue
		case "hostlist":
			l = "hostlist " + g.Host
		case "slots":
			l = fmt.Sprintf("slots %d", g.Slots)
		case "shell":
			l = "shell /bin/sh"
		case "pe_list":
			l = "pe_list NONE"
		case "load_thresholds":
			l = "load_thresholds NONE" // the machine's load (other tests) never blocks the queue
		}
		qb.WriteString(l + "\n")
	}
	WriteFile(tb, filepath.Join(dir, "queue"), qb.String(), 0o644)
	g.mustRun(tb, "qconf", "-Aq", filepath.Join(dir, "queue"))
	sconf, _ := g.mustRun(tb, "qconf", "-ssconf")
	var sb strings.Builder
	for _, l := range strings.Split(sconf, "\n") {
		k, _, _ := strings.Cut(l, " ")
		switch k {
		case "schedule_interval":
			l = "schedule_interval 0:0:1"
		case "flush_submit_sec", "flush_finish_sec":
			l = k + " 1"
		}
		sb.WriteString(l + "\n")
	}
	WriteFile(tb, filepath.Join(dir, "sched"), sb.String(), 0o644)
	g.mustRun(tb, "qconf", "-Msconf", filepath.Join(dir, "sched"))

	execd := g.startDaemon(tb, bins["sge_execd"], "execd.out")
	tb.Cleanup(func() {
		// Runs before the daemons' own stop (TERM, then KILL after 5 s): the jobs go
		// first; then the daemons get KILL at once, since sge_qmaster takes over 5 s
		// to shut down on TERM and the cell's state is thrown away anyway.
		g.drain()
		for _, p := range []*Proc{execd, qmaster} {
			p.Cmd.Process.Signal(syscall.SIGKILL)
			p.Wait(5 * time.Second)
		}
	})
	var states string
	if !WaitFor(30*time.Second, func() bool {
		select {
		case <-execd.Done():
			tb.Fatalf("sge_execd exited:\n%s", g.Logs())
		default:
		}
		out, _, err := g.run(5*time.Second, "qstat", "-f", "-q", g.Queue)
		if err != nil {
			return false
		}
		// The queue instance line: all.q@localhost BI 0/0/4 0.50 lx-amd64 [states]
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) >= 5 && f[0] == g.Queue+"@"+g.Host {
				states = strings.Join(f[5:], " ")
				return len(f) == 5 // no state letters: not unknown (u), alarm (a)…
			}
		}
		return false
	}) {
		tb.Fatalf("queue %s@%s did not come up (states %q):\n%s", g.Queue, g.Host, states, g.Logs())
	}
	g.ColdStart = time.Since(start)
	return g
}

// startDaemon starts a Grid Engine daemon in the foreground (SGE_ND=1), its output in
// the root's logName, stopped by PID when the test ends.
func (g *SGE) startDaemon(tb testing.TB, path, logName string) *Proc {
	tb.Helper()
	f, err := os.Create(filepath.Join(g.Root, logName))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(path)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(g.Environ(), "SGE_ND=1")
	cmd.Dir = g.Root
	return Start(tb, cmd)
}

// Environ is this process's environment without any SGE_* variable, plus Env.
func (g *SGE) Environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SGE_") {
			env = append(env, kv)
		}
	}
	return append(env, g.Env...)
}

// Command is a Grid Engine client command (qsub, qstat, qdel, qconf…) aimed at this
// cell.
func (g *SGE) Command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = g.Environ()
	return cmd
}

// Run runs a client command against this cell (30 s at most); err is a *CommandError
// when it fails.
func (g *SGE) Run(name string, args ...string) (stdout, stderr string, err error) {
	return g.run(30*time.Second, name, args...)
}

func (g *SGE) run(timeout time.Duration, name string, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = g.Environ()
	cmd.Dir = g.Root
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), errb.String(), &CommandError{Args: append([]string{name}, args...),
			Stdout: out.String(), Stderr: errb.String(), Err: err}
	}
	return out.String(), errb.String(), nil
}

func (g *SGE) mustRun(tb testing.TB, name string, args ...string) (string, string) {
	tb.Helper()
	out, errOut, err := g.Run(name, args...)
	if err != nil {
		tb.Fatalf("%v\n%s", err, g.Logs())
	}
	return out, errOut
}

// Jobs lists the cell's jobs (every user's) by id: "qw", "r", "Eqw"…
func (g *SGE) Jobs() map[string]string {
	out, _, err := g.run(10*time.Second, "qstat", "-u", "*")
	if err != nil {
		return nil
	}
	jobs := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 5 && allDigitsE2E(f[0]) {
			jobs[f[0]] = f[4]
		}
	}
	return jobs
}

func allDigitsE2E(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// Logs returns the daemons' messages files and their output.
func (g *SGE) Logs() string {
	return logTails(g.Root, 60, "qmaster.out", "spool/qmaster/messages", "execd.out", "spool/execd/"+g.Host+"/messages")
}

// drain deletes every job and waits (15 s at most) until none is left, so that no job
// process outlives the cell.
func (g *SGE) drain() {
	if len(g.Jobs()) == 0 {
		return
	}
	g.run(10*time.Second, "qdel", "-f", "-u", "*")
	WaitFor(15*time.Second, func() bool { return len(g.Jobs()) == 0 })
}

// killLeftovers kills, by PID, any process whose environment names this cell's
// SGE_ROOT (a shepherd or a job the daemons left behind).
func (g *SGE) killLeftovers() {
	want := []byte("SGE_ROOT=" + g.Root + "\x00")
	for _, p := range Processes() {
		if p.PID == os.Getpid() {
			continue
		}
		env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p.PID))
		if bytes.Contains(env, want) {
			syscall.Kill(p.PID, syscall.SIGKILL)
		}
	}
}
