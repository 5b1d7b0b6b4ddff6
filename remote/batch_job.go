package remote

import (
	"io"
	"time"

	"github.com/tether-dev/tether/batch"
)

// What tether reads of a batch scheduler lives in package batch (Slurm, Grid Engine,
// PBS, LSF, a site's wrapper); these are the words remote and the launcher say about
// it. Nothing here runs a command, so the launcher uses it too.

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
	// Reuse answers with a queued or running batch session of the same app, submitted
	// with the same options, instead of submitting another job (reuse.go).
	Reuse bool
	// SetupStdin reads a setup script (launch --setup) from Stdin first, one frame (see
	// SetupFrame); the job's serve runs it in the login shell on the node.
	SetupStdin bool
	// Stdin is watched: if it closes before the job id is reported (the launcher went
	// away), the job is cancelled and nothing is left. nil means os.Stdin.
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
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
