//go:build unix

package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/batch"
	"github.com/tether-dev/tether/internal/shquote"
	"github.com/tether-dev/tether/wire"
)

// The job script passes every argument of serve through sh unchanged (single quotes),
// execs tether (no fork), and says when the binary is not on the node (exit 97).
func TestSlurmScript(t *testing.T) {
	dir := t.TempDir()
	got := filepath.Join(dir, "args")
	bin := filepath.Join(dir, "it's a tether")
	os.WriteFile(bin, []byte("#!/bin/sh\necho $$ > "+shquote.Quote(got+".pid")+"\nprintf '%s\\0' \"$@\" > "+shquote.Quote(got)+"\n"), 0o700)
	command := []string{"sh", "-c", "echo \"$HOME\" `id` $(id); exit 3", "it's", "a\nb", `back\slash`, "", "*", "--x=~"}
	serve := wire.Serve{Name: "it's lab", BatchSession: "/sessions/abcd2345", Command: command}
	script := filepath.Join(dir, "job.sh")
	os.WriteFile(script, slurmScript(bin, "/sessions/abcd2345", serve), 0o600)
	cmd := exec.Command("/bin/sh", script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sh job.sh: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(got)
	args := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
	want := append([]string{"serve", "--batch-session=/sessions/abcd2345", "--name=it's lab", "--"}, command...)
	if !reflect.DeepEqual(args, want) {
		t.Errorf("tether got %q; want %q", args, want)
	}
	// exec: tether runs as the script's own process, so scancel's signal reaches it.
	if pid, _ := os.ReadFile(got + ".pid"); strings.TrimSpace(string(pid)) != strconv.Itoa(cmd.Process.Pid) {
		t.Errorf("tether ran as pid %s, not as the script's process %d (no exec?)", pid, cmd.Process.Pid)
	}

	os.Remove(bin)
	cmd = exec.Command("/bin/sh", script)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitNotVisible || !strings.Contains(string(out), "is not on node") {
		t.Errorf("missing binary: %v %q; want exit %d and a message", err, out, exitNotVisible)
	}
}

// fakeSlurm puts sbatch, squeue and scancel scripts first on PATH: each logs its
// arguments to dir/NAME.log and runs the body given.
func fakeSlurm(t *testing.T, bodies map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range bodies {
		script := "#!/bin/sh\nprintf '%s\\n' \"$@\" >> " + shquote.Quote(filepath.Join(dir, name+".log")) + "\n" + body + "\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	return dir
}

func TestBatchSubmit(t *testing.T) {
	root := tempRoot(t)
	// SBATCH_* variables in the login environment that would change what tether owns.
	t.Setenv("SBATCH_OUTPUT", "/tmp/elsewhere")
	t.Setenv("SBATCH_ARRAY_INX", "0-3")
	t.Setenv("SBATCH_WAIT", "1")
	t.Setenv("SBATCH_PARTITION", "debug")
	fake := fakeSlurm(t, map[string]string{"sbatch": "env | grep '^SBATCH_' > \"$(dirname \"$0\")/sbatch.env\"; echo '123;cluster'", "scancel": "exit 0"})
	var out bytes.Buffer
	held, release := io.Pipe()
	defer release.Close()
	err := BatchSubmit(context.Background(), BatchSubmitOptions{Name: "lab", Options: []string{"-p", "gpu", "--comment", "a b"},
		Serve: []string{"--name", "lab", "--", "app", "{port}"}, Version: "v9", Stdin: held, Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	var sub wire.Submitted
	if err := json.Unmarshal(out.Bytes(), &sub); err != nil || sub.JobID != "123" || !wire.ValidID(sub.ID) {
		t.Fatalf("submit printed %q (%v)", out.String(), err)
	}
	dir := filepath.Join(root, sub.ID)
	if sub.Output != filepath.Join(dir, "job.out") {
		t.Errorf("output %q", sub.Output)
	}
	log, _ := os.ReadFile(filepath.Join(fake, "sbatch.log"))
	// The user's options first, tether's after them (later wins), then the script.
	wantArgs := []string{"-p", "gpu", "--comment", "a b", "--parsable", "--job-name=tether-" + sub.ID, "--output=" + sub.Output,
		"--error=" + sub.Output, "--input=/dev/null", filepath.Join(dir, "job.sh")}
	if got := strings.Split(strings.TrimSuffix(string(log), "\n"), "\n"); !reflect.DeepEqual(got, wantArgs) {
		t.Errorf("sbatch got %q; want %q", got, wantArgs)
	}
	if env, _ := os.ReadFile(filepath.Join(fake, "sbatch.env")); string(env) != "SBATCH_PARTITION=debug\n" {
		t.Errorf("sbatch's SBATCH_* environment: %q; want SBATCH_PARTITION alone", env)
	}
	sf, err := readRecord(filepath.Join(dir, "session.json"))
	if err != nil || sf.JobID != "123" || sf.Phase != phaseQueued || !sf.Slurm || sf.Name != "lab" || !reflect.DeepEqual(sf.Command, []string{"app", "{port}"}) {
		t.Errorf("queued record %+v, %v", sf, err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("session dir: %v %v", fi, err)
	}

	// sbatch refuses: Slurm's words, nothing left.
	fakeSlurm(t, map[string]string{"sbatch": "echo 'sbatch: error: invalid partition specified: nosuch' >&2; echo 'sbatch: error: Batch job submission failed: Invalid partition name specified' >&2; exit 1"})
	before, _ := os.ReadDir(root)
	err = BatchSubmit(context.Background(), BatchSubmitOptions{Options: []string{"-p", "nosuch"}, Stdin: strings.NewReader(""), Stdout: io.Discard})
	if err == nil || err.Error() != "sbatch refused the job: invalid partition specified: nosuch; Batch job submission failed: Invalid partition name specified" {
		t.Errorf("refusal: %v", err)
	}
	if after, _ := os.ReadDir(root); len(after) != len(before) {
		t.Errorf("a refused submit left %d entries (before: %d)", len(after), len(before))
	}

	// The launcher went away while sbatch ran: the job is cancelled, nothing is left.
	fake = fakeSlurm(t, map[string]string{"sbatch": "sleep 0.3; echo 124", "scancel": "exit 0"})
	err = BatchSubmit(context.Background(), BatchSubmitOptions{Stdin: strings.NewReader(""), Stdout: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "the job was cancelled") {
		t.Errorf("caller gone: %v", err)
	}
	if log, _ := os.ReadFile(filepath.Join(fake, "scancel.log")); !strings.Contains(string(log), "124") || !strings.Contains(string(log), "--name=tether-") {
		t.Errorf("scancel got %q", log)
	}
	if after, _ := os.ReadDir(root); len(after) != len(before) {
		t.Errorf("an abandoned submit left %d entries (before: %d)", len(after), len(before))
	}

	// Options tether sets itself are refused before anything happens.
	if err := BatchSubmit(context.Background(), BatchSubmitOptions{Options: []string{"-o", "x"}}); err == nil {
		t.Error("-o accepted")
	}
}

// How ls judges a Slurm session: by its job in squeue and its record's phase.
func TestSlurmState(t *testing.T) {
	root := tempRoot(t)
	old := time.Now().Add(-2 * staleAfter)
	tests := []struct {
		name  string
		phase string
		jobID string
		job   *wire.JobStatus // nil: not listed
		nilQ  bool            // squeue failed
		stale bool
		want  string
	}{
		{"queued", phaseQueued, "5", &wire.JobStatus{State: "PENDING"}, false, false, wire.StatePending},
		{"started, not ready", phaseStarting, "5", &wire.JobStatus{State: "RUNNING"}, false, false, wire.StatePending},
		{"ready", phaseRunning, "5", &wire.JobStatus{State: "RUNNING"}, false, false, wire.StateRunning},
		{"completing", phaseRunning, "5", &wire.JobStatus{State: "COMPLETING"}, false, false, wire.StateEnded},
		{"cancelled", phaseEnded, "5", &wire.JobStatus{State: "CANCELLED"}, false, false, wire.StateEnded},
		{"gone from squeue", phaseRunning, "5", nil, false, false, wire.StateEnded},
		{"app exited", phaseAppExited, "5", &wire.JobStatus{State: "COMPLETED"}, false, false, wire.StateAppExited},
		{"submit under way", phaseQueued, "", nil, false, false, wire.StatePending},
		{"submit died", phaseQueued, "", nil, false, true, wire.StateDead},
		{"squeue down, ready", phaseRunning, "5", nil, true, false, wire.StateRunning},
		{"squeue down, queued", phaseQueued, "5", nil, true, false, wire.StatePending},
	}
	for _, tt := range tests {
		s, sf := fakeSession(t, root, func(sf *sessionFile) { sf.Phase, sf.JobID, sf.Slurm = tt.phase, tt.jobID, true })
		if tt.stale {
			os.Chtimes(s.Dir, old, old)
		}
		jobs := map[string]wire.JobStatus{}
		if tt.job != nil {
			j := *tt.job
			j.JobID = tt.jobID
			jobs["/"+tt.jobID] = j
		}
		if tt.nilQ {
			jobs = nil
		}
		if got := slurmState(entry{s: s, rec: sf}, jobs); got != tt.want {
			t.Errorf("for %s, got %s; want %s", tt.name, got, tt.want)
		}
	}
}

// Jobs whose name is not tether-<session> (an id reused after a cluster restart) are
// not the session's.
func TestSlurmJobsOfChecksTheName(t *testing.T) {
	root := tempRoot(t)
	s1, sf1 := fakeSession(t, root, func(sf *sessionFile) { sf.JobID, sf.Slurm = "5", true })
	s2, sf2 := fakeSession(t, root, func(sf *sessionFile) { sf.JobID, sf.Slurm = "6", true })
	fake := fakeSlurm(t, map[string]string{"squeue": "echo '5|tether-" + s1.ID + "|RUNNING|n1|9:00|1:00:00|N/A|None'; echo '6|someone-else|RUNNING|n1|9:00|1:00:00|N/A|None'"})
	jobs, err := slurmJobsOf(context.Background(), []entry{{s: s1, rec: sf1}, {s: s2, rec: sf2}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := jobs["/5"]; !ok || len(jobs) != 1 {
		t.Errorf("jobs %+v; want job 5 alone", jobs)
	}
	log, _ := os.ReadFile(filepath.Join(fake, "squeue.log"))
	if !strings.Contains(string(log), "5,6") || !strings.Contains(string(log), "%i|%j|%T|%N|%L|%l|%S|%r") {
		t.Errorf("squeue got %q", log)
	}
}

// The job's server listens on the node's address: Slurm's NodeAddr when it is an
// address of this machine, else what the node's name resolves to here.
func TestSlurmListenHost(t *testing.T) {
	var mine string
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			mine = n.IP.String()
			break
		}
	}
	if mine != "" {
		fakeSlurm(t, map[string]string{"scontrol": "echo 'NodeName=n1 Arch=x86_64 NodeAddr=" + mine + " NodeHostName=n1 State=MIXED'"})
		if got, err := slurmListenHost(context.Background(), batch.Slurm{}, "n1"); err != nil || got != mine {
			t.Errorf("NodeAddr %s of this machine: got %q, %v", mine, got, err)
		}
	}
	// A NodeAddr that is not this machine's (and a failing scontrol) falls back to the
	// node's name: here "localhost", loopback.
	for _, body := range []string{"echo 'NodeName=n1 NodeAddr=192.0.2.1 State=IDLE'", "echo 'slurm_load_node error: Invalid node name specified' >&2; exit 1"} {
		fakeSlurm(t, map[string]string{"scontrol": body})
		got, err := slurmListenHost(context.Background(), batch.Slurm{}, "localhost")
		if ip := net.ParseIP(got); err != nil || ip == nil || mine == "" && !ip.IsLoopback() || got == "192.0.2.1" {
			t.Errorf("scontrol %q: got %q, %v", body, got, err)
		}
	}
}
