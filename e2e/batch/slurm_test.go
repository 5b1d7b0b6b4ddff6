//go:build unix

package batch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tether-dev/tether/e2e"
)

// startedAt reads the Unix time a job printed with `date +%s.%N` as its first line.
func startedAt(t *testing.T, path string) time.Time {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f, err := strconv.ParseFloat(strings.TrimSpace(line), 64)
	if err != nil {
		t.Fatalf("%s: no start time in %q", path, b)
	}
	return time.Unix(0, int64(f*1e9))
}

// listenAddrs returns the IPv4 addresses listening on a TCP port (from /proc/net/tcp).
func listenAddrs(port int) []string {
	var addrs []string
	data, _ := os.ReadFile("/proc/net/tcp")
	for _, l := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) < 4 || f[3] != "0A" || !strings.HasSuffix(f[1], fmt.Sprintf(":%04X", port)) {
			continue
		}
		ip, err := strconv.ParseUint(strings.Split(f[1], ":")[0], 16, 32)
		if err == nil { // little-endian
			addrs = append(addrs, fmt.Sprintf("%d.%d.%d.%d", ip&0xff, ip>>8&0xff, ip>>16&0xff, ip>>24))
		}
	}
	return addrs
}

// TestSlurmBatchJob proves a batch job runs on the node and writes its output file, that
// job ids start at 1 and the daemons listen on loopback, and measures how long jobs take
// to start.
func TestSlurmBatchJob(t *testing.T) {
	s := e2e.StartSlurm(t, e2e.SlurmOptions{})
	t.Logf("cold start (StartSlurm, lock taken → node idle): %v; %s; node %s, %d CPUs, %d MB",
		s.ColdStart.Round(time.Millisecond), s.Proctrack, s.Node, s.CPUs, s.MemoryMB)
	for _, port := range []int{s.CtldPort, s.SlurmdPort} {
		addrs := listenAddrs(port)
		t.Logf("port %d: listening on %v", port, addrs)
		if s.Loopback && (len(addrs) == 0 || strings.Join(addrs, "") != strings.Repeat("127.0.0.1", len(addrs))) {
			t.Errorf("port %d listens on %v; want 127.0.0.1 only", port, addrs)
		}
	}
	dir := t.TempDir()

	out := filepath.Join(dir, "hello-%j.out")
	submitted := time.Now()
	id := s.MustSbatch(t, "-J", "hello", "-o", out,
		"--wrap", `date +%s.%N; echo "hello from job $SLURM_JOB_ID on $SLURMD_NODENAME in $SLURM_JOB_PARTITION"`)
	if id != "1" {
		t.Errorf("first job id %s; want 1 (a fresh cluster)", id)
	}
	s.WaitState(t, id, 30*time.Second, "COMPLETED")
	path := strings.ReplaceAll(out, "%j", id)
	t.Logf("first job started %v after submit (the first scheduling pass comes ~3 s after slurmctld starts)",
		startedAt(t, path).Sub(submitted).Round(time.Millisecond))
	b, _ := os.ReadFile(path)
	want := fmt.Sprintf("hello from job %s on %s in %s", id, s.Node, e2e.SlurmDefaultPartition)
	if !strings.Contains(string(b), want) {
		t.Fatalf("output %q; want %q", b, want)
	}

	// Once the scheduler runs, jobs start within its one-second tick.
	var worst time.Duration
	for i := 0; i < 3; i++ {
		out := filepath.Join(dir, fmt.Sprintf("latency-%d.out", i))
		submitted := time.Now()
		id := s.MustSbatch(t, "-o", out, "--wrap", "date +%s.%N")
		s.WaitState(t, id, 30*time.Second, "COMPLETED")
		d := startedAt(t, out).Sub(submitted)
		t.Logf("job %s started %v after submit", id, d.Round(time.Millisecond))
		worst = max(worst, d)
	}
	// Measured, not asserted tightly: on a loaded machine starts are slower.
	if worst > 10*time.Second {
		t.Errorf("a job took %v to start; want about 1 s", worst)
	}
}

// squeueLine is squeue's line for the job in the format the launcher reads.
func squeueLine(t *testing.T, s *e2e.Slurm, id string) string {
	t.Helper()
	out, _, err := s.Run("squeue", "-h", "-j", id, "-o", "%T|%r|%N|%L")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// TestSlurmPendingThenRunning proves a job waits PENDING (Resources) while a blocker fills
// the node, and runs on the node once the blocker is cancelled.
func TestSlurmPendingThenRunning(t *testing.T) {
	s := e2e.StartSlurm(t, e2e.SlurmOptions{})
	blocker := s.FillNode(t)
	id := s.MustSbatch(t, "-J", "waiter", "-t", "10", "-o", "/dev/null", "--wrap", "exec sleep 300")
	// The same wait in the other partition, on the same node, with a (fake) GPU.
	gpu := s.MustSbatch(t, "-J", "gpu-waiter", "-p", e2e.SlurmGPUPartition, "--gres=gpu:1", "-t", "1-0",
		"-o", "/dev/null", "--wrap", "exec sleep 300")

	// Reason is None until a scheduling pass has looked at the job.
	var line string
	if !e2e.WaitFor(20*time.Second, func() bool { line = squeueLine(t, s, id); return line != "PENDING|None||10:00" }) {
		t.Fatalf("job %s still %q", id, line)
	}
	if line != "PENDING|Resources||10:00" {
		t.Fatalf("pending job: squeue shows %q; want %q", line, "PENDING|Resources||10:00")
	}
	gpuLine := squeueLine(t, s, gpu)
	t.Logf("while the node is full: same partition %q; other partition %q", line, gpuLine)
	if !strings.HasPrefix(gpuLine, "PENDING|") || strings.HasPrefix(gpuLine, "PENDING|None|") {
		t.Errorf("job in the other partition: %q; want PENDING with a reason", gpuLine)
	}
	if j, _, _ := s.Squeue(blocker); j.State != "RUNNING" || j.Node != s.Node {
		t.Fatalf("blocker %+v", j)
	}

	if err := s.Scancel(blocker); err != nil {
		t.Fatal(err)
	}
	j := s.WaitState(t, id, 30*time.Second, "RUNNING")
	line = squeueLine(t, s, id)
	t.Logf("after the blocker is cancelled: %q", line)
	if !regexp.MustCompile(`^RUNNING\|None\|` + regexp.QuoteMeta(s.Node) + `\|(10:00|9:[0-5][0-9])$`).MatchString(line) {
		t.Errorf("running job: squeue shows %q; want RUNNING|None|%s|<time left>", line, s.Node)
	}
	if j.Node != s.Node || j.Partition != e2e.SlurmDefaultPartition || j.TimeLimit != "10:00" {
		t.Errorf("running job %+v", j)
	}
	if s.CPUs >= 2 {
		g := s.WaitState(t, gpu, 30*time.Second, "RUNNING")
		t.Logf("gpu job: %q", squeueLine(t, s, gpu))
		if g.Partition != e2e.SlurmGPUPartition || g.TimeLimit != "1-00:00:00" {
			t.Errorf("gpu job %+v", g)
		}
	}
}

// doubleForkJob runs a job whose script double-forks a process out of the job's process
// tree and session, then execs a foreground process; it cancels the job and reports
// whether each process was killed.
func doubleForkJob(t *testing.T, s *e2e.Slurm) (foregroundKilled, escapedKilled bool) {
	t.Helper()
	marker := fmt.Sprintf("tether-e2e-%d", time.Now().UnixNano())
	t.Cleanup(func() { // whatever scancel missed
		for _, p := range e2e.ProcessesWith(marker) {
			if pid, err := strconv.Atoi(strings.SplitN(p, ":", 2)[0]); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	dir := t.TempDir()
	script := filepath.Join(dir, "job.sh")
	e2e.WriteFile(t, script, "#!/bin/bash\n"+
		"( setsid bash -c 'exec -a "+marker+"-escaped sleep 300' & )\n"+
		"exec -a "+marker+"-foreground sleep 300\n", 0o755)
	id := s.MustSbatch(t, "-o", filepath.Join(dir, "job.out"), script)
	s.WaitState(t, id, 30*time.Second, "RUNNING")
	pidOf := func(name string) int {
		for _, p := range e2e.ProcessesWith(marker + "-" + name) {
			if f := strings.Fields(p); len(f) > 1 && f[1] == marker+"-"+name {
				pid, _ := strconv.Atoi(strings.TrimSuffix(f[0], ":"))
				return pid
			}
		}
		return 0
	}
	var fg, esc int
	if !e2e.WaitFor(20*time.Second, func() bool { fg, esc = pidOf("foreground"), pidOf("escaped"); return fg > 0 && esc > 0 }) {
		t.Fatalf("job processes not found: %q", e2e.ProcessesWith(marker))
	}
	tracked := s.JobPIDs(id)
	t.Logf("%s: foreground pid %d, double-forked pid %d (parent %d); scontrol listpids %v",
		s.Proctrack, fg, esc, ppid(esc), tracked)

	if err := s.Scancel(id); err != nil {
		t.Fatal(err)
	}
	s.WaitState(t, id, 30*time.Second, "CANCELLED")
	foregroundKilled = e2e.WaitFor(10*time.Second, func() bool { return !e2e.Alive(fg) })
	grace := 5 * time.Second // returns as soon as it is gone
	if s.Proctrack != "proctrack/cgroup" {
		grace = 2 * time.Second // expected to survive: do not wait long
	}
	escapedKilled = e2e.WaitFor(grace, func() bool { return !e2e.Alive(esc) })
	return
}

func ppid(pid int) int {
	for _, p := range e2e.Processes() {
		if p.PID == pid {
			return p.PPID
		}
	}
	return 0
}

// TestSlurmScancelKillsEveryProcess proves scancel kills every process of a job,
// including one that double-forked out of it, with the proctrack plugin the harness
// picks here (proctrack/cgroup where cgroup v1 is usable).
func TestSlurmScancelKillsEveryProcess(t *testing.T) {
	s := e2e.StartSlurm(t, e2e.SlurmOptions{})
	fg, escaped := doubleForkJob(t, s)
	if !fg {
		t.Fatal("scancel left the job's foreground process running")
	}
	if !escaped {
		if s.Proctrack == "proctrack/cgroup" {
			t.Fatal("scancel left the double-forked process running under proctrack/cgroup")
		}
		t.Logf("%s: scancel left the double-forked process running (a limit of this proctrack; killed by the test)", s.Proctrack)
	}
}

// TestSlurmLinuxprocMissesDoubleFork records what proctrack/linuxproc does with a process
// that double-forks out of a job: it is not killed by scancel (why the job's step must
// run in the foreground).
func TestSlurmLinuxprocMissesDoubleFork(t *testing.T) {
	s := e2e.StartSlurm(t, e2e.SlurmOptions{Proctrack: "proctrack/linuxproc"})
	fg, escaped := doubleForkJob(t, s)
	if !fg {
		t.Fatal("scancel left the job's foreground process running")
	}
	if escaped {
		t.Logf("proctrack/linuxproc killed the double-forked process too: the known limit no longer holds")
	} else {
		t.Logf("proctrack/linuxproc: scancel left the double-forked process running, as expected")
	}
}

// TestSlurmSbatchErrors captures Slurm's words when sbatch refuses a job, and proves
// nothing is left queued.
func TestSlurmSbatchErrors(t *testing.T) {
	s := e2e.StartSlurm(t, e2e.SlurmOptions{})
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"invalid partition", []string{"-p", "nosuch"},
			"sbatch: error: invalid partition specified: nosuch\n" +
				"sbatch: error: Batch job submission failed: Invalid partition name specified"},
		{"time limit over the partition maximum", []string{"-p", e2e.SlurmDefaultPartition, "-t", "5:00:00"},
			"sbatch: error: Batch job submission failed: Requested time limit is invalid (missing or exceeds some limit)"},
		{"malformed time limit", []string{"-t", "soon"},
			"sbatch: error: Invalid --time specification"},
		{"more GPUs than the node has", []string{"-p", e2e.SlurmGPUPartition, "--gres=gpu:2"},
			"sbatch: error: Batch job submission failed: Requested node configuration is not available"},
		{"more CPUs than the node has", []string{"-c", strconv.Itoa(s.CPUs + 1)},
			"sbatch: error: Batch job submission failed: More processors requested than permitted"},
		{"unknown gres", []string{"--gres=tpu:1"},
			"sbatch: error: Invalid generic resource (gres) specification"},
	} {
		t.Run(c.name, func(t *testing.T) {
			id, err := s.Sbatch(append(c.args, "-o", "/dev/null", "--wrap", "true")...)
			var ce *e2e.CommandError
			if !errors.As(err, &ce) {
				t.Fatalf("sbatch %v: job %s, err %v; want it refused", c.args, id, err)
			}
			got := strings.TrimSpace(ce.Stderr)
			t.Logf("sbatch %s: %v\n%s", strings.Join(c.args, " "), ce.Err, got)
			if got != c.want {
				t.Errorf("stderr:\n%s\nwant:\n%s", got, c.want)
			}
			if ce.Stdout != "" {
				t.Errorf("stdout %q", ce.Stdout)
			}
			if out, _, _ := s.Run("squeue", "-h", "-o", "%i %T %r"); strings.TrimSpace(out) != "" {
				t.Errorf("refused job left in the queue:\n%s", out)
			}
			if out, _, _ := s.Run("squeue", "-h", "-t", "all", "-o", "%i %T %r"); strings.TrimSpace(out) != "" {
				t.Logf("squeue -t all: %s", strings.TrimSpace(out))
			}
		})
	}
}

// TestSlurmTimeOverLimitQueuedWithoutEnforcement records Slurm's own default,
// EnforcePartLimits=NO: a job over the partition's time limit is accepted and stays
// PENDING with reason PartitionTimeLimit (it would never start).
func TestSlurmTimeOverLimitQueuedWithoutEnforcement(t *testing.T) {
	s := e2e.StartSlurm(t, e2e.SlurmOptions{EnforcePartLimits: "NO"})
	id := s.MustSbatch(t, "-p", e2e.SlurmDefaultPartition, "-t", "5:00:00", "-o", "/dev/null", "--wrap", "true")
	// The reason is PartitionConfig at first and PartitionTimeLimit once the scheduler has
	// looked at the job.
	seen := []string{}
	e2e.WaitFor(20*time.Second, func() bool {
		line := squeueLine(t, s, id)
		if len(seen) == 0 || seen[len(seen)-1] != line {
			seen = append(seen, line)
		}
		return line == "PENDING|PartitionTimeLimit||5:00:00"
	})
	t.Logf("squeue -o '%%T|%%r|%%N|%%L' showed, in order: %q", seen)
	if seen[len(seen)-1] != "PENDING|PartitionTimeLimit||5:00:00" {
		t.Fatalf("squeue shows %q; want PENDING|PartitionTimeLimit||5:00:00", seen[len(seen)-1])
	}
}

// TestSlurmThroughSSHD proves sbatch and squeue run over a real sshd see the test cluster
// when the session gets SLURM_CONF from sshd's SetEnv, and that without it they do not.
func TestSlurmThroughSSHD(t *testing.T) {
	e2e.Need(t, "ssh", "openssh-client")
	s := e2e.StartSlurm(t, e2e.SlurmOptions{})
	d := e2e.StartSSHD(t, e2e.SSHDOptions{Env: map[string]string{"SLURM_CONF": s.Conf}})

	// sshd starts sessions in the passwd home directory, not the SetEnv HOME.
	out, err := d.SSH(`cd "$HOME" && sbatch --parsable -J via-ssh --wrap 'echo "job $SLURM_JOB_ID conf=$SLURM_CONF"; exec sleep 2'`)
	if err != nil {
		t.Fatalf("sbatch over ssh: %v\n%s", err, out)
	}
	id := strings.TrimSpace(out)
	j := s.WaitState(t, id, 30*time.Second, "RUNNING")
	if j.Name != "via-ssh" {
		t.Fatalf("squeue here shows %+v", j)
	}
	out, err = d.SSH("squeue", "-h", "-j", id, "-o", "'%i|%j|%T|%N'")
	if err != nil || strings.TrimSpace(out) != id+"|via-ssh|RUNNING|"+s.Node {
		t.Fatalf("squeue over ssh: %v %q", err, out)
	}
	s.WaitState(t, id, 30*time.Second, "COMPLETED")
	b, err := os.ReadFile(filepath.Join(d.Home, "slurm-"+id+".out"))
	if want := fmt.Sprintf("job %s conf=%s\n", id, s.Conf); err != nil || string(b) != want {
		t.Fatalf("output file in the session's HOME: %q, %v; want %q", b, err, want)
	}

	// Without SetEnv the session has no SLURM_CONF: clients read /etc/slurm/slurm.conf.
	bare := e2e.StartSSHD(t, e2e.SSHDOptions{Alias: "no-slurm-conf"})
	if _, err := os.Stat("/etc/slurm/slurm.conf"); err == nil {
		t.Logf("/etc/slurm/slurm.conf exists: not checking a session without SLURM_CONF")
	} else {
		out, err := bare.SSH("squeue", "-h", "-j", id)
		t.Logf("squeue over ssh without SLURM_CONF: %v\n%s", err, strings.TrimSpace(out))
		if err == nil {
			t.Fatalf("squeue without SLURM_CONF succeeded: %q", out)
		}
	}
	// Setting it on the command line works as well.
	out, err = bare.SSH("SLURM_CONF="+s.Conf, "squeue", "-h", "-t", "all", "-j", id, "-o", "%T")
	if err != nil || strings.TrimSpace(out) != "COMPLETED" {
		t.Fatalf("squeue with SLURM_CONF on the command line: %v %q", err, out)
	}
}

// TestSlurmForegroundProgram proves a job's foreground program is observed: its output
// file, its exit code, and its SIGTERM handling when the job is cancelled.
func TestSlurmForegroundProgram(t *testing.T) {
	bin := e2e.Binary(t)
	s := e2e.StartSlurm(t, e2e.SlurmOptions{})
	dir := t.TempDir()
	file := func(name string) string { return filepath.Join(dir, name) }

	ok := s.MustSbatch(t, "-o", file("ok.out"), "--wrap", "exec "+bin+" version")
	failing := s.MustSbatch(t, "-o", file("fail.out"), "--wrap", "echo about to fail; exit 3")
	e2e.WriteFile(t, file("serve.sh"), `#!/bin/bash
trap 'echo "got SIGTERM"; exit 143' TERM
echo serving
while :; do sleep 0.1; done
`, 0o755)
	serve := s.MustSbatch(t, "-o", file("serve.out"), file("serve.sh"))

	check := func(id, state, wantExit, output string) {
		t.Helper()
		j := s.WaitState(t, id, 30*time.Second, state)
		info, err := s.ShowJob(id)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("job %s: squeue %+v; scontrol JobState=%s Reason=%s ExitCode=%s", id, j, info["JobState"], info["Reason"], info["ExitCode"])
		if info["ExitCode"] != wantExit {
			t.Errorf("job %s: ExitCode=%s; want %s", id, info["ExitCode"], wantExit)
		}
		b, _ := os.ReadFile(info["StdOut"])
		if !strings.Contains(string(b), output) {
			t.Errorf("job %s output %q; want it to hold %q", id, b, output)
		}
	}
	check(ok, "COMPLETED", "0:0", "tether "+e2e.Version+"\n")
	check(failing, "FAILED", "3:0", "about to fail\n")

	s.WaitState(t, serve, 30*time.Second, "RUNNING")
	if !e2e.WaitFor(20*time.Second, func() bool { b, _ := os.ReadFile(file("serve.out")); return strings.Contains(string(b), "serving") }) {
		t.Fatal("the foreground program did not start")
	}
	cancelled := time.Now()
	if err := s.Scancel(serve); err != nil {
		t.Fatal(err)
	}
	check(serve, "CANCELLED", "143:0", "got SIGTERM\n") // the program's own exit, after its handler
	t.Logf("cancelled in %v", time.Since(cancelled).Round(time.Millisecond))
	b, _ := os.ReadFile(file("serve.out"))
	t.Logf("output of the cancelled job:\n%s", b)
	if !regexp.MustCompile(`slurmstepd-` + regexp.QuoteMeta(s.Node) + `: error: \*\*\* JOB ` + serve + ` ON ` + regexp.QuoteMeta(s.Node) + ` CANCELLED AT \S+ \*\*\*`).Match(b) {
		t.Errorf("no slurmstepd cancel line in the output")
	}
}

// TestSlurmClustersAreSerialised proves two tests asking for a cluster at once get one
// after the other, never two at a time.
func TestSlurmClustersAreSerialised(t *testing.T) {
	for i := range 2 {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			t.Parallel()
			s := e2e.StartSlurm(t, e2e.SlurmOptions{})
			time.Sleep(300 * time.Millisecond)
			var ctlds []int
			for _, p := range e2e.Processes() {
				env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p.PID))
				if p.Comm == "slurmctld" && e2e.Alive(p.PID) && strings.Contains(string(env), "SLURM_CONF="+os.TempDir()+"/tether-slurm-") {
					ctlds = append(ctlds, p.PID)
				}
			}
			if len(ctlds) != 1 {
				t.Fatalf("%d harness slurmctlds running (%v); want only this test's", len(ctlds), ctlds)
			}
			t.Logf("cluster %s alone", s.Dir)
		})
	}
}
