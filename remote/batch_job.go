package remote

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tether-dev/tether/batch"
	"github.com/tether-dev/tether/internal/termsafe"
)

// What tether reads of a batch scheduler lives in package batch (Slurm, Grid Engine,
// PBS, LSF, a site's wrapper); these are the words remote and the launcher say about
// it. Nothing here runs a command, so the launcher uses it too.

// StatePending and StateEnded are batch sessions' states in ls besides running (and
// dead): the job is queued (or started, its server not ready yet), or the job is over.
const (
	StatePending = "pending"
	StateEnded   = "ended"
)

// JobStatus is one batch job as the scheduler shows it, in Slurm's words.
type JobStatus = batch.Job

// ErrNoTimeLimit is returned by ParseTimeLeft for a job without a time limit.
var ErrNoTimeLimit = batch.ErrNoTimeLimit

// ParseTimeLeft parses a time left as squeue's %L writes it (every scheduler's is
// written so).
func ParseTimeLeft(s string) (time.Duration, error) { return batch.ParseTimeLeft(s) }

// JobEnded reports whether a job in this state is over; "" (no longer listed) counts
// as over.
func JobEnded(state string) bool { return batch.Ended(state) }

// JobPending reports whether the job waits to start.
func JobPending(state string) bool { return batch.IsPending(state) }

// EndedHow says in words how a job in an ended state ended.
func EndedHow(state string) string { return batch.EndedHow(state) }

// BatchSubmitOptions are the options of the hidden `tether batch submit`.
type BatchSubmitOptions struct {
	// Name is the session's name (also passed to serve in Serve).
	Name string
	// Scheduler is the batch system's name (batch.Lookup): slurm, sge, pbs, lsf or a
	// site's wrapper.
	Scheduler string
	// Options are the user's options of the scheduler's submit command, one argument
	// each.
	Options []string
	// ViaNodeSSH records that the launcher reaches the session by SSH to its node.
	ViaNodeSSH bool
	// Serve are the arguments of `tether serve` in the job (flags, then -- COMMAND).
	Serve []string
	// Version is recorded in the queued record.
	Version string
	// SetupStdin reads a setup script (launch --setup) from Stdin first, one frame (see
	// SetupFrame); the job's serve runs it in the login shell on the node.
	SetupStdin bool
	// Stdin is watched: if it closes before the job id is reported (the launcher went
	// away), the job is cancelled and nothing is left. nil means os.Stdin.
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// BatchSubmitted is the line `tether batch submit` prints once the job is queued.
type BatchSubmitted struct {
	ID     string `json:"id"`
	JobID  string `json:"job_id"`
	Output string `json:"output"`
}

// BatchError is the scheduler refusing or failing something; Msg holds its own words.
type BatchError struct{ Msg string }

func (e *BatchError) Error() string { return e.Msg }

// BatchEvent is one line of `tether batch watch`: the job's state, the ready record
// once the server is up, and how the job ended.
type BatchEvent struct {
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
	// Removed: the session's directory is gone (tether stop removed it, and its logs).
	Removed  bool   `json:"removed,omitempty"`
	ExitCode string `json:"exit_code,omitempty"`
	Phase    string `json:"phase,omitempty"`
	Exit     string `json:"exit,omitempty"`
}

// BatchWatchOptions are the options of the hidden `tether batch watch ID`.
type BatchWatchOptions struct {
	Target string
	// Stdin is watched: the watch ends when it closes (the launcher went away). nil
	// means os.Stdin.
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// Validate checks an event read from a remote that may be hostile: a known kind,
// job fields of the shapes batch.Job.Validate allows, short printable texts, and for "ready" a valid record of
// this very job.
func (ev *BatchEvent) Validate() error {
	switch ev.Event {
	case "job", "ready", "note", "ended":
	default:
		return fmt.Errorf("remote: unknown batch event %q", termsafe.Clip(ev.Event, 64))
	}
	if ev.Job != (JobStatus{}) {
		if err := ev.Job.Validate(); err != nil {
			return fmt.Errorf("remote: batch event: job %v", err)
		}
	}
	if ev.Event == "ready" {
		if ev.Session == nil {
			return errors.New("remote: batch ready event without a record")
		}
		if err := ev.Session.Validate(); err != nil {
			return err
		}
		if ev.Session.JobID != ev.Job.JobID || ev.Session.State != "" {
			return errors.New("remote: batch ready event: the record is not this job's")
		}
	} else if ev.Session != nil {
		return errors.New("remote: batch event with a record that is not a ready event")
	}
	if len(ev.Output) > 50 {
		return errors.New("remote: batch event: too many output lines")
	}
	for _, t := range append([]string{ev.Message, ev.OutputPath, ev.ExitCode, ev.Phase, ev.Exit}, ev.Output...) {
		if len(t) > 4096 || strings.ContainsRune(t, 0) {
			return errors.New("remote: batch event: a text is over 4 KiB or holds a NUL byte")
		}
	}
	return nil
}

// BatchCheck is `tether batch check`: the options judged as the scheduler's submit
// command reads them; a refusal is a usage error (exit 2) in the flag's words.
func BatchCheck(scheduler string, options []string) error {
	sched, err := batch.Lookup(scheduler)
	if err != nil {
		return usagef("%v", err)
	}
	if err := sched.CheckOptions(options); err != nil {
		return usagef("%s %v", sched.Flag(), err)
	}
	return nil
}
