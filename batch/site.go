package batch

import (
	"context"
	"fmt"
	"strings"

	"github.com/tether-dev/tether/internal/termsafe"
)

// Site is a site's own scheduler wrapper: a program named tether-batch-NAME on the
// login node's PATH that speaks the small protocol below, for a batch system tether
// does not know or a site that submits through its own front end (an accounting
// check, a default project, a queue picked by policy). `--batch "NAME OPTIONS"` picks
// it. batch/site/tether-batch-template.sh is a working wrapper around Slurm to adapt;
// README's "On a cluster" section says how.
//
// The protocol (every argument its own word; nothing goes through a shell):
//
//	tether-batch-NAME submit NAME OUTPUT SCRIPT [OPTION...]
//	    Submit SCRIPT (a POSIX sh script) as one batch job named NAME, its standard
//	    output and error into the file OUTPUT, its input /dev/null; OPTIONs are the
//	    user's. Print the job's id on the first line of stdout. On refusal exit
//	    non-zero with the reason on stderr. Refuse options that would change the
//	    name, the output, make an array, hold the job, or wait for it.
//	tether-batch-NAME status ID...
//	    Print one line per job the scheduler still knows:
//	    ID|NAME|STATE|NODE|TIME_LEFT|TIME_LIMIT|START|REASON
//	    STATE in Slurm's words (PENDING, RUNNING, COMPLETED, CANCELLED, FAILED,
//	    TIMEOUT…), times as squeue prints them (M:SS, H:MM:SS, D-HH:MM:SS, UNLIMITED,
//	    or empty), START as YYYY-MM-DDTHH:MM:SS (the expected start while pending).
//	    Unknown ids are left out; exit 0.
//	tether-batch-NAME cancel ID NAME
//	    Cancel job ID if it is still named NAME; a job already gone is not an error.
//
// Inside the job, the wrapper's scheduler may set TETHER_BATCH_JOB_ID to the job's
// id (tether then checks the session is this job's); the node is the host's name.
type Site struct {
	// SiteName is the wrapper's name (tether-batch-SiteName).
	SiteName string
}

func (s Site) Name() string  { return s.SiteName }
func (s Site) Title() string { return s.SiteName }
func (s Site) Flag() string  { return "--batch " + s.SiteName }
func (s Site) prog() string  { return "tether-batch-" + s.SiteName }

// CheckOptions can only check the words' shape: the wrapper knows its grammar, and
// refuses what breaks tether when it submits.
func (s Site) CheckOptions(args []string) error {
	for _, a := range args {
		if strings.ContainsRune(a, 0) || len(a) > 4096 {
			return fmt.Errorf("option holds a NUL byte or is over 4 KiB")
		}
	}
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return fmt.Errorf("word %q is not an option: give options only (tether writes the job script itself)", termsafe.Clip(args[0], 64))
	}
	return nil
}

func (s Site) Submit(ctx context.Context, run Runner, sub Submission) (string, error) {
	args := append([]string{"submit", sub.Name, sub.Output, sub.Script}, sub.Options...)
	out, err := run(ctx, sub.Env, s.prog(), args...)
	if err != nil {
		return "", err
	}
	id := firstLine(out)
	if !JobIDPattern.MatchString(id) {
		return "", fmt.Errorf("%s printed %q, not a job id", s.prog(), termsafe.Clip(id, 64))
	}
	return id, nil
}

func (s Site) Status(ctx context.Context, run Runner, ids []string) (map[string]Job, error) {
	if len(ids) == 0 {
		return map[string]Job{}, nil
	}
	out, err := run(ctx, nil, s.prog(), append([]string{"status"}, ids...)...)
	if err != nil {
		return nil, err
	}
	jobs := map[string]Job{}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		f := strings.SplitN(line, "|", 8)
		if len(f) != 8 {
			continue
		}
		j := Job{JobID: f[0], Name: f[1], State: f[2], Node: f[3], TimeLeft: f[4], TimeLimit: f[5],
			Start: localTime(f[6], "2006-01-02T15:04:05"), Reason: termsafe.OneLine(f[7])}
		if j.Validate() != nil || j.State == "" {
			continue
		}
		jobs[j.JobID] = j
	}
	return jobs, nil
}

func (s Site) Cancel(ctx context.Context, run Runner, id, name string) error {
	_, err := run(ctx, nil, s.prog(), "cancel", id, name)
	return err
}

func (Site) InJob(getenv func(string) string) (string, string) {
	id := getenv("TETHER_BATCH_JOB_ID")
	if !JobIDPattern.MatchString(id) {
		id = ""
	}
	return id, ""
}

func (Site) NodeAddrs(context.Context, Runner, string) []string { return nil }
func (Site) Finished(context.Context, Runner, string) string    { return "" }

// NeverStarts: Slurm's reasons (a wrapper around Slurm passes them on), with the
// site's own next step.
func (s Site) NeverStarts(j Job, host string) (Never, bool) {
	if !IsPending(j.State) {
		return Never{}, false
	}
	n, ok := lookup(slurmNever, j.Reason, host)
	n.Hint = "change the options of " + s.Flag()
	return n, ok
}

func (s Site) SubmitHint(said, host string) string {
	return "check the options of " + s.Flag() + " (the site's wrapper " + s.prog() + " reads them)"
}

func (s Site) NoSubmitHint(host string) string {
	return "the site's wrapper " + s.prog() + " is not installed on " + host + "; ask the site, or pick --slurm, --sge, --pbs or --lsf"
}
