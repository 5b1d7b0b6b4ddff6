package remote

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// What tether reads of Slurm, and how it judges it. The formats are Slurm's own
// (checked against Slurm 22.05; see the e2e tests); nothing here runs a command, so
// the launcher uses it too.

// StatePending and StateEnded are Slurm sessions' states in ls besides running (and
// dead): the job is queued (or started, its server not ready yet), or the job is over.
const (
	StatePending = "pending"
	StateEnded   = "ended"
)

// JobStatus is one Slurm job as squeue shows it.
type JobStatus struct {
	// JobID is the job's id; Name its name (tether-<session> for tether's jobs).
	JobID string `json:"job_id"`
	Name  string `json:"name,omitempty"`
	// State is squeue's %T (PENDING, RUNNING, COMPLETING, COMPLETED, CANCELLED,
	// TIMEOUT, FAILED…); empty when squeue no longer lists the job (it ended more than
	// MinJobAge ago).
	State string `json:"state"`
	// Reason is squeue's %r: why a job is pending (Resources, Priority,
	// PartitionTimeLimit…) or how it ended (NonZeroExitCode…); "None" otherwise.
	Reason string `json:"reason,omitempty"`
	// Node is the node the job runs on (squeue's %N); empty while pending.
	Node string `json:"node,omitempty"`
	// TimeLeft is squeue's %L: M:SS, H:MM:SS, D-HH:MM:SS, UNLIMITED or INVALID. For a
	// pending job it is the whole time limit.
	TimeLeft string `json:"time_left,omitempty"`
}

// squeueFormat is what tether asks squeue for: the reason last, since its long texts
// could hold anything.
const squeueFormat = "%i|%j|%T|%N|%L|%r"

// parseSqueue parses squeue -h -o squeueFormat output into jobs by id. Lines that do
// not parse are skipped; an output of nothing but such lines is an error.
func parseSqueue(out string) (map[string]JobStatus, error) {
	jobs := map[string]JobStatus{}
	bad := 0
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		j, err := parseSqueueLine(line)
		if err != nil {
			bad++
			continue
		}
		jobs[j.JobID] = j
	}
	if bad > 0 && len(jobs) == 0 {
		return nil, fmt.Errorf("squeue printed %d line(s) tether cannot read", bad)
	}
	return jobs, nil
}

var (
	jobIDPattern    = regexp.MustCompile(`^[0-9]{1,20}$`)
	jobStatePattern = regexp.MustCompile(`^[A-Z_]{1,32}$`)
)

func parseSqueueLine(line string) (JobStatus, error) {
	f := strings.SplitN(line, "|", 6)
	if len(f) != 6 {
		return JobStatus{}, fmt.Errorf("squeue line %q has %d fields; want 6", clip(line), len(f))
	}
	j := JobStatus{JobID: f[0], Name: f[1], State: f[2], Node: f[3], TimeLeft: f[4], Reason: strings.TrimSpace(f[5])}
	if !jobIDPattern.MatchString(j.JobID) {
		return JobStatus{}, fmt.Errorf("squeue line %q: job id %q", clip(line), clip(j.JobID))
	}
	if !jobStatePattern.MatchString(j.State) {
		return JobStatus{}, fmt.Errorf("squeue line %q: state %q", clip(line), clip(j.State))
	}
	if j.Node == "(null)" {
		j.Node = ""
	}
	return j, nil
}

// ErrNoTimeLimit is returned by ParseTimeLeft for UNLIMITED (and NOT_SET): the job has
// no end to warn about.
var ErrNoTimeLimit = errors.New("no time limit")

// ParseTimeLeft parses squeue's %L (and %l): "M:SS", "MM:SS", "H:MM:SS", "D-HH:MM:SS"
// (also "D-HH" and "D-HH:MM", which Slurm accepts in limits). UNLIMITED and NOT_SET give
// ErrNoTimeLimit; INVALID (Slurm's word for a negative or unknown time) and anything else
// an error.
func ParseTimeLeft(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "UNLIMITED", "NOT_SET", "Partition_Limit":
		return 0, ErrNoTimeLimit
	case "":
		return 0, errors.New("empty time")
	case "INVALID":
		return 0, errors.New("squeue says INVALID")
	}
	days := 0
	rest := s
	if d, r, ok := strings.Cut(s, "-"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || !allDigits(d) || len(d) > 5 {
			return 0, fmt.Errorf("time %q: bad days", clip(s))
		}
		days, rest = n, r
	}
	parts := strings.Split(rest, ":")
	var h, m, sec int
	nums := make([]int, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || !allDigits(p) || len(p) > 6 {
			return 0, fmt.Errorf("time %q is not M:SS, H:MM:SS or D-HH:MM:SS", clip(s))
		}
		if i > 0 && (len(p) != 2 || n > 59) {
			return 0, fmt.Errorf("time %q is not M:SS, H:MM:SS or D-HH:MM:SS", clip(s))
		}
		nums[i] = n
	}
	switch {
	case s != rest && len(nums) == 1: // D-HH
		h = nums[0]
	case s != rest && len(nums) == 2: // D-HH:MM
		h, m = nums[0], nums[1]
	case len(nums) == 2: // M:SS
		m, sec = nums[0], nums[1]
	case len(nums) == 3: // H:MM:SS, D-HH:MM:SS
		h, m, sec = nums[0], nums[1], nums[2]
	default:
		return 0, fmt.Errorf("time %q is not M:SS, H:MM:SS or D-HH:MM:SS", clip(s))
	}
	if s != rest && h > 23 {
		return 0, fmt.Errorf("time %q: hours over 23 after days", clip(s))
	}
	return time.Duration(days)*24*time.Hour + time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(sec)*time.Second, nil
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// Job states: those that mean the job is over (its processes are gone). Everything
// else (PENDING, CONFIGURING, RUNNING, COMPLETING, SUSPENDED, REQUEUED, SIGNALING,
// STAGE_OUT, RESIZING…) is not over yet.
var endedStates = map[string]string{
	"COMPLETED":     "completed (tether serve exited: the app ended or the session stopped itself)",
	"CANCELLED":     "was cancelled",
	"FAILED":        "failed",
	"TIMEOUT":       "reached its time limit",
	"NODE_FAIL":     "ended because its node failed",
	"PREEMPTED":     "was preempted by a higher-priority job",
	"BOOT_FAIL":     "could not start: its node failed to boot",
	"DEADLINE":      "reached its deadline",
	"OUT_OF_MEMORY": "ran out of memory",
	"REVOKED":       "was revoked (moved to another cluster)",
	"SPECIAL_EXIT":  "ended in a special exit state",
}

// JobEnded reports whether a job in this squeue state is over; "" (squeue no longer
// lists it) counts as over.
func JobEnded(state string) bool {
	if state == "" {
		return true
	}
	_, ok := endedStates[state]
	return ok
}

// JobPending reports whether the job waits to start.
func JobPending(state string) bool {
	switch state {
	case "PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "CONFIGURING":
		return true
	}
	return false
}

// EndedHow says in words how a job in an ended state ended ("reached its time limit").
func EndedHow(state string) string {
	if state == "" {
		return "ended (squeue no longer lists it)"
	}
	if s, ok := endedStates[state]; ok {
		return s
	}
	return strings.ToLower(state)
}

// neverStarts are the pending reasons that cannot resolve by waiting: the job as
// submitted never fits. (Resources, Priority, Dependency, QOS*PerUser*, AssocGrp*,
// JobHeld*, ReqNodeNotAvail… do resolve, or need the user or an admin to act on
// something else.)
var neverStarts = map[string]string{
	"PartitionTimeLimit":       "the requested time limit is over the partition's maximum",
	"PartitionConfig":          "the request does not fit the partition's configuration (time, nodes or other limits)",
	"PartitionNodeLimit":       "the number of nodes requested is outside the partition's limits",
	"InvalidAccount":           "the account is not valid for you",
	"InvalidQOS":               "the QOS is not valid for you",
	"AccountNotAllowed":        "the partition does not allow your account",
	"QOSNotAllowed":            "the partition does not allow this QOS",
	"BadConstraints":           "the job's constraints can never be satisfied",
	"DependencyNeverSatisfied": "a dependency of the job will never be satisfied",
}

// NeverStarts reports whether a pending job with this reason can never start as
// submitted, and says why in words. Per-job limits of an account or QOS
// (AssocMax…PerJob…, QOSMax…PerJob…) count too: the job alone is over them.
func NeverStarts(reason string) (why string, ok bool) {
	if why, ok := neverStarts[reason]; ok {
		return why, true
	}
	if (strings.HasPrefix(reason, "AssocMax") || strings.HasPrefix(reason, "QOSMax")) && strings.Contains(reason, "PerJob") {
		return "the job is over a per-job limit of its account or QOS", true
	}
	if strings.HasPrefix(reason, "QOSMin") {
		return "the job is under a minimum its QOS requires", true
	}
	return "", false
}

// SlurmSubmitOptions are the options of the hidden `tether slurm submit`.
type SlurmSubmitOptions struct {
	// Name is the session's name (also passed to serve in Serve).
	Name string
	// Sbatch are the user's sbatch options, one argument each.
	Sbatch []string
	// Serve are the arguments of `tether serve` in the job (flags, then -- COMMAND).
	Serve []string
	// Version is recorded in the queued record.
	Version string
	// SetupStdin reads a setup script (launch --setup) from Stdin first, one frame (see
	// SetupFrame); the job's serve runs it in the login shell on the node.
	SetupStdin bool
	// Reuse answers with a queued or running Slurm session of the same app, submitted
	// with the same options, instead of submitting another job (reuse.go).
	Reuse bool
	// Stdin is watched: if it closes before the job id is reported (the launcher went
	// away), the job is cancelled and nothing is left. nil means os.Stdin.
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// SlurmSubmitted is the line `tether slurm submit` prints once the job is queued.
type SlurmSubmitted struct {
	ID     string `json:"id"`
	JobID  string `json:"job_id"`
	Output string `json:"output"`
	// Reused is set when no job was submitted: the session is one of this many queued
	// or running ones of the same app (the running, else the newest).
	Reused int `json:"reused,omitempty"`
}

// SlurmError is Slurm refusing or failing something; Msg holds Slurm's own words.
type SlurmError struct{ Msg string }

func (e *SlurmError) Error() string { return e.Msg }

// SlurmEvent is one line of `tether slurm watch`: the job's state, the ready record
// once the server is up, and how the job ended.
type SlurmEvent struct {
	// Event is "job" (the job's status changed, or a periodic refresh of its time
	// left), "ready" (Session holds the ready record), "note" (Message says what went
	// wrong asking Slurm) or "ended" (the job is over; the last event).
	Event   string    `json:"event"`
	Job     JobStatus `json:"job"`
	Session *Record   `json:"session,omitempty"`
	Message string    `json:"message,omitempty"`
	// For "ended": the last lines of the job's output file (none when it does not
	// exist), its path, Slurm's exit code (status:signal) when scontrol knows it, and
	// how the session's server recorded its end.
	Output     []string `json:"output,omitempty"`
	OutputPath string   `json:"output_path,omitempty"`
	OutputSeen bool     `json:"output_seen,omitempty"`
	ExitCode   string   `json:"exit_code,omitempty"`
	Phase      string   `json:"phase,omitempty"`
	Exit       string   `json:"exit,omitempty"`
}

// SlurmWatchOptions are the options of the hidden `tether slurm watch ID`.
type SlurmWatchOptions struct {
	Target string
	// Stdin is watched: the watch ends when it closes (the launcher went away). nil
	// means os.Stdin.
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// Validate checks an event read from a remote that may be hostile: a known kind,
// Slurm-shaped job fields, short printable texts, and for "ready" a valid record of
// this very job.
func (ev *SlurmEvent) Validate() error {
	switch ev.Event {
	case "job", "ready", "note", "ended":
	default:
		return fmt.Errorf("remote: unknown Slurm event %q", clip(ev.Event))
	}
	if ev.Job != (JobStatus{}) {
		if err := ev.Job.validate(); err != nil {
			return fmt.Errorf("remote: Slurm event: job %v", err)
		}
	}
	if ev.Event == "ready" {
		if ev.Session == nil {
			return errors.New("remote: Slurm ready event without a record")
		}
		if err := ev.Session.Validate(); err != nil {
			return err
		}
		if ev.Session.JobID != ev.Job.JobID || ev.Session.State != "" {
			return errors.New("remote: Slurm ready event: the record is not this job's")
		}
	} else if ev.Session != nil {
		return errors.New("remote: Slurm event with a record that is not a ready event")
	}
	if len(ev.Output) > 50 {
		return errors.New("remote: Slurm event: too many output lines")
	}
	for _, t := range append([]string{ev.Message, ev.OutputPath, ev.ExitCode, ev.Phase, ev.Exit}, ev.Output...) {
		if len(t) > 4096 || strings.ContainsRune(t, 0) {
			return errors.New("remote: Slurm event: a text is over 4 KiB or holds a NUL byte")
		}
	}
	return nil
}
