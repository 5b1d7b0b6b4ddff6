package batch

import (
	"context"
	"fmt"
	"strings"

	"github.com/tether-dev/tether/internal/shquote"
	"github.com/tether-dev/tether/internal/termsafe"
)

// Slurm is Slurm: sbatch, squeue, scancel and scontrol, checked against Slurm 22.05
// (the e2e tests drive a real cluster).
type Slurm struct{}

func (Slurm) Name() string                     { return "slurm" }
func (Slurm) Title() string                    { return "Slurm" }
func (Slurm) Flag() string                     { return "--slurm" }
func (Slurm) CheckOptions(args []string) error { return CheckSbatchArgs(args) }

// Submit runs sbatch with the user's options, then tether's (tetherSbatchArgs: later
// wins), then the script.
func (Slurm) Submit(ctx context.Context, run Runner, s Submission) (string, error) {
	env, err := sbatchEnv(s.Env)
	if err != nil {
		return "", &UsageError{Msg: err.Error()}
	}
	args := append(append(append([]string{}, s.Options...), tetherSbatchArgs(s.Name, s.Output)...), s.Script)
	out, err := run(ctx, env, "sbatch", args...)
	if err != nil {
		return "", err
	}
	line := firstLine(out)
	id, _, _ := strings.Cut(line, ";") // "ID;cluster" on multi-cluster setups
	if !allDigits(id) || len(id) > 20 {
		return "", fmt.Errorf("sbatch printed %q, not a job id", termsafe.Clip(line, 64))
	}
	return id, nil
}

// squeueFormat is what tether asks squeue for: id, name, state, nodes, time left, time
// limit, (expected) start, and the reason last, since its long texts could hold
// anything.
const squeueFormat = "%i|%j|%T|%N|%L|%l|%S|%r"

// Status asks squeue about jobs by id (finished ones included while Slurm still lists
// them).
func (Slurm) Status(ctx context.Context, run Runner, ids []string) (map[string]Job, error) {
	if len(ids) == 0 {
		return map[string]Job{}, nil
	}
	out, err := run(ctx, nil, "squeue", "-h", "-t", "all", "-j", strings.Join(ids, ","), "-o", squeueFormat)
	if err != nil {
		// One unknown id makes squeue fail ("Invalid job id specified"): it ended long
		// ago. Several ids with some unknown are listed without complaint.
		if ce, ok := err.(*CommandError); ok && ce.Says("Invalid job id") {
			return map[string]Job{}, nil
		}
		return nil, err
	}
	return parseSqueue(out)
}

// parseSqueue parses squeue -h -o squeueFormat output into jobs by id. Lines that do
// not parse are skipped; an output of nothing but such lines is an error.
func parseSqueue(out string) (map[string]Job, error) {
	jobs := map[string]Job{}
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

func parseSqueueLine(line string) (Job, error) {
	f := strings.SplitN(line, "|", 8)
	if len(f) != 8 {
		return Job{}, fmt.Errorf("squeue line %q has %d fields; want 8", termsafe.Clip(line, 64), len(f))
	}
	j := Job{JobID: f[0], Name: f[1], State: f[2], Node: f[3], TimeLeft: f[4], TimeLimit: f[5],
		Start: localTime(f[6], "2006-01-02T15:04:05"), Reason: strings.TrimSpace(f[7])}
	if !allDigits(j.JobID) || len(j.JobID) > 20 {
		return Job{}, fmt.Errorf("squeue line %q: job id %q", termsafe.Clip(line, 64), termsafe.Clip(j.JobID, 64))
	}
	if !statePattern.MatchString(j.State) {
		return Job{}, fmt.Errorf("squeue line %q: state %q", termsafe.Clip(line, 64), termsafe.Clip(j.State, 64))
	}
	if j.Node == "(null)" {
		j.Node = ""
	}
	return j, nil
}

// Cancel cancels the job by id and name, so an id reused by another job is never hit.
// Slurm's answer for a job already gone is not an error.
func (Slurm) Cancel(ctx context.Context, run Runner, id, name string) error {
	_, err := run(ctx, nil, "scancel", "--name="+name, id)
	if ce, ok := err.(*CommandError); ok && ce.Says("Invalid job id") {
		return nil
	}
	return err
}

// InJob reads SLURM_JOB_ID and SLURMD_NODENAME.
func (Slurm) InJob(getenv func(string) string) (string, string) {
	id := getenv("SLURM_JOB_ID")
	if !allDigits(id) || len(id) > 20 {
		id = ""
	}
	return id, getenv("SLURMD_NODENAME")
}

// NodeAddrs is Slurm's NodeAddr for the node: what the controller uses to reach it.
func (Slurm) NodeAddrs(ctx context.Context, run Runner, node string) []string {
	out, err := run(ctx, nil, "scontrol", "-o", "show", "node", node)
	if err != nil {
		return nil
	}
	var addrs []string
	for _, f := range strings.Fields(out) {
		if v, ok := strings.CutPrefix(f, "NodeAddr="); ok && v != "" {
			addrs = append(addrs, v)
		}
	}
	return addrs
}

// Finished is scontrol's ExitCode (status:signal) while Slurm still knows the job.
func (Slurm) Finished(ctx context.Context, run Runner, id string) string {
	out, err := run(ctx, nil, "scontrol", "-o", "show", "job", id)
	if err != nil {
		return ""
	}
	for _, f := range strings.Fields(out) {
		if v, ok := strings.CutPrefix(f, "ExitCode="); ok && len(v) < 16 {
			return v
		}
	}
	return ""
}

// slurmNever is the table of the pending reasons that cannot resolve by waiting (the
// job as submitted never fits), with their next steps. Per-job limits of an account
// or QOS (AssocMax…PerJob…, QOSMax…PerJob…) count too: the job alone is over them.
// (Resources, Priority, Dependency, QOS*PerUser*, AssocGrp*, JobHeld*, ReqNodeNotAvail…
// do resolve, or need the user or an admin to act on something else.)
var slurmNever = []neverRule{
	{is("PartitionTimeLimit"), "the requested time limit is over the partition's maximum", slurmTimeHint},
	{is("PartitionConfig"), "the request does not fit the partition's configuration (time, nodes or other limits)", func(_, host string) string {
		return "ask for less time with -t, or fewer nodes or CPUs, within the partition's limits; `ssh " + shquote.Quote(host) + " sinfo -o '%P %l %D %c'` shows them"
	}},
	{is("PartitionNodeLimit"), "the number of nodes requested is outside the partition's limits", func(_, host string) string {
		return "change -p or the resources asked for; `ssh " + shquote.Quote(host) + " sinfo -s` lists the partitions"
	}},
	{is("InvalidAccount"), "the account is not valid for you", slurmAccountHint},
	{is("InvalidQOS"), "the QOS is not valid for you", slurmAccountHint},
	{is("AccountNotAllowed"), "the partition does not allow your account", slurmAccountHint},
	{is("QOSNotAllowed"), "the partition does not allow this QOS", slurmAccountHint},
	{is("BadConstraints"), "the job's constraints can never be satisfied", func(string, string) string { return "change the --slurm options (they are sbatch's)" }},
	{is("DependencyNeverSatisfied"), "a dependency of the job will never be satisfied", func(string, string) string { return "check --dependency" }},
	{func(r string) bool {
		return (strings.HasPrefix(r, "AssocMax") || strings.HasPrefix(r, "QOSMax")) && strings.Contains(r, "PerJob")
	}, "the job is over a per-job limit of its account or QOS", func(reason, host string) string {
		if strings.Contains(reason, "Wall") || strings.Contains(reason, "Time") {
			return slurmTimeHint(reason, host)
		}
		return slurmAccountHint(reason, host)
	}},
	{func(r string) bool { return strings.HasPrefix(r, "QOSMin") }, "the job is under a minimum its QOS requires", slurmAccountHint},
}

func slurmTimeHint(_, host string) string {
	return "ask for less time with -t; `ssh " + shquote.Quote(host) + " sinfo -o '%P %l'` shows each partition's maximum"
}

func slurmAccountHint(_, host string) string {
	return "check -A/--account and --qos; `ssh " + shquote.Quote(host) + " sacctmgr show assoc user=$USER format=account,partition,qos` lists yours"
}

// NeverStarts reports whether a pending job with this reason can never start as
// submitted (slurmNever).
func (Slurm) NeverStarts(j Job, host string) (Never, bool) {
	if !IsPending(j.State) {
		return Never{}, false
	}
	return lookup(slurmNever, j.Reason, host)
}

// SubmitHint is the next step after sbatch refused a job, by what Slurm said.
func (Slurm) SubmitHint(said, host string) string {
	low := strings.ToLower(said)
	h := shquote.Quote(host)
	switch {
	case strings.Contains(low, "account"), strings.Contains(low, "qos"), strings.Contains(low, "association"):
		return "check -A/--account and --qos; `ssh " + h + " sacctmgr show assoc user=$USER format=account,partition,qos` lists yours"
	case strings.Contains(low, "partition"):
		return "pick a partition with -p; `ssh " + h + " sinfo -s` lists them"
	case strings.Contains(low, "invalid --time"):
		return "write -t as MINUTES, H:MM:SS or D-HH:MM:SS"
	case strings.Contains(low, "time limit"):
		return "ask for less time with -t; `ssh " + h + " sinfo -o '%P %l'` shows each partition's maximum"
	case strings.Contains(low, "node configuration"), strings.Contains(low, "processors"), strings.Contains(low, "gres"), strings.Contains(low, "memory"):
		return "ask for what a node has; `ssh " + h + " sinfo -o '%P %c %m %G'` shows CPUs, memory and GPUs per partition"
	}
	return "check the --slurm options (they are sbatch's)"
}

// NoSubmitHint: sbatch is not on the login node's PATH.
func (Slurm) NoSubmitHint(string) string { return "launch on a Slurm login node, or drop --slurm" }
