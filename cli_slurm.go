package main

import (
	"context"

	"github.com/tether-dev/tether/remote"
)

// SlurmCmd is the remote side of `tether launch --slurm`, run by the launcher on the
// login node over SSH; hidden, since people use launch, attach, ls, stop and logs.
type SlurmCmd struct {
	Submit SlurmSubmitCmd `cmd:"" help:"Make a Slurm session and submit its batch job; print {id, job_id, output}."`
	Watch  SlurmWatchCmd  `cmd:"" help:"Print a Slurm session's job state, then its ready record, as JSON lines until the job ends."`
}

// SlurmSubmitCmd is `tether slurm submit [--name N] [--sbatch=ARG]... [--serve=ARG]...`.
// Every sbatch option and every argument of the job's `tether serve` is its own flag
// value (use the --flag=value form): nothing goes through a shell.
type SlurmSubmitCmd struct {
	Name   string   `placeholder:"N" help:"The session's name."`
	Sbatch []string `name:"sbatch" sep:"none" placeholder:"ARG" help:"One sbatch argument (repeatable, in order)."`
	Serve  []string `name:"serve" sep:"none" placeholder:"ARG" help:"One argument of the job's tether serve (repeatable, in order)."`
	// SetupStdin: the launcher sends launch --setup's script on stdin, never in argv.
	SetupStdin bool `name:"setup-stdin" help:"Read a setup script from stdin (one frame) for the job's serve to run in the login shell on the node."`
	Reuse      bool `name:"reuse" help:"Print a queued or running session of the same app and options, if there is one, instead of submitting another job."`
}

// Run submits.
func (c *SlurmSubmitCmd) Run(ctx context.Context, env *Env) error {
	return remote.SlurmSubmit(ctx, remote.SlurmSubmitOptions{Name: c.Name, Sbatch: c.Sbatch, Serve: c.Serve, SetupStdin: c.SetupStdin, Reuse: c.Reuse,
		Version: env.Version, Stdout: env.Stdout, Stderr: env.Stderr})
}

// SlurmWatchCmd is `tether slurm watch ID`.
type SlurmWatchCmd struct {
	ID string `arg:"" name:"id" help:"The Slurm session's id."`
}

// Run watches.
func (c *SlurmWatchCmd) Run(ctx context.Context, env *Env) error {
	return remote.SlurmWatch(ctx, remote.SlurmWatchOptions{Target: c.ID, Stdout: env.Stdout, Stderr: env.Stderr})
}
