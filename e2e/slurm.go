//go:build unix

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Slurm is a real single-node Slurm cluster on this machine: munged, slurmctld and
// slurmd started by the harness in a temp dir, on loopback ports chosen free, with two
// partitions on the one node. Clients reach it through SLURM_CONF (see Env); nothing
// under /etc/slurm or /etc/munge is read or written. Everything is stopped by PID when
// the test ends.
//
// Clusters are serialised: StartSlurm holds an exclusive lock on /tmp/tether-e2e-slurm.lock
// until the test ends, so a second cluster (another test of this process, or another
// test process on this machine) waits for the first to stop. The node is named after
// this host, and with proctrack/cgroup two clusters would share slurmd's cgroups
// (/sys/fs/cgroup/freezer/slurm_<node>/uid_<uid>/job_<id>, where job ids restart at 1 on
// every fresh cluster).
type Slurm struct {
	// Dir holds everything: configs, munge key and socket, state, spool, logs, pid files.
	// It is removed when the test ends.
	Dir string
	// Conf is the path of slurm.conf (cgroup.conf, gres.conf and plugstack.conf sit beside
	// it).
	Conf string
	// Env is what a client needs to reach this cluster: {"SLURM_CONF=<Conf>"}. Environ is
	// the full environment for commands.
	Env []string
	// Node is the one compute node's name (this host's short hostname); its address is
	// NodeAddr.
	Node     string
	NodeAddr string
	// CPUs and MemoryMB are the node's resources, from `slurmd -C`. A job asking for
	// CPUs (sbatch -c CPUs) fills the node: see FillNode.
	CPUs     int
	MemoryMB int
	// Partitions are the partitions, default first; both hold the one node.
	Partitions []string
	// Proctrack is the ProctrackType in use: proctrack/cgroup where this process may use
	// cgroup v1 (root, freezer mounted), else proctrack/linuxproc (which misses processes
	// that double-fork out of the job).
	Proctrack string
	// CtldPort and SlurmdPort are the ports of slurmctld and slurmd. Clients reach them on
	// NodeAddr (127.0.0.1).
	CtldPort, SlurmdPort int
	// Loopback is true when slurmctld and slurmd listen on loopback only: when this host's
	// name resolves to loopback (as in /etc/hosts here), the harness sets
	// CommunicationParameters=NoCtldInAddrAny,NoInAddrAny; otherwise they listen on all
	// addresses (Slurm's default), still reached on 127.0.0.1.
	Loopback bool
	// MungeSocket is munged's socket.
	MungeSocket string
	// User is the user the daemons run as (SlurmUser), and jobs of this process run as.
	User string
	// ColdStart is how long StartSlurm took, once it had the lock, until the node was idle
	// (slurmd -C, configs, munged, slurmctld, slurmd): about 0.1-0.2 s here. The first job
	// still cannot start before slurmctld's first scheduling pass, ~3 s after it started.
	ColdStart time.Duration

	tb         testing.TB
	hardware   []string // slurmd -C's CPUs=… RealMemory=…
	logDir     string
	cgroupDirs []string
}

// SlurmOptions tunes StartSlurm.
type SlurmOptions struct {
	// Proctrack is the ProctrackType; empty picks proctrack/cgroup when usable here, else
	// proctrack/linuxproc.
	Proctrack string
	// EnforcePartLimits is slurm.conf's EnforcePartLimits; default "ALL": sbatch refuses a
	// job over a partition's limits. "NO" is Slurm's own default: such a job is queued and
	// stays PENDING (reason PartitionConfig, then PartitionTimeLimit), never starting.
	EnforcePartLimits string
	// ExtraConfig lines are appended to slurm.conf.
	ExtraConfig []string
}

// The partitions StartSlurm creates, both on the one node.
const (
	// SlurmDefaultPartition is the default partition: DefaultTime 1:00:00, MaxTime 4:00:00.
	SlurmDefaultPartition = "debug"
	// SlurmGPUPartition is the second partition: DefaultTime 1:00:00, MaxTime 1-00:00:00;
	// the node advertises one fake gres gpu (File=/dev/null), so --gres=gpu:1 is accepted.
	SlurmGPUPartition = "gpu"
)

// slurmPackages are the Debian packages the cluster needs.
const slurmPackages = "munge slurmctld slurmd slurm-client"

// StartSlurm starts a single-node Slurm cluster and stops it when tb ends: first every
// job is cancelled and waited for, then slurmd, slurmctld and munged are stopped by PID,
// then any process left in the cluster's cgroup (or any slurmstepd of this cluster) is
// killed by PID. The daemons' logs are printed if the test failed.
//
// It skips (or fails under TETHER_E2E=require) when a program is missing, naming the
// Debian packages. It runs as any user: the daemons run as this process's user, and jobs
// too; proctrack/cgroup needs root.
func StartSlurm(tb testing.TB, opts SlurmOptions) *Slurm {
	tb.Helper()
	bins := map[string]string{}
	for _, prog := range []string{"munged", "munge", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo", "scontrol"} {
		bins[prog] = Need(tb, prog, slurmPackages)
	}
	unlock := lockSlurm(tb)
	tb.Cleanup(unlock)
	start := time.Now() // time waiting for the lock is not start-up time

	u, err := user.Current()
	if err != nil {
		tb.Fatal(err)
	}
	host, err := os.Hostname()
	if err != nil {
		tb.Fatal(err)
	}
	if i := strings.IndexByte(host, '.'); i > 0 {
		host = host[:i]
	}
	dir, err := os.MkdirTemp("", "tether-slurm-")
	if err != nil {
		tb.Fatal(err)
	}
	s := &Slurm{Dir: dir, Conf: filepath.Join(dir, "slurm.conf"), Node: host, NodeAddr: "127.0.0.1",
		Partitions: []string{SlurmDefaultPartition, SlurmGPUPartition}, User: u.Username, tb: tb,
		MungeSocket: filepath.Join(dir, "munge", "munge.socket"), logDir: filepath.Join(dir, "log")}
	s.Env = []string{"SLURM_CONF=" + s.Conf}
	tb.Cleanup(func() {
		// Runs after every daemon is stopped.
		s.killLeftovers()
		for i := len(s.cgroupDirs) - 1; i >= 0; i-- {
			removeCgroup(s.cgroupDirs[i])
		}
		if tb.Failed() {
			tb.Logf("slurm logs (%s):\n%s", s.Dir, s.Logs())
		}
		os.RemoveAll(dir)
	})
	// munged insists on execute permission for all on its socket directory; the temp dir
	// on the way there must be traversable too.
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{dir, 0o711}, {filepath.Join(dir, "munge"), 0o711}, {filepath.Join(dir, "state"), 0o700},
		{filepath.Join(dir, "spool"), 0o755}, {s.logDir, 0o755}} {
		if err := os.MkdirAll(d.path, d.mode); err != nil {
			tb.Fatal(err)
		}
		if err := os.Chmod(d.path, d.mode); err != nil {
			tb.Fatal(err)
		}
	}

	s.nodeConfig(tb, bins["slurmd"])
	s.Proctrack = opts.Proctrack
	if s.Proctrack == "" {
		s.Proctrack = "proctrack/linuxproc"
		if cgroupV1Usable() {
			s.Proctrack = "proctrack/cgroup"
		}
	}
	if s.Proctrack == "proctrack/cgroup" {
		// slurmd creates /sys/fs/cgroup/<controller>/slurm_<node> (this Debian build has
		// multiple-slurmd support, hence the suffix) and leaves it behind: remove it after
		// if it was ours.
		for _, c := range []string{"freezer", "cpuset", "memory", "devices", "cpuacct"} {
			p := filepath.Join("/sys/fs/cgroup", c, "slurm_"+s.Node)
			if _, err := os.Stat(p); os.IsNotExist(err) {
				s.cgroupDirs = append(s.cgroupDirs, p)
			}
		}
	}
	s.Loopback = hostIsLoopback(s.Node)
	if !s.Loopback {
		tb.Logf("slurm: %s does not resolve to loopback only, so slurmctld and slurmd listen on all addresses", s.Node)
	}
	s.CtldPort, s.SlurmdPort = FreePort(tb), FreePort(tb)
	for s.SlurmdPort == s.CtldPort {
		s.SlurmdPort = FreePort(tb)
	}
	if opts.EnforcePartLimits == "" {
		opts.EnforcePartLimits = "ALL"
	}
	s.writeConfigs(tb, opts)

	// munged, with a fresh key.
	key := make([]byte, 1024)
	rand.Read(key)
	WriteFile(tb, filepath.Join(dir, "munge", "munge.key"), string(key), 0o600)
	munged := exec.Command(bins["munged"], "--foreground", "--socket="+s.MungeSocket,
		"--key-file="+filepath.Join(dir, "munge", "munge.key"),
		"--pid-file="+filepath.Join(dir, "munge", "munged.pid"),
		"--seed-file="+filepath.Join(dir, "munge", "munged.seed"))
	mungedProc := s.startDaemon(tb, munged, "munged.log")
	if !WaitFor(10*time.Second, func() bool { return s.mungeWorks(bins["munge"], mungedProc) }) {
		tb.Fatalf("munged did not start:\n%s", s.Logs())
	}

	// slurmctld, then slurmd once slurmctld listens (a slurmd that cannot register retries
	// only after a second; so do clients). They are stopped by PID in reverse order: slurmd
	// first, since a slurmd whose controller is gone spends ~10 s retrying before it exits.
	ctld := s.startDaemon(tb, exec.Command(bins["slurmctld"], "-D", "-f", s.Conf), "slurmctld.out")
	if !WaitFor(10*time.Second, func() bool {
		select {
		case <-ctld.Done():
			tb.Fatalf("slurmctld exited:\n%s", s.Logs())
		default:
		}
		return tcpListening(s.CtldPort) // not a probe connection: slurmctld would log an error
	}) {
		tb.Fatalf("slurmctld is not listening on port %d:\n%s", s.CtldPort, s.Logs())
	}
	slurmd := s.startDaemon(tb, exec.Command(bins["slurmd"], "-D", "-f", s.Conf, "-N", s.Node), "slurmd.out")
	tb.Cleanup(s.drain) // runs before slurmd is stopped

	var state string
	if !WaitFor(20*time.Second, func() bool {
		select {
		case <-ctld.Done():
			tb.Fatalf("slurmctld exited:\n%s", s.Logs())
		case <-slurmd.Done():
			tb.Fatalf("slurmd exited:\n%s", s.Logs())
		default:
		}
		out, _, _ := s.run(5*time.Second, "sinfo", "-h", "-N", "-n", s.Node, "-o", "%T")
		state, _, _ = strings.Cut(strings.TrimSpace(out), "\n") // a line per partition
		return state == "idle"
	}) {
		reason, _, _ := s.run(5*time.Second, "sinfo", "-h", "-N", "-n", s.Node, "-o", "%T %E")
		tb.Fatalf("slurm node %s is not idle (state %q, %s):\n%s", s.Node, state, strings.TrimSpace(reason), s.Logs())
	}
	s.ColdStart = time.Since(start)
	return s
}

// tcpListening reports whether a socket listens on this TCP port (any address).
func tcpListening(port int) bool {
	suffix := fmt.Sprintf(":%04X", port)
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, _ := os.ReadFile(f)
		for _, l := range strings.Split(string(data), "\n")[1:] {
			fields := strings.Fields(l)
			if len(fields) > 3 && strings.HasSuffix(fields[1], suffix) && fields[3] == "0A" {
				return true
			}
		}
	}
	return false
}

// hostIsLoopback reports whether host resolves to loopback addresses only.
func hostIsLoopback(host string) bool {
	addrs, err := net.LookupIP(host)
	if err != nil || len(addrs) == 0 {
		return false
	}
	for _, a := range addrs {
		if !a.IsLoopback() {
			return false
		}
	}
	return true
}

// lockSlurm takes the machine-wide lock serialising clusters and returns its release.
func lockSlurm(tb testing.TB) func() {
	tb.Helper()
	const path = "/tmp/tether-e2e-slurm.lock" // not os.TempDir(): TMPDIR may differ between processes
	// Open without O_CREAT first: fs.protected_regular refuses O_CREAT on another user's
	// file in a sticky directory.
	f, err := os.Open(path)
	if err != nil {
		f, err = os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o644)
	}
	if err != nil {
		tb.Fatalf("slurm lock: %v", err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			tb.Fatalf("slurm lock %s: %v", path, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			tb.Fatalf("another test cluster held %s for 3 minutes: Slurm clusters are serialised "+
				"(one at a time per machine); a test must not start one while another test's is up", path)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }
}

// cgroupV1Usable reports whether slurmd could use proctrack/cgroup here: cgroup v1 with
// the freezer controller mounted, and root to create cgroups in it.
func cgroupV1Usable() bool {
	if os.Geteuid() != 0 {
		return false
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs("/sys/fs/cgroup/freezer", &st); err != nil {
		return false
	}
	const cgroupSuperMagic = 0x27e0eb
	return st.Type == cgroupSuperMagic
}

// nodeConfig reads the node's hardware from `slurmd -C` (CPUs, Boards, SocketsPerBoard,
// CoresPerSocket, ThreadsPerCore, RealMemory): configured otherwise, slurmd complains or
// the node is drained.
func (s *Slurm) nodeConfig(tb testing.TB, slurmd string) {
	tb.Helper()
	out, err := exec.Command(slurmd, "-C").Output()
	if err != nil {
		tb.Fatalf("slurmd -C: %v\n%s", err, out)
	}
	line, _, _ := strings.Cut(string(out), "\n")
	for _, f := range strings.Fields(line) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "CPUs":
			s.CPUs, _ = strconv.Atoi(v)
		case "RealMemory":
			s.MemoryMB, _ = strconv.Atoi(v)
		}
		switch k {
		case "CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore", "RealMemory":
			s.hardware = append(s.hardware, f)
		}
	}
	if s.CPUs == 0 || s.MemoryMB == 0 {
		tb.Fatalf("slurmd -C: no CPUs/RealMemory in %q", line)
	}
}

func (s *Slurm) writeConfigs(tb testing.TB, opts SlurmOptions) {
	d := s.Dir
	var b strings.Builder
	lines := []string{
		"# Written by tether's e2e harness: a single-node test cluster, reached on 127.0.0.1.",
		"ClusterName=tether-e2e",
		fmt.Sprintf("SlurmctldHost=%s(%s)", s.Node, s.NodeAddr),
		fmt.Sprintf("SlurmctldPort=%d", s.CtldPort),
		fmt.Sprintf("SlurmdPort=%d", s.SlurmdPort),
		"SlurmUser=" + s.User,
		"SlurmdUser=" + s.User,
		"AuthType=auth/munge",
		"CredType=cred/munge",
		"AuthInfo=socket=" + s.MungeSocket,
		"StateSaveLocation=" + filepath.Join(d, "state"),
		"SlurmdSpoolDir=" + filepath.Join(d, "spool"),
		"SlurmctldPidFile=" + filepath.Join(d, "slurmctld.pid"),
		"SlurmdPidFile=" + filepath.Join(d, "slurmd.pid"),
		"SlurmctldLogFile=" + filepath.Join(s.logDir, "slurmctld.log"),
		"SlurmdLogFile=" + filepath.Join(s.logDir, "slurmd.log"),
		"SlurmctldDebug=info",
		"SlurmdDebug=info",
		"PlugStackConfig=" + filepath.Join(d, "plugstack.conf"),
		"MailProg=/bin/true",
		"ProctrackType=" + s.Proctrack,
		"TaskPlugin=task/none",
		"JobAcctGatherType=jobacct_gather/none",
		"AccountingStorageType=accounting_storage/none",
		"JobCompType=jobcomp/none",
		"MpiDefault=none",
		"SwitchType=switch/none",
		"SchedulerType=sched/backfill",
		"SchedulerParameters=batch_sched_delay=0,sched_min_interval=0",
		"SelectType=select/cons_tres",
		"SelectTypeParameters=CR_Core",
		"ReturnToService=2",
		"KillWait=5",
		"EnforcePartLimits=" + opts.EnforcePartLimits,
		"GresTypes=gpu",
		fmt.Sprintf("NodeName=%s NodeAddr=%s %s Gres=gpu:1 State=UNKNOWN",
			s.Node, s.NodeAddr, strings.Join(s.hardware, " ")),
		fmt.Sprintf("PartitionName=%s Nodes=%s Default=YES DefaultTime=1:00:00 MaxTime=4:00:00 State=UP",
			SlurmDefaultPartition, s.Node),
		fmt.Sprintf("PartitionName=%s Nodes=%s DefaultTime=1:00:00 MaxTime=1-00:00:00 State=UP",
			SlurmGPUPartition, s.Node),
	}
	if s.Loopback {
		// slurmctld and slurmd bind the address this host's name resolves to instead of
		// 0.0.0.0 (Slurm uses gethostname(), not SlurmctldHost's or NodeAddr's address).
		lines = append(lines, "CommunicationParameters=NoCtldInAddrAny,NoInAddrAny")
	}
	lines = append(lines, opts.ExtraConfig...)
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	WriteFile(tb, s.Conf, b.String(), 0o644)
	cgroupPlugin := "cgroup/v1"
	if s.Proctrack != "proctrack/cgroup" {
		cgroupPlugin = "autodetect"
	}
	WriteFile(tb, filepath.Join(d, "cgroup.conf"),
		"CgroupPlugin="+cgroupPlugin+"\nCgroupAutomount=no\nIgnoreSystemd=yes\n", 0o644)
	WriteFile(tb, filepath.Join(d, "gres.conf"), fmt.Sprintf("AutoDetect=off\nNodeName=%s Name=gpu File=/dev/null\n", s.Node), 0o644)
	WriteFile(tb, filepath.Join(d, "plugstack.conf"), "", 0o644)
}

// startDaemon starts a daemon in the foreground with its output in logDir/logName and
// registers its stop by PID.
func (s *Slurm) startDaemon(tb testing.TB, cmd *exec.Cmd, logName string) *Proc {
	tb.Helper()
	f, err := os.Create(filepath.Join(s.logDir, logName))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = s.Environ()
	return Start(tb, cmd)
}

func (s *Slurm) mungeWorks(mungeBin string, munged *Proc) bool {
	select {
	case <-munged.Done():
		s.tb.Fatalf("munged exited:\n%s", s.Logs())
	default:
	}
	if _, err := os.Stat(s.MungeSocket); err != nil {
		return false
	}
	cmd := exec.Command(mungeBin, "-n", "-S", s.MungeSocket)
	cmd.Stdout = nil
	return cmd.Run() == nil
}

// Environ is this process's environment without any SLURM_*, SBATCH_*, SQUEUE_*,
// SALLOC_*, SRUN_* or SINFO_* variables (they would steer the clients), plus Env.
func (s *Slurm) Environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		skip := false
		for _, p := range []string{"SLURM_", "SBATCH_", "SQUEUE_", "SALLOC_", "SRUN_", "SINFO_", "SCANCEL_"} {
			if strings.HasPrefix(kv, p) {
				skip = true
			}
		}
		if !skip {
			env = append(env, kv)
		}
	}
	return append(env, s.Env...)
}

// Command is a Slurm client command (sbatch, squeue, scancel, sinfo, scontrol…) aimed at
// this cluster.
func (s *Slurm) Command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = s.Environ()
	return cmd
}

// CommandError is a Slurm client command that failed; Stderr is its error output
// verbatim (Slurm's words).
type CommandError struct {
	Args   []string
	Stdout string
	Stderr string
	Err    error
}

func (e *CommandError) Error() string {
	return fmt.Sprintf("%s: %v: %s", strings.Join(e.Args, " "), e.Err, strings.TrimSpace(e.Stderr))
}

// Run runs a Slurm client command against this cluster (30 s at most) and returns its
// stdout and stderr; err is a *CommandError when it fails.
func (s *Slurm) Run(name string, args ...string) (stdout, stderr string, err error) {
	return s.run(30*time.Second, name, args...)
}

func (s *Slurm) run(timeout time.Duration, name string, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = s.Environ()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), errb.String(), &CommandError{Args: append([]string{name}, args...),
			Stdout: out.String(), Stderr: errb.String(), Err: err}
	}
	return out.String(), errb.String(), nil
}

// Sbatch submits a batch job (sbatch --parsable ARGS) and returns its id.
func (s *Slurm) Sbatch(args ...string) (string, error) {
	out, _, err := s.Run("sbatch", append([]string{"--parsable"}, args...)...)
	if err != nil {
		return "", err
	}
	id, _, _ := strings.Cut(strings.TrimSpace(out), ";") // "ID;cluster" on multi-cluster setups
	return id, nil
}

// MustSbatch is Sbatch that fails tb on error.
func (s *Slurm) MustSbatch(tb testing.TB, args ...string) string {
	tb.Helper()
	id, err := s.Sbatch(args...)
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

// Scancel runs scancel ARGS (e.g. a job id).
func (s *Slurm) Scancel(args ...string) error {
	_, _, err := s.Run("scancel", args...)
	return err
}

// Job is one line of squeue.
type Job struct {
	ID, State, Reason, Node, TimeLeft, TimeLimit, Partition, Name string
}

// SqueueFormat is the squeue -o format Squeue parses, in Job's field order.
const SqueueFormat = "%i|%T|%r|%N|%L|%l|%P|%j"

// Squeue returns the job as squeue shows it (-t all: finished jobs stay listed for
// MinJobAge, 300 s); ok is false if squeue does not list it.
func (s *Slurm) Squeue(id string) (job Job, ok bool, err error) {
	out, _, err := s.Run("squeue", "-h", "-t", "all", "-j", id, "-o", SqueueFormat)
	if err != nil {
		return Job{}, false, err
	}
	line := strings.TrimSpace(out)
	if line == "" {
		return Job{}, false, nil
	}
	f := strings.SplitN(line, "|", 8)
	if len(f) != 8 {
		return Job{}, false, fmt.Errorf("squeue: unexpected line %q", line)
	}
	return Job{f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7]}, true, nil
}

// WaitState waits until squeue shows the job in one of states and returns it; it fails
// tb, showing the queue, if that does not happen within timeout.
func (s *Slurm) WaitState(tb testing.TB, id string, timeout time.Duration, states ...string) Job {
	tb.Helper()
	var last Job
	var lastErr error
	if WaitFor(timeout, func() bool {
		j, ok, err := s.Squeue(id)
		last, lastErr = j, err
		if !ok {
			return false
		}
		for _, st := range states {
			if j.State == st {
				return true
			}
		}
		return false
	}) {
		return last
	}
	q, _, _ := s.Run("squeue", "-t", "all", "-o", SqueueFormat)
	tb.Fatalf("job %s not %v after %v: last %+v (err %v); queue:\n%s", id, states, timeout, last, lastErr, q)
	return last
}

// ShowJob returns `scontrol -o show job ID` as key=value pairs (ExitCode, JobState,
// StdOut, RunTime, TimeLimit, EndTime…).
func (s *Slurm) ShowJob(id string) (map[string]string, error) {
	out, _, err := s.Run("scontrol", "-o", "show", "job", id)
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, f := range strings.Fields(out) {
		if k, v, ok := strings.Cut(f, "="); ok {
			m[k] = v
		}
	}
	return m, nil
}

// JobPIDs returns the PIDs proctrack holds for the job on the node (scontrol listpids).
func (s *Slurm) JobPIDs(id string) []int {
	out, _, err := s.Run("scontrol", "listpids", id)
	if err != nil {
		return nil
	}
	var pids []int
	for _, l := range strings.Split(out, "\n")[1:] {
		f := strings.Fields(l)
		if len(f) > 0 {
			if pid, err := strconv.Atoi(f[0]); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// FillNode submits a blocker job asking for every CPU of the node (in the default
// partition, so it also blocks the other one), waits until it runs and returns its id:
// jobs submitted after it stay PENDING (Resources) until it is cancelled.
func (s *Slurm) FillNode(tb testing.TB) string {
	tb.Helper()
	id := s.MustSbatch(tb, "-J", "blocker", "-c", strconv.Itoa(s.CPUs), "-o", "/dev/null", "--wrap", "exec sleep 600")
	s.WaitState(tb, id, 30*time.Second, "RUNNING")
	return id
}

// Logs returns the daemons' logs. slurmctld.log and slurmd.log have timestamps; the
// .out files (stderr) have the same lines without, plus what came before the log file
// was opened (fatal config errors).
func (s *Slurm) Logs() string {
	return logTails(s.logDir, 80, "munged.log", "slurmctld.log|slurmctld.out", "slurmd.log|slurmd.out")
}

// drain cancels every job and waits (10 s at most) until none is left, so that slurmd can
// stop at once and no job process outlives the cluster.
func (s *Slurm) drain() {
	out, _, err := s.run(10*time.Second, "squeue", "-h", "-o", "%i")
	if err != nil {
		return
	}
	ids := strings.Fields(out)
	if len(ids) == 0 {
		return
	}
	s.run(10*time.Second, "scancel", ids...)
	WaitFor(10*time.Second, func() bool {
		out, _, err := s.run(5*time.Second, "squeue", "-h", "-o", "%i")
		return err == nil && strings.TrimSpace(out) == ""
	})
}

// killLeftovers kills, by PID, any process still in this cluster's cgroups and any
// slurmstepd started by this cluster's slurmd (found by SLURM_CONF in its environment).
func (s *Slurm) killLeftovers() {
	var pids []int
	for _, d := range s.cgroupDirs {
		filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
			if err == nil && e.Name() == "cgroup.procs" {
				data, _ := os.ReadFile(p)
				for _, f := range strings.Fields(string(data)) {
					if pid, err := strconv.Atoi(f); err == nil {
						pids = append(pids, pid)
					}
				}
			}
			return nil
		})
	}
	want := []byte("SLURM_CONF=" + s.Conf + "\x00")
	for _, p := range Processes() {
		if p.Comm != "slurmstepd" {
			continue
		}
		env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p.PID))
		if bytes.Contains(env, want) {
			pids = append(pids, p.PID)
		}
	}
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// removeCgroup removes a cgroup directory tree left by slurmd (cgroups are removed
// leaves first with rmdir; their control files go with them).
func removeCgroup(dir string) {
	var dirs []string
	filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err == nil && e.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		for try := 0; try < 50; try++ {
			if err := syscall.Rmdir(dirs[i]); err == nil || errors.Is(err, syscall.ENOENT) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
