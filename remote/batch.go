//go:build unix

package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tether-dev/tether/batch"
	"github.com/tether-dev/tether/internal/shquote"
	"github.com/tether-dev/tether/internal/termsafe"
	"github.com/tether-dev/tether/wire"
)

// Batch sessions. `tether launch HOST --slurm "OPTIONS"` (or --sge, --pbs, --lsf,
// --batch) runs `tether batch submit --scheduler=S` on the login node: it makes the
// session's directory on the shared home (the record says phase "queued" and names
// the scheduler), writes the job script and submits it with the scheduler's submit
// command (package batch, through runBatch). The job's step is `tether serve
// --batch-session DIR` in the foreground for the job's whole life (no daemon, so
// cancelling the job and its time limit end everything): it listens on the node's
// address (TLS always, token required) and writes the ready record into DIR, with the
// node, the address and the job id. `tether batch watch ID` reports the job's state
// and then the record to the launcher, over SSH. ls, stop and logs find these
// sessions in the batch root and judge them by their scheduler; stop cancels the job.
// (Names here say slurm where they predate the other schedulers.)

const (
	slurmOutputFile = "job.out"
	slurmScriptFile = "job.sh"
	// phaseQueued: submitted, the job's server has not started yet.
	phaseQueued = "queued"
	// phaseEnded: the job's server has exited (the record and the job's output stay
	// until `tether stop` or `ls --prune`).
	phaseEnded = "ended"
	// exitNotVisible is the job script's exit status when the tether binary is not on
	// the node (home directories not shared).
	exitNotVisible = 97
)

// slurmRoot is where Slurm sessions live: $TETHER_STATE_DIR, else
// $XDG_STATE_HOME/tether/batch (statedirs.go). Never $XDG_RUNTIME_DIR: the job on the
// node must see the directory the login node made, so it has to be on the (shared) home.
func slurmRoot(create bool) (string, error) {
	root := os.Getenv("TETHER_STATE_DIR")
	if root != "" {
		return stateRoot(create)
	}
	p, err := slurmRootPath()
	if err != nil {
		return "", err
	}
	return privateRoot(p, create)
}

func (s *session) slurmOutput() string { return filepath.Join(s.Dir, slurmOutputFile) }

// isSlurm reports whether the record is a Slurm session's.
func (sf *sessionFile) isSlurm() bool { return sf != nil && (sf.Slurm || sf.JobID != "") }

// jobName is the Slurm job name of a session.
func jobName(id string) string { return "tether-" + id }

// BatchSubmit is `tether batch submit`: it judges the job's serve arguments and the
// scheduler's options, makes the session directory, writes the job script and submits
// it with the scheduler's submit command, then prints a wire.Submitted line. On any
// failure nothing is left: no directory, no job.
func BatchSubmit(ctx context.Context, o BatchSubmitOptions) (err error) {
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	sub, err := judgeSubmit(o)
	if err != nil {
		return err
	}
	root, err := slurmRoot(true)
	if err != nil {
		return err
	}
	if o.Reuse {
		if done, err := reuseSlurm(ctx, o, sub.serve, root, sub.setup); done || err != nil {
			return err
		}
	}
	if sub.serve.Name != "" {
		if err := slurmNameTaken(ctx, root, sub.serve.Name); err != nil {
			return err
		}
	}
	sess, sf, err := sub.queue(root, o)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			sess.remove()
		}
	}()
	gone := watchEOF(o.Stdin)
	jobID, err := sub.submit(ctx, sess, o.Options)
	if err != nil {
		return err
	}
	sf.JobID = jobID
	if err := writeRecord(sess, sf); err != nil {
		cancelJob(sf, sess.ID)
		return err
	}
	select {
	case <-gone:
		cancelJob(sf, sess.ID)
		return errors.New("the launcher went away (stdin closed) while the job was submitted; the job was cancelled")
	default:
	}
	b, _ := json.Marshal(wire.Submitted{ID: sess.ID, JobID: jobID, Output: sess.slurmOutput()})
	_, err = fmt.Fprintf(o.Stdout, "%s\n", b)
	return err
}

// submission is a batch submit judged: the scheduler, the job's serve, its setup
// script, and the tether binary the job runs.
type submission struct {
	sched batch.Scheduler
	serve wire.Serve
	setup string
	self  string
}

// judgeSubmit judges everything before anything is made or submitted: the
// scheduler's options, the job's serve (its flags, the name, the base URL, the preset:
// now rather than when the job starts on a node, which may be hours away), the setup
// script, the submit command on PATH, and this binary, which the job runs.
func judgeSubmit(o BatchSubmitOptions) (submission, error) {
	sched, err := batch.Lookup(o.Scheduler)
	if err != nil {
		return submission{}, usagef("%v", err)
	}
	if err := sched.CheckOptions(o.Options); err != nil {
		return submission{}, usagef("%s %v", sched.Flag(), err)
	}
	serve, err := wire.ParseServe(o.Serve)
	if err != nil {
		return submission{}, err
	}
	if serve.Detach || serve.ReadyFD != 0 || serve.BatchSession != "" || serve.Listen != "" || serve.Socket != "" || serve.SetupStdin || serve.SetupFile != "" {
		return submission{}, usagef("batch submit: --detach, --ready-fd, --batch-session, --listen, --socket and the setup flags are the job's own; give the app's flags only")
	}
	if o.Name != "" && serve.Name != "" && o.Name != serve.Name {
		return submission{}, usagef("batch submit: --name %q and the job's serve --name %q differ", o.Name, serve.Name)
	}
	if o.Name != "" {
		serve.Name = o.Name
	}
	if err := serve.Check(); err != nil {
		return submission{}, err
	}
	if serve.App != "" {
		if _, err := presetByName(serve.App); err != nil {
			return submission{}, err
		}
	}
	setup, err := o.readSetup()
	if err != nil {
		return submission{}, err
	}
	if _, err := exec.LookPath(submitProgram(sched)); err != nil {
		return submission{}, wire.Fail(wire.FailNoScheduler,
			wire.Textf("%s is not on %v's PATH: is it a %s login node?", submitProgram(sched), wire.Machine(hostname()), sched.Title()),
			wire.Plain("load the scheduler's module in your shell's startup file if the site uses modules"))
	}
	self, err := os.Executable()
	if err != nil {
		return submission{}, fmt.Errorf("cannot find the tether binary for the job: %w", err)
	}
	if r, err := filepath.EvalSymlinks(self); err == nil {
		self = r
	}
	return submission{sched: sched, serve: serve, setup: setup, self: self}, nil
}

// queue makes the session's directory with its queued record (no job id yet) and the
// job script; on failure nothing is left.
func (sub submission) queue(root string, o BatchSubmitOptions) (sess *session, sf *sessionFile, err error) {
	sess, err = newSession(root)
	if err != nil {
		return nil, nil, err
	}
	sess.SockDir = sess.Dir // the job makes its own socket directory on the node
	defer func() {
		if err != nil {
			sess.remove()
		}
	}()
	serve := sub.serve
	sf = &sessionFile{
		Record: wire.Record{ID: sess.ID, Name: serve.Name, Command: append([]string{}, serve.Command...), App: serve.App, Scheduler: schedName(sub.sched), ViaNodeSSH: o.ViaNodeSSH, BatchOptions: o.Options,
			Started: time.Now().UTC().Round(time.Millisecond), Version: o.Version},
		Phase: phaseQueued, Slurm: true, Request: slurmRequest(o, serve, sub.setup),
	}
	if sf.Command == nil {
		sf.Command = []string{}
	}
	if err := writeRecord(sess, sf); err != nil {
		return nil, nil, err
	}
	serve.BatchSession = sess.Dir
	if serve, err = withJobSetup(sess.Dir, sub.setup, serve); err != nil {
		return nil, nil, err
	}
	if err := writeFileAtomic(sess.Dir, slurmScriptFile, slurmScript(sub.self, sess.Dir, serve)); err != nil {
		return nil, nil, err
	}
	return sess, sf, nil
}

// submit submits the session's job script with the scheduler's submit command (2
// minutes at most) and returns the job's id; a refusal is a usage error or a
// wire.Failure with the scheduler's words.
func (sub submission) submit(ctx context.Context, sess *session, options []string) (string, error) {
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	// TETHER_BIN lets a site's wrapper ask this tether to judge its options (batch
	// check; see batch/site).
	jobID, err := sub.sched.Submit(sctx, runBatch, batch.Submission{Options: options, Name: jobName(sess.ID),
		Output: sess.slurmOutput(), Script: filepath.Join(sess.Dir, slurmScriptFile), Env: append(os.Environ(), "TETHER_BIN="+sub.self)})
	if err == nil {
		return jobID, nil
	}
	var ue *batch.UsageError
	var ce *batch.CommandError
	switch {
	case errors.As(err, &ue):
		return "", usagef("%s", ue.Msg)
	case sctx.Err() != nil && ctx.Err() == nil:
		return "", wire.Fail("", wire.Textf("%s did not answer within 2 minutes (is the scheduler reachable?); nothing was submitted", submitProgram(sub.sched)), nil)
	case errors.As(err, &ce):
		f := wire.Fail(wire.FailBatchRefused, wire.Textf("%s refused the job: %s", ce.Name, ce.Words()), nil)
		f.SchedulerSaid = ce.Words()
		return "", f
	}
	return "", wire.Fail("", wire.Textf("%v; check for a job named %s", err, jobName(sess.ID)), nil)
}

// slurmScript is the batch script: tether serve in the foreground (exec, so it is the
// step's own process), or a clear message when the binary is not on the node.
func slurmScript(bin, dir string, serve wire.Serve) []byte {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n")
	fmt.Fprintf(&b, "# tether session %s: the step is `tether serve` in the foreground for the job's\n", filepath.Base(dir))
	b.WriteString("# whole life (no daemon), so scancel and the time limit end all of it.\n")
	fmt.Fprintf(&b, "b=%s\n", shquote.Quote(bin))
	b.WriteString("if [ ! -x \"$b\" ]; then\n")
	b.WriteString("  echo \"tether: $b is not on node $(hostname): the nodes do not see the login node's home directory (or XDG_CACHE_HOME)\" >&2\n")
	fmt.Fprintf(&b, "  exit %d\nfi\n", exitNotVisible)
	b.WriteString("exec \"$b\" serve " + shquote.Join(serve.Args()) + "\n")
	return []byte(b.String())
}

type limitWriter struct {
	w io.Writer
	n int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(l.n, len(p))
		l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}

// runBatch runs a scheduler's client command (30 s at most) and returns its stdout; a
// failure is a *batch.CommandError with the command's words. env nil: this process's.
func runBatch(ctx context.Context, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	path, err := exec.LookPath(name)
	if err != nil {
		return "", &batch.CommandError{Name: name, Err: fmt.Errorf("%s is not on %s's PATH", name, hostname())}
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &limitWriter{w: &out, n: 4 << 20}, &limitWriter{w: &errb, n: 64 << 10}
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("no answer within 30 s: %w", ctx.Err())
		}
		return out.String(), &batch.CommandError{Name: name, Stderr: errb.String(), Err: err}
	}
	return out.String(), nil
}

// batchHostNote is the one line serve says when it runs on a batch cluster's login
// node rather than in a job there: a user who forgot --slurm would otherwise run the
// app on the login node without a word. Empty elsewhere, and inside a job.
func batchHostNote(getenv func(string) string) wire.Text {
	for _, v := range []string{"SLURM_JOB_ID", "JOB_ID", "PBS_JOBID", "LSB_JOBID"} {
		if getenv(v) != "" {
			return nil // a job's own step (an interactive job's shell): the app runs on a node
		}
	}
	var title, flag, prog string
	switch {
	case lookPath("sbatch"):
		title, flag, prog = "Slurm", "--slurm", "sbatch"
	case lookPath("qsub") && getenv("SGE_ROOT") != "":
		title, flag, prog = "Grid Engine", "--sge", "qsub"
	case lookPath("qsub"):
		title, flag, prog = "PBS", "--pbs", "qsub"
	case lookPath("bsub"):
		title, flag, prog = "LSF", "--lsf", "bsub"
	default:
		return nil
	}
	return wire.Textf("%v submits %s jobs (%s is on PATH): the app runs on it, not on a compute node; launch with %s \"OPTIONS\" to run it in a batch job", wire.Machine("this host"), title, prog, flag)
}

func lookPath(name string) bool { _, err := exec.LookPath(name); return err == nil }

// submitProgram is the scheduler's submit command, for messages.
func submitProgram(s batch.Scheduler) string {
	switch s.Name() {
	case "slurm":
		return "sbatch"
	case "sge", "pbs":
		return "qsub"
	case "lsf":
		return "bsub"
	}
	return "tether-batch-" + s.Name()
}

// schedName is the scheduler's name as records keep it: empty for Slurm (records
// made before tether knew other schedulers have none).
func schedName(s batch.Scheduler) string {
	if s.Name() == "slurm" {
		return ""
	}
	return s.Name()
}

// schedulerOf is the scheduler of a batch session's record.
func schedulerOf(sf *sessionFile) batch.Scheduler {
	s, err := batch.Lookup(sf.Scheduler)
	if err != nil {
		return batch.Slurm{} // Validate refused such a record; not reached
	}
	return s
}

// jobKey keys a batch session's job in the maps jobsOf returns.
func jobKey(sf *sessionFile) string { return sf.Scheduler + "/" + sf.JobID }

// queryJobs asks the session's scheduler about its job.
func queryJob(ctx context.Context, sf *sessionFile) (map[string]wire.JobStatus, error) {
	return schedulerOf(sf).Status(ctx, runBatch, []string{sf.JobID})
}

// cancelJob cancels the session's job: by id and name, so an id reused by another job
// is never hit. A job already gone is not an error.
func cancelJob(sf *sessionFile, sessionID string) error {
	return schedulerOf(sf).Cancel(context.Background(), runBatch, sf.JobID, jobName(sessionID))
}

// slurmNameTaken refuses a name already used by a Slurm session whose job is not over.
func slurmNameTaken(ctx context.Context, root, name string) error {
	all, err := scanRoots(root, true)
	if err != nil {
		return err
	}
	var same []entry
	for _, e := range all {
		if e.rec.isSlurm() && e.rec.Name == name && e.rec.JobID != "" {
			same = append(same, e)
		}
	}
	if len(same) == 0 {
		return nil
	}
	jobs, err := slurmJobsOf(ctx, same)
	if err != nil {
		return nil // squeue is down: sbatch will say so
	}
	for _, e := range same {
		if j, ok := jobs[jobKey(e.rec)]; ok && !JobEnded(j.State) {
			f := wire.Fail(wire.FailNameTaken, wire.Textf("a batch session named %q exists (%s, job %s %s)", name, e.s.ID, j.JobID, j.State),
				wire.Textf("stop it with %v or pick another --name", wire.Tether("stop", name)))
			f.Session = e.s.ID
			return f
		}
	}
	return nil
}

// slurmJobsOf asks the schedulers about the jobs of these batch sessions (once per
// scheduler), keyed by jobKey, keeping only jobs named after their session.
func slurmJobsOf(ctx context.Context, es []entry) (map[string]wire.JobStatus, error) {
	ids := map[string][]string{}
	want := map[string]string{}
	for _, e := range es {
		if e.rec.isSlurm() && e.rec.JobID != "" {
			ids[e.rec.Scheduler] = append(ids[e.rec.Scheduler], e.rec.JobID)
			want[jobKey(e.rec)] = jobName(e.s.ID)
		}
	}
	all := map[string]wire.JobStatus{}
	for name, list := range ids {
		jobs, err := schedulerOf(&sessionFile{Record: wire.Record{Scheduler: name}}).Status(ctx, runBatch, list)
		if err != nil {
			return nil, err
		}
		for id, j := range jobs {
			k := name + "/" + id
			if want[k] == j.Name {
				all[k] = j
			}
		}
	}
	return all, nil
}

// slurmState judges a Slurm session: pending until its server is ready, running while
// the job runs with a ready server, ended once the job is over; app-exited as its server
// recorded. jobs is nil when squeue could not be asked: the record alone decides then.
func slurmState(e entry, jobs map[string]wire.JobStatus) string {
	sf := e.rec
	if sf == nil {
		return wire.StateDead
	}
	if sf.Phase == phaseAppExited {
		return wire.StateAppExited
	}
	if sf.JobID == "" {
		// The submit is under way, or died before sbatch answered.
		if fi, err := os.Lstat(e.s.Dir); err == nil && time.Since(fi.ModTime()) > staleAfter {
			return wire.StateDead
		}
		return wire.StatePending
	}
	if jobs == nil {
		switch sf.Phase {
		case phaseRunning:
			return wire.StateRunning
		case phaseEnded:
			return wire.StateEnded
		}
		return wire.StatePending
	}
	j, ok := jobs[jobKey(sf)]
	switch {
	case !ok || JobEnded(j.State) || j.State == "COMPLETING":
		return wire.StateEnded
	case j.State == "RUNNING" && sf.Phase == phaseRunning:
		return wire.StateRunning
	case sf.Phase == phaseEnded:
		return wire.StateEnded
	}
	return wire.StatePending
}

// stopSlurmEntry cancels the session's job, waits until Slurm says it is over (its
// processes gone), and removes the session's directory.
func stopSlurmEntry(ctx context.Context, e entry) error {
	if sf := e.rec; sf != nil && sf.JobID != "" {
		// Said before the job ends, so that a watching launcher, which may see the
		// cancelled job before the directory goes, knows the logs go with it.
		writeFileAtomic(e.s.Dir, stoppingFile, nil)
		if err := cancelJob(sf, e.s.ID); err != nil {
			os.Remove(filepath.Join(e.s.Dir, stoppingFile))
			return fmt.Errorf("cancelling job %s: %w", sf.JobID, err)
		}
		var last wire.JobStatus
		if !waitGone(ctx, slurmStopWait, func() bool {
			jobs, err := queryJob(ctx, sf)
			if err != nil {
				return false
			}
			j, ok := jobs[sf.JobID]
			last = j
			return !ok || j.Name != jobName(e.s.ID) || JobEnded(j.State)
		}) {
			return fmt.Errorf("job %s is still %s %s after it was cancelled; check it with the scheduler's own commands", sf.JobID, last.StateWords(), slurmStopWait)
		}
	}
	if err := e.s.remove(); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// stoppingFile, in a batch session's directory, says `tether stop` is cancelling its
// job and will remove the session.
const stoppingFile = "stopping"

// slurmStopWait bounds the wait for a cancelled job to end: Slurm's KillWait (30 s by
// default) between SIGTERM and SIGKILL, plus the epilog.
var slurmStopWait = 90 * time.Second

// slurmLogs prints the job's output file and then the app's log.
func slurmLogs(ctx context.Context, e entry, o LogsOptions) error {
	fmt.Fprintf(o.Stdout, "==> job %s output (%s) <==\n", e.rec.JobID, e.s.slurmOutput())
	jf := &appTailFilter{w: o.Stdout}
	if f, err := copyLog(jf, e.s.slurmOutput()); err == nil {
		jf.flush()
		f.Close()
	} else if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintln(o.Stdout, "(none yet: the job has not started)")
	} else {
		return err
	}
	fmt.Fprintf(o.Stdout, "==> app log (%s) <==\n", e.s.logPath())
	if !o.Follow {
		f, err := copyLog(o.Stdout, e.s.logPath())
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		return f.Close()
	}
	var lastCheck time.Time
	ended := false
	done := func() bool {
		if time.Since(lastCheck) < 5*time.Second {
			return ended
		}
		lastCheck = time.Now()
		sf, err := readRecord(e.s.recordPath())
		if err != nil {
			return true
		}
		jobs, err := slurmJobsOf(ctx, []entry{{s: e.s, rec: sf}})
		if err != nil {
			return false
		}
		st := slurmState(entry{s: e.s, rec: sf}, jobs)
		ended = st == wire.StateEnded || st == wire.StateAppExited || st == wire.StateDead
		return ended
	}
	err := followLog(ctx, o.Stdout, e.s.logPath(), done)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// appTailFilter writes the job's output file without the app's last lines that the
// job's server copied there when the app ended ("tether: the app's last output:" and
// its "  | " lines): logs shows them in the app log that follows, and printed them
// twice.
type appTailFilter struct {
	w       io.Writer
	partial []byte
	inTail  bool
}

func (f *appTailFilter) Write(p []byte) (int, error) {
	f.partial = append(f.partial, p...)
	for {
		i := bytes.IndexByte(f.partial, '\n')
		if i < 0 {
			break
		}
		line := f.partial[:i+1]
		switch {
		case bytes.HasPrefix(line, []byte("tether: the app's last output:")):
			f.inTail = true
			io.WriteString(f.w, "tether: the app ended; its last output is in the app log below\n")
		case f.inTail && bytes.HasPrefix(line, []byte("  | ")):
		default:
			f.inTail = false
			f.w.Write(line)
		}
		f.partial = f.partial[i+1:]
	}
	return len(p), nil
}

// flush writes a last line without its newline.
func (f *appTailFilter) flush() {
	if len(f.partial) > 0 && !(f.inTail && bytes.HasPrefix(f.partial, []byte("  | "))) {
		f.w.Write(f.partial)
	}
	f.partial = nil
}

// openBatchSession is the job's side: the session directory the submit made (passed as
// --batch-session), checked to be ours and this job's.
func openBatchSession(dir string) (*session, *sessionFile, error) {
	if !filepath.IsAbs(dir) || filepath.Clean(dir) != dir || !wire.ValidID(filepath.Base(dir)) {
		return nil, nil, usagef("--batch-session %q is not a session directory", dir)
	}
	if err := checkPrivateDir(dir); err != nil {
		return nil, nil, err
	}
	s := &session{ID: filepath.Base(dir), Root: filepath.Dir(dir), Dir: dir, SockDir: dir}
	// The submit writes the job id into the record right after sbatch answers; the job
	// may start first.
	var sf *sessionFile
	var err error
	deadline := time.Now().Add(30 * time.Second)
	for {
		sf, err = readRecord(s.recordPath())
		if err == nil && (sf.JobID != "" || time.Now().After(deadline)) {
			break
		}
		if err != nil && time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("reading the session's record: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !sf.isSlurm() || sf.ID != s.ID {
		return nil, nil, fmt.Errorf("%s is not a batch session's directory", dir)
	}
	sched := schedulerOf(sf)
	jobID, _ := sched.InJob(os.Getenv)
	switch {
	case jobID == "" && sched.Name() == "slurm":
		return nil, nil, usagef("--batch-session runs only inside the batch job `tether launch --slurm` submitted (SLURM_JOB_ID is not set)")
	case jobID == "" && sf.JobID == "":
		return nil, nil, usagef("--batch-session runs only inside the batch job `tether launch %s` submitted", sched.Flag())
	case jobID == "":
		jobID = sf.JobID // a scheduler (or site wrapper) that names no job in the job's environment
	}
	if sf.JobID != "" && sf.JobID != jobID {
		return nil, nil, fmt.Errorf("session %s belongs to job %s, not to this job %s", s.ID, sf.JobID, jobID)
	}
	sf.JobID = jobID
	sd, err := shortSocketDir(s.ID)
	if err != nil {
		return nil, nil, err
	}
	s.SockDir = sd
	return s, sf, nil
}

// slurmListenHost is the address the job's server listens on: the node's own address,
// the one the login node reaches. Slurm's NodeAddr for the node comes first (what the
// controller uses to reach it), then what the node's name resolves to; only addresses
// of this machine's interfaces count, non-loopback ones before loopback (a cluster whose
// login node is the node itself).
func slurmListenHost(ctx context.Context, sched batch.Scheduler, node string) (string, error) {
	names := sched.NodeAddrs(ctx, runBatch, node)
	names = append(names, node, hostname())
	var ips []net.IP
	for _, name := range names {
		if ip := net.ParseIP(name); ip != nil {
			ips = append(ips, ip)
		} else if found, err := net.LookupIP(name); err == nil {
			ips = append(ips, found...)
		}
	}
	local := map[string]bool{}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				local[n.IP.String()] = true
			}
		}
	}
	pick := func(ok func(net.IP) bool) string {
		for _, ip := range ips {
			if local[ip.String()] && ok(ip) {
				return ip.String()
			}
		}
		return ""
	}
	for _, ok := range []func(net.IP) bool{
		func(ip net.IP) bool { return ip.To4() != nil && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() },
		func(ip net.IP) bool { return ip.To4() == nil && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() },
		func(ip net.IP) bool { return ip.IsLoopback() },
	} {
		if a := pick(ok); a != "" {
			return a, nil
		}
	}
	return "", fmt.Errorf("cannot find node %s's address: none of %s is an address of this machine", node, strings.Join(names, ", "))
}

// slurmNode is the node's name as the scheduler knows it, else the host's short name.
func slurmNode(sched batch.Scheduler) string {
	if _, n := sched.InJob(os.Getenv); wire.ValidHost(n) {
		return n
	}
	h := hostname()
	if i := strings.IndexByte(h, '.'); i > 0 {
		h = h[:i]
	}
	return h
}

// slurmReporter reports the job's server to its output file: progress, then a ready
// line without the token (the output file is no place for secrets), and the app's last
// lines when it fails (its whole output is in the session's app log).
type slurmReporter struct{ w io.Writer }

func (r slurmReporter) progress(n wire.Note) { printNote(r.w, n, false) }

func (r slurmReporter) ready(rec wire.Record) {
	fmt.Fprintf(r.w, "tether: session %s is ready on %s at %s (job %s): %s\n", rec.ID, rec.Node, rec.Addr, rec.JobID, commandLine(rec.Command))
}

// failed puts the app's last output, or the login shell's and the setup's, in the
// job's output file, where the launcher shows it from.
func (r slurmReporter) failed(f *wire.Failure) {
	if len(f.AppOutput) > 0 {
		fmt.Fprintf(r.w, "tether: %s:\n%s", tailHeading(f.OutputOf), indent(f.AppOutput))
	}
}

// jobOutputCap bounds what the job's server writes to the job's output file.
const jobOutputCap = 1 << 20

// jobOutput is the job's server's stderr, which is the job's output file: Slurm opens
// that file and holds it for the whole job, so tether cannot rotate it as it does its
// own logs. What goes there is short by design (progress, the ready line, the app's
// last lines when it fails; the app's output and the server's log go to the session's
// capped logs), and this writer enforces it: at most max bytes, then one line saying
// where the rest is, then nothing, whatever anyone connecting to the server does.
type jobOutput struct {
	mu   sync.Mutex
	w    io.Writer
	left int
	note string
}

func newJobOutput(w io.Writer, max int, logs string) *jobOutput {
	return &jobOutput{w: w, left: max, note: fmt.Sprintf("tether: the job's output file reached its cap (%d KiB); the rest is only in the session's logs in %s (`tether logs`)\n", max>>10, logs)}
}

func (j *jobOutput) Write(p []byte) (int, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	switch {
	case j.left < 0:
	case len(p) <= j.left:
		j.w.Write(p)
		j.left -= len(p)
	default:
		j.w.Write(p[:j.left])
		io.WriteString(j.w, "\n"+j.note)
		j.left = -1
	}
	return len(p), nil
}

// How often the watch looks: the record file often (cheap, local), squeue every second
// until the session is ready, then every slurmWatchRunning (an RPC to slurmctld).
var (
	slurmWatchTick    = 200 * time.Millisecond
	slurmWatchPending = time.Second
	slurmWatchRunning = 15 * time.Second
)

// BatchWatch is `tether batch watch ID`: one JSON line per event until the job ends or
// the caller goes away.
func BatchWatch(ctx context.Context, o BatchWatchOptions) error {
	w, err := openJobWatch(o.Target)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	gone := watchEOF(o.Stdin)
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		select {
		case <-gone:
			cancel()
		case <-ctx.Done():
		}
	}()
	defer func() { // the watcher is BatchWatch's: it ends with ctx and is waited for
		cancel()
		<-watching
	}()
	enc := json.NewEncoder(o.Stdout)
	w.send = func(ev wire.Event) error { return enc.Encode(ev) }
	return w.run(ctx)
}

// jobWatch is one `tether batch watch`: it reads the session's record and asks the
// scheduler about its job, and sends what changed. Its state is its loop's alone.
type jobWatch struct {
	s  *session
	sf *sessionFile
	// send writes one event; a failure ends the watch (the launcher went away).
	send func(wire.Event) error
	// query asks the scheduler about the record's job (queryJob).
	query func(context.Context, *sessionFile) (map[string]wire.JobStatus, error)

	last      wire.JobStatus // the job as last seen
	lastSent  time.Time      // when a job event was last sent
	lastAsked time.Time      // when the scheduler was last asked
	readySent bool
	failures  int    // scheduler queries failed in a row
	lastPhase string // the record's phase as last read
}

// openJobWatch finds the batch session id and reads its record.
func openJobWatch(id string) (*jobWatch, error) {
	root, err := slurmRoot(false)
	if err != nil {
		return nil, err
	}
	if !wire.ValidID(id) {
		return nil, usagef("batch watch needs a session id")
	}
	s := findSlurmSession(root, id)
	sf, err := readRecord(s.recordPath())
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, wire.Fail(wire.FailNoSession, wire.Textf("no batch session %s on %v", id, wire.Machine(hostname())), nil)
		}
		return nil, err
	}
	if !sf.isSlurm() {
		return nil, fmt.Errorf("session %s is not a batch session", id)
	}
	return &jobWatch{s: s, sf: sf, query: queryJob, lastPhase: sf.Phase}, nil
}

// run looks every slurmWatchTick until the job ends (its last event sent), the caller
// goes away (ctx, or a send that fails) or the job id never comes (2 minutes).
func (w *jobWatch) run(ctx context.Context) error {
	waitID := time.Now().Add(2 * time.Minute)
	for {
		if done, err := w.look(ctx, waitID); done {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(slurmWatchTick):
		}
	}
}

// look is one look: the record, then the scheduler when it is due, then the ready
// record once the job runs. done says the watch is over, with err its result.
func (w *jobWatch) look(ctx context.Context, waitID time.Time) (done bool, err error) {
	if removed := w.reload(); removed {
		return true, w.send(wire.Event{Kind: wire.EventEnded, Job: wire.JobStatus{JobID: w.sf.JobID, State: w.last.State}, Removed: true,
			Said: wire.Plain("the session's directory is gone (stopped)")})
	}
	if w.sf.JobID == "" {
		if time.Now().After(waitID) {
			return true, fmt.Errorf("session %s has no job id after 2 minutes: its submit failed", w.s.ID)
		}
		return false, nil
	}
	if time.Since(w.lastAsked) >= w.interval() {
		if done, err := w.ask(ctx); done {
			return true, err
		}
	}
	return w.sendReady()
}

// reload reads the record again; a changed phase (the job's server started, got ready
// or ended) makes the scheduler due at once. removed says the session's directory is
// gone (stopped); a record that cannot be read otherwise keeps the last one.
func (w *jobWatch) reload() (removed bool) {
	r, err := readRecord(w.s.recordPath())
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return true
	case err != nil:
		return false
	}
	w.sf = r
	if w.sf.Phase != w.lastPhase {
		w.lastPhase, w.lastAsked = w.sf.Phase, time.Time{}
	}
	return false
}

// interval is how often the scheduler is asked: every slurmWatchPending until the
// session is ready, then every slurmWatchRunning, and often again once the job's
// server has ended (the job is about to).
func (w *jobWatch) interval() time.Duration {
	switch {
	case w.sf.Phase == phaseEnded || w.sf.Phase == phaseAppExited:
		return slurmWatchPending
	case w.readySent:
		return slurmWatchRunning
	}
	return slurmWatchPending
}

// ask asks the scheduler about the job and sends what changed: its end (the last
// event), its state when it changed or a minute after the last one sent (the time
// left), a note at the 3rd failure in a row and every 30th. done says the watch is
// over.
func (w *jobWatch) ask(ctx context.Context) (done bool, err error) {
	w.lastAsked = time.Now()
	jobs, err := w.query(ctx, w.sf)
	switch {
	case ctx.Err() != nil:
		return true, nil
	case err != nil:
		w.failures++
		if w.failures == 3 || w.failures%30 == 0 {
			if err := w.send(wire.Event{Kind: wire.EventNote, Job: w.last, Said: wire.Plain(termsafe.OneLine(err.Error()))}); err != nil {
				return true, nil
			}
		}
		return false, nil
	}
	w.failures = 0
	j, ok := jobs[w.sf.JobID]
	if !ok || j.Name != jobName(w.s.ID) {
		j = wire.JobStatus{JobID: w.sf.JobID}
	}
	if JobEnded(j.State) {
		return true, w.send(w.ended(ctx, j))
	}
	changed := j.State != w.last.State || j.Reason != w.last.Reason || j.Node != w.last.Node
	if changed || time.Since(w.lastSent) >= time.Minute {
		if err := w.send(wire.Event{Kind: wire.EventJob, Job: j}); err != nil {
			return true, nil
		}
		w.lastSent = time.Now()
	}
	w.last = j
	return false, nil
}

// ended is the last event of a job that ended: removed when `tether stop` cancelled it
// (its stopping mark), else how it ended (slurmEnded).
func (w *jobWatch) ended(ctx context.Context, j wire.JobStatus) wire.Event {
	if _, err := os.Lstat(filepath.Join(w.s.Dir, stoppingFile)); err == nil {
		return wire.Event{Kind: wire.EventEnded, Job: j, Removed: true, Said: wire.Textf("stopped (%v): the session and its logs are being removed", wire.Tether("stop", w.s.ID))}
	}
	return slurmEnded(ctx, w.s, w.sf, j)
}

// sendReady sends the ready record once the job runs and its server has written it.
// done says the watch is over (the send failed).
func (w *jobWatch) sendReady() (done bool, err error) {
	if w.readySent || w.sf.Phase != phaseRunning || w.last.State != "RUNNING" {
		return false, nil
	}
	rec := w.sf.Record
	rec.State, rec.Job = "", nil
	if rec.Validate() != nil {
		return false, nil
	}
	if err := w.send(wire.Event{Kind: wire.EventReady, Job: w.last, Session: &rec}); err != nil {
		return true, nil
	}
	w.readySent = true
	return false, nil
}

// slurmEnded is the last event: how the job ended, with its output's last lines and
// why its server ended (as it recorded).
func slurmEnded(ctx context.Context, s *session, sf *sessionFile, j wire.JobStatus) wire.Event {
	ev := wire.Event{Kind: wire.EventEnded, Job: j, OutputPath: s.slurmOutput()}
	if b, err := readTail(s.slurmOutput(), 64<<10); err == nil {
		ev.OutputSeen = true
		ev.Output = lastLines(string(b), 20)
	}
	if v := schedulerOf(sf).Finished(ctx, runBatch, sf.JobID); len(v) < 16 {
		ev.ExitCode = v
		ev.NotVisible = strings.HasPrefix(v, strconv.Itoa(exitNotVisible)+":")
	}
	if r, err := readRecord(s.recordPath()); err == nil {
		sf = r
	}
	ev.Exit, ev.Why = termsafe.Clip(termsafe.OneLine(sf.Exit), 300), sf.Why
	return ev
}

// readTail reads at most the last n bytes of a regular file, not following symlinks.
func readTail(path string, n int64) ([]byte, error) {
	f, err := openLog(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > n {
		if _, err := f.Seek(fi.Size()-n, io.SeekStart); err != nil {
			return nil, err
		}
	}
	return io.ReadAll(io.LimitReader(f, n))
}

// normalizeSlurm checks serve's options in a Slurm job: foreground, a token, TLS.
func (o *ServeOptions) normalizeSlurm() error {
	if o.Detach || o.ReadyFD > 0 {
		return usagef("--batch-session runs in the foreground: it is the job's step")
	}
	if noAuth() {
		return usagef("TETHER_NO_AUTH=1 is refused in a batch job: its server listens on the cluster network")
	}
	if o.Listen != "" || o.Socket != "" {
		return usagef("--batch-session picks its own address and socket; drop --listen and --socket")
	}
	o.TLS = true
	return nil
}

// startSlurm fills in the job's side of the record and the listen address: the node's
// address, a port the kernel picks.
func (o *ServeOptions) startSlurm(sf, queued *sessionFile) error {
	sched := schedulerOf(queued)
	node := slurmNode(sched)
	host, err := slurmListenHost(context.Background(), sched, node)
	if err != nil {
		return err
	}
	o.Listen = net.JoinHostPort(host, "0")
	sf.Slurm, sf.JobID, sf.Node, sf.Scheduler, sf.ViaNodeSSH = true, queued.JobID, node, queued.Scheduler, queued.ViaNodeSSH
	sf.Request = queued.Request
	sf.BatchOptions = queued.BatchOptions
	if sf.Name == "" {
		sf.Name = queued.Name
	}
	if !queued.Started.IsZero() {
		sf.Started = queued.Started
	}
	return nil
}

// endBatchSession records how the job's server ended (the token cleared: nobody can
// use it any more) and removes the node-local socket directory. The session directory
// stays for ls and logs.
func endBatchSession(s *session, sf *sessionFile, err error) {
	if err != nil && sf.Why == nil {
		sf.Why = wire.FailureOf(err)
	}
	if sf.Phase != phaseAppExited {
		sf.Phase = phaseEnded
		if sf.Exit == "" && err != nil {
			sf.Exit = termsafe.OneLine(err.Error())
			if len(sf.Exit) > 300 {
				sf.Exit = sf.Exit[:300] + "…"
			}
		}
		if sf.Exit == "" {
			sf.Exit = "stopped"
		}
	}
	if sf.Ended.IsZero() {
		sf.Ended = time.Now().UTC()
	}
	sf.Token = ""
	writeRecord(s, sf)
	if s.SockDir != s.Dir && isShortSocketDir(s.SockDir, s.ID) {
		os.RemoveAll(s.SockDir)
	}
}

// slurmJobsFor asks squeue once about the Slurm sessions among es; nil (with a note on
// stderr) when squeue fails, so their states come from the records alone.
func slurmJobsFor(ctx context.Context, es []entry, say noter) map[string]wire.JobStatus {
	any := false
	for _, e := range es {
		any = any || e.rec.isSlurm() && e.rec.JobID != ""
	}
	if !any {
		return map[string]wire.JobStatus{}
	}
	jobs, err := slurmJobsOf(ctx, es)
	if err != nil {
		say.note(wire.Stepf("cannot ask the scheduler about the jobs of batch sessions (%s); their states below come from their records", termsafe.OneLine(err.Error())))
		return nil
	}
	return jobs
}
