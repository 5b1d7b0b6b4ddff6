package main

import (
	"context"

	"github.com/tether-dev/tether/remote"
)

// BatchCmd is the remote side of `tether launch --slurm|--sge|--pbs|--lsf|--batch`, run
// by the launcher on the login node over SSH; hidden, since people use launch, attach,
// ls, stop and logs.
type BatchCmd struct {
	Submit BatchSubmitCmd `cmd:"" help:"Make a batch session and submit its job; print {id, job_id, output}, or a failure line {error, hint, …}."`
	Watch  BatchWatchCmd  `cmd:"" help:"Print a batch session's job state, then its ready record, as JSON lines until the job ends (a failure line if it cannot)."`
	Check  BatchCheckCmd  `cmd:"" help:"Judge a submit command's options as tether does (for a site's wrapper, see batch/site); exit 2 with the reason when refused."`
}

// BatchCheckCmd is `tether batch check --scheduler S [--option=ARG]...`: a site's
// wrapper around a scheduler tether knows runs it ($TETHER_BIN) to refuse the options
// tether refuses, read the way that scheduler reads them.
type BatchCheckCmd struct {
	Scheduler string   `placeholder:"S" required:"" help:"The scheduler whose submit command reads the options: slurm, sge, pbs or lsf."`
	Option    []string `name:"option" sep:"none" placeholder:"ARG" help:"One argument of the submit command (repeatable, in order)."`
}

// Run checks.
func (c *BatchCheckCmd) Run(env *Env) error {
	return remote.BatchCheck(c.Scheduler, c.Option)
}

// BatchSubmitCmd is `tether batch submit [--scheduler S] [--name N] [--option=ARG]...
// [--serve=ARG]...`. Every option of the scheduler's submit command and every argument
// of the job's `tether serve` is its own flag value (use the --flag=value form):
// nothing goes through a shell.
type BatchSubmitCmd struct {
	Scheduler string   `placeholder:"S" help:"The scheduler: slurm (the default), sge, pbs, lsf, or a site wrapper's name."`
	Name      string   `placeholder:"N" help:"The session's name."`
	Option    []string `name:"option" sep:"none" placeholder:"ARG" help:"One argument of the submit command (repeatable, in order)."`
	Serve     []string `name:"serve" sep:"none" placeholder:"ARG" help:"One argument of the job's tether serve (repeatable, in order)."`
	ViaNode   bool     `name:"via-node-ssh" help:"Record that the launcher reaches the session by SSH to its node."`
	// SetupStdin: the launcher sends launch --setup's script on stdin, never in argv.
	SetupStdin bool `name:"setup-stdin" help:"Read a setup script from stdin (one frame) for the job's serve to run in the login shell on the node."`
	Reuse      bool `name:"reuse" help:"Print a queued or running session of the same app and options, if there is one, instead of submitting another job."`
}

// Run submits.
func (c *BatchSubmitCmd) Run(ctx context.Context, env *Env) error {
	err := remote.BatchSubmit(ctx, remote.BatchSubmitOptions{Scheduler: c.Scheduler, Name: c.Name, Options: c.Option, Serve: c.Serve, ViaNodeSSH: c.ViaNode, SetupStdin: c.SetupStdin, Reuse: c.Reuse,
		Version: env.Version, Stdout: env.Stdout, Stderr: env.Stderr})
	return reported(err, env, true, false)
}

// BatchWatchCmd is `tether batch watch ID`.
type BatchWatchCmd struct {
	ID string `arg:"" name:"id" help:"The batch session's id."`
}

// Run watches.
func (c *BatchWatchCmd) Run(ctx context.Context, env *Env) error {
	err := remote.BatchWatch(ctx, remote.BatchWatchOptions{Target: c.ID, Stdout: env.Stdout, Stderr: env.Stderr})
	return reported(err, env, true, false)
}
