package batch

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tether-dev/tether/internal/termsafe"
)

// Scheduler is one batch system as tether drives it: the options of its submit command
// that tether owns, the commands that submit, query and cancel a job, and how their
// answers read. Implementations run nothing themselves: every command goes through the
// Runner they are given, on the login node.
type Scheduler interface {
	// Name is the scheduler's name in records, flags and profiles: slurm, sge, pbs,
	// lsf, or a site's own (see Site).
	Name() string
	// Title names it for people: "Slurm", "Grid Engine".
	Title() string
	// Flag is the launch flag that picks it, for hints: --slurm, --sge, --batch NAME.
	Flag() string
	// CheckOptions judges the user's submit options the way the submit command will
	// read them and refuses those tether owns. Errors read after the flag ("--sge …").
	CheckOptions(args []string) error
	// Submit submits s and returns the job's id. A refusal is a *CommandError.
	Submit(ctx context.Context, run Runner, s Submission) (string, error)
	// Status asks about the jobs ids, by id; jobs the scheduler no longer lists are
	// absent. Callers check that a job's Name is the one they gave it.
	Status(ctx context.Context, run Runner, ids []string) (map[string]Job, error)
	// Cancel cancels job id, named name; a job already gone is not an error.
	Cancel(ctx context.Context, run Runner, id, name string) error
	// InJob reads, inside a job, its id and the node it runs on from its environment
	// (empty when this is not such a job).
	InJob(getenv func(string) string) (jobID, node string)
	// NodeAddrs are addresses the scheduler knows for node besides its name (Slurm's
	// NodeAddr); none is fine.
	NodeAddrs(ctx context.Context, run Runner, node string) []string
	// Finished says how an ended job finished when the scheduler still knows: its exit
	// code as "status:signal" (Slurm's ExitCode), else "".
	Finished(ctx context.Context, run Runner, id string) string
	// NeverStarts reports that a pending job can never start as submitted: why in
	// words, and the next step, from one table of reasons with their hints; host is
	// the login node as the user typed it.
	NeverStarts(j Job, host string) (Never, bool)
	// SubmitHint is the next step after the scheduler refused a job, saying said (its
	// own words). NoSubmitHint is the next step when the submit command is not on the
	// login node's PATH.
	SubmitHint(said, host string) string
	NoSubmitHint(host string) string
}

// Submission is one job to submit.
type Submission struct {
	// Options are the user's options (checked by CheckOptions), in order.
	Options []string
	// Name is the job's name (tether-<session>): tether finds the job by it.
	Name string
	// Output is the file for the job's standard output and error.
	Output string
	// Script is the job script (a POSIX sh script, 0600 in a private directory).
	Script string
	// Env is the environment the submit command runs in (the login environment).
	Env []string
}

// Runner runs a scheduler command (name is the program, found on PATH) on the login
// node and returns its standard output. env nil means the Runner's own environment. A
// failure is a *CommandError with the program's own words; a context that ended is
// returned as the context's error.
type Runner func(ctx context.Context, env []string, name string, args ...string) (string, error)

// CommandError is a scheduler command that failed.
type CommandError struct {
	// Name is the program (qsub, sbatch…); Stderr what it printed there.
	Name   string
	Stderr string
	// Err is how it failed (an exit status, not found on PATH…).
	Err error
}

func (e *CommandError) Error() string { return e.Name + ": " + e.Words() }

func (e *CommandError) Unwrap() error { return e.Err }

// Words is the command's error output as one line: its lines joined, each without the
// program's own prefix ("sbatch: error: ", "qsub: ") and qsub's "Exiting.", at most
// the last six.
func (e *CommandError) Words() string {
	prefixes := []string{e.Name + ": error: ", e.Name + ": ERROR: ", e.Name + ": "}
	var parts []string
	for _, l := range strings.Split(e.Stderr, "\n") {
		l = strings.TrimSpace(termsafe.OneLine(l))
		for _, p := range prefixes {
			if rest, ok := strings.CutPrefix(l, p); ok {
				l = strings.TrimSpace(rest)
				break
			}
		}
		if l != "" && l != "Exiting." {
			parts = append(parts, l)
		}
	}
	if len(parts) > 6 {
		parts = parts[len(parts)-6:]
	}
	if len(parts) == 0 {
		if e.Err != nil {
			return e.Err.Error()
		}
		return "failed"
	}
	return strings.Join(parts, "; ")
}

// UsageError is a submission refused before the scheduler saw it: the user's to fix
// (an environment variable, an option).
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// Says reports whether the command's error output holds s (case-insensitive).
func (e *CommandError) Says(s string) bool {
	return strings.Contains(strings.ToLower(e.Stderr), strings.ToLower(s))
}

// Job is one job as tether sees it, whatever the scheduler: Slurm's vocabulary (squeue's
// view), other schedulers' words mapped onto it. Its JSON is part of `ls --json`.
type Job struct {
	// JobID is the job's id; Name its name (tether-<session> for tether's jobs).
	JobID string `json:"job_id"`
	Name  string `json:"name,omitempty"`
	// State is in Slurm's words (PENDING, RUNNING, SUSPENDED, COMPLETING, COMPLETED,
	// CANCELLED, FAILED, TIMEOUT…); empty when the scheduler no longer lists the job.
	State string `json:"state"`
	// Native is the scheduler's own word for the state when it has others (Grid
	// Engine's qw, r, Eqw; PBS's Q, R; LSF's PEND, RUN).
	Native string `json:"native_state,omitempty"`
	// Reason says why a job is pending (Slurm's Resources, Priority…; other schedulers'
	// own sentences) or how it ended; "None" or empty otherwise.
	Reason string `json:"reason,omitempty"`
	// Node is the node the job runs on (a node list for Slurm); empty while pending.
	Node string `json:"node,omitempty"`
	// TimeLeft is the time left in squeue's %L format (M:SS, H:MM:SS, D-HH:MM:SS or
	// UNLIMITED); for a pending job, its whole time limit. Empty when unknown.
	TimeLeft string `json:"time_left,omitempty"`
	// TimeLimit is the job's whole time limit, in the same format.
	TimeLimit string `json:"time_limit,omitempty"`
	// Start is when the job started, or for a pending job when the scheduler expects it
	// to start, in RFC 3339; empty when unknown.
	Start string `json:"start,omitempty"`
}

var (
	// JobIDPattern is a job id of any scheduler: Slurm's, Grid Engine's and LSF's are
	// numbers, PBS's number.server; never an array's element (42_1, 42.1-3:1, 42[1]).
	JobIDPattern    = regexp.MustCompile(`^[0-9]{1,20}(\.[A-Za-z0-9][A-Za-z0-9.-]{0,126})?$`)
	statePattern    = regexp.MustCompile(`^[A-Z_]{1,32}$`)
	nativePattern   = regexp.MustCompile(`^[A-Za-z_]{1,16}$`)
	nodeListPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._,\[\]-]{0,255}$`)
)

// Validate checks a job read from a remote that may be hostile: short printable
// fields of the shapes above.
func (j *Job) Validate() error {
	if !JobIDPattern.MatchString(j.JobID) {
		return fmt.Errorf("job id %q", termsafe.Clip(j.JobID, 64))
	}
	if j.State != "" && !statePattern.MatchString(j.State) {
		return fmt.Errorf("state %q", termsafe.Clip(j.State, 64))
	}
	if j.Native != "" && !nativePattern.MatchString(j.Native) {
		return fmt.Errorf("native state %q", termsafe.Clip(j.Native, 64))
	}
	if j.Node != "" && !nodeListPattern.MatchString(j.Node) {
		return fmt.Errorf("node %q", termsafe.Clip(j.Node, 64))
	}
	if j.Start != "" {
		if _, err := time.Parse(time.RFC3339, j.Start); err != nil {
			return fmt.Errorf("start %q", termsafe.Clip(j.Start, 64))
		}
	}
	for _, f := range []string{j.Name, j.Reason, j.TimeLeft, j.TimeLimit} {
		if len(f) > 256 || termsafe.HasControl(f) {
			return fmt.Errorf("field %q", termsafe.Clip(f, 64))
		}
	}
	return nil
}

// StateWords is the job's state for people: Slurm's word, with the scheduler's own in
// parentheses when it differs ("PENDING (qw)").
func (j Job) StateWords() string {
	if j.Native != "" && j.Native != j.State {
		return j.State + " (" + j.Native + ")"
	}
	return j.State
}

// endedStates are the states that mean the job is over (its processes are gone), with
// how it ended in words. Everything else (PENDING, CONFIGURING, RUNNING, COMPLETING,
// SUSPENDED, REQUEUED, SIGNALING, STAGE_OUT, RESIZING…) is not over yet.
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

// Ended reports whether a job in this state is over; "" (no longer listed) counts as
// over.
func Ended(state string) bool {
	if state == "" {
		return true
	}
	_, ok := endedStates[state]
	return ok
}

// IsPending reports whether a job in this state waits to start.
func IsPending(state string) bool {
	switch state {
	case "PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "CONFIGURING":
		return true
	}
	return false
}

// EndedHow says in words how a job in an ended state ended ("reached its time limit").
func EndedHow(state string) string {
	if state == "" {
		return "ended (the scheduler no longer lists it)"
	}
	if s, ok := endedStates[state]; ok {
		return s
	}
	return strings.ToLower(state)
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
			return 0, fmt.Errorf("time %q: bad days", termsafe.Clip(s, 64))
		}
		days, rest = n, r
	}
	parts := strings.Split(rest, ":")
	var h, m, sec int
	nums := make([]int, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || !allDigits(p) || len(p) > 6 {
			return 0, fmt.Errorf("time %q is not M:SS, H:MM:SS or D-HH:MM:SS", termsafe.Clip(s, 64))
		}
		if i > 0 && (len(p) != 2 || n > 59) {
			return 0, fmt.Errorf("time %q is not M:SS, H:MM:SS or D-HH:MM:SS", termsafe.Clip(s, 64))
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
		return 0, fmt.Errorf("time %q is not M:SS, H:MM:SS or D-HH:MM:SS", termsafe.Clip(s, 64))
	}
	if s != rest && h > 23 {
		return 0, fmt.Errorf("time %q: hours over 23 after days", termsafe.Clip(s, 64))
	}
	return time.Duration(days)*24*time.Hour + time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(sec)*time.Second, nil
}

// FormatTimeLeft writes d the way squeue's %L does: M:SS under an hour, H:MM:SS under a
// day, D-HH:MM:SS beyond; a negative d is 0:00.
func FormatTimeLeft(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d / time.Second)
	days, h, m, sec := s/86400, s/3600%24, s/60%60, s%60
	switch {
	case days > 0:
		return fmt.Sprintf("%d-%02d:%02d:%02d", days, h, m, sec)
	case h > 0:
		return fmt.Sprintf("%d:%02d:%02d", h, m, sec)
	}
	return fmt.Sprintf("%d:%02d", m, sec)
}

// parseClock parses a duration written H:MM:SS or [[H:]M:]S with any number of digits
// in the first field (PBS's walltime, Grid Engine's h_rt), or plain seconds.
func parseClock(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	parts := strings.Split(s, ":")
	if len(parts) > 3 || s == "" {
		return 0, fmt.Errorf("time %q is not [[H:]M:]S", termsafe.Clip(s, 64))
	}
	var total int64
	for _, p := range parts {
		if !allDigits(p) || len(p) > 9 {
			return 0, fmt.Errorf("time %q is not [[H:]M:]S", termsafe.Clip(s, 64))
		}
		n, _ := strconv.ParseInt(p, 10, 64)
		total = total*60 + n
	}
	return time.Duration(total) * time.Second, nil
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// Built-in schedulers, by name.
var builtin = map[string]Scheduler{
	"slurm": Slurm{},
	"sge":   SGE{},
	"pbs":   PBS{},
	"lsf":   LSF{},
}

// Names are the built-in schedulers' names, sorted.
func Names() []string {
	var names []string
	for n := range builtin {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// sitePattern is a site scheduler's name: it becomes part of a program's name.
var sitePattern = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// Lookup finds a scheduler by name: a built-in one, else a site's (see Site). "" is
// Slurm (records made before tether knew other schedulers).
func Lookup(name string) (Scheduler, error) {
	if name == "" {
		return Slurm{}, nil
	}
	if s, ok := builtin[name]; ok {
		return s, nil
	}
	if !sitePattern.MatchString(name) {
		return nil, fmt.Errorf("%q is not a scheduler name: use slurm, sge, pbs, lsf, or a site's wrapper name (lowercase letters, digits, - and _)", termsafe.Clip(name, 64))
	}
	return Site{SiteName: name}, nil
}

// firstLine is s's first non-empty line, trimmed.
func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}

// Never is a pending job that can never start as submitted: Why says so in words, Hint
// is the next step.
type Never struct{ Why, Hint string }

// neverRule is one row of a scheduler's table of reasons a job never starts: the
// reasons it matches, why in words, and the next step (the reason given, the login
// node as the user typed it).
type neverRule struct {
	match func(reason string) bool
	why   string
	hint  func(reason, host string) string
}

// is matches these reasons exactly.
func is(reasons ...string) func(string) bool {
	return func(r string) bool {
		for _, x := range reasons {
			if r == x {
				return true
			}
		}
		return false
	}
}

// lookup finds reason's row.
func lookup(table []neverRule, reason, host string) (Never, bool) {
	for _, r := range table {
		if r.match(reason) {
			return Never{Why: r.why, Hint: r.hint(reason, host)}, true
		}
	}
	return Never{}, false
}

// localTime parses a scheduler's wall-clock time written without a zone (squeue's %S,
// qstat -xml's start times) in this machine's zone, as RFC 3339; "" when it is not one.
func localTime(s, layout string) string {
	t, err := time.ParseInLocation(layout, strings.TrimSpace(s), time.Local)
	if err != nil {
		return ""
	}
	return t.Format(time.RFC3339)
}

// ValidName reports whether name may name a scheduler (a built-in one or a site's).
func ValidName(name string) bool { return sitePattern.MatchString(name) }
