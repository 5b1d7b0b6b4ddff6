package batch

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tether-dev/tether/internal/shquote"
	"github.com/tether-dev/tether/internal/termsafe"
)

// PBS is PBS Professional and OpenPBS: qsub, `qstat -f -F json`, qdel. Written from the
// PBS Professional 2022.1 Reference Guide (qsub, qstat, qdel) and OpenPBS's qstat JSON
// output; not yet run against a real PBS server (README says so), unlike Slurm and
// Grid Engine. Torque's qstat has no JSON output and is not covered.
type PBS struct {
	// Now is the clock for time left (tests); nil is time.Now.
	Now func() time.Time
}

func (PBS) Name() string  { return "pbs" }
func (PBS) Title() string { return "PBS" }
func (PBS) Flag() string  { return "--pbs" }

// pbsQsubCheck is PBS's qsub, which reads its options with getopt (short options
// only, values attached or in the next word, bundles allowed):
// "a:A:c:C:e:fGhIj:J:k:l:m:M:N:o:p:P:q:r:R:S:u:v:VW:Xz".
var pbsQsubCheck = &getoptCheck{
	prog: "qsub",
	opts: []option{
		{"", reqArg, 'a'}, {"", reqArg, 'A'}, {"", reqArg, 'c'}, {"", reqArg, 'C'}, {"", reqArg, 'e'},
		{"", noArg, 'f'}, {"", noArg, 'G'}, {"", noArg, 'h'}, {"", noArg, 'I'}, {"", reqArg, 'j'},
		{"", reqArg, 'J'}, {"", reqArg, 'k'}, {"", reqArg, 'l'}, {"", reqArg, 'm'}, {"", reqArg, 'M'},
		{"", reqArg, 'N'}, {"", reqArg, 'o'}, {"", reqArg, 'p'}, {"", reqArg, 'P'}, {"", reqArg, 'q'},
		{"", reqArg, 'r'}, {"", reqArg, 'R'}, {"", reqArg, 'S'}, {"", reqArg, 'u'}, {"", reqArg, 'v'},
		{"", noArg, 'V'}, {"", reqArg, 'W'}, {"", noArg, 'X'}, {"", noArg, 'z'},
	},
	owned: map[string]string{
		"N": "tether names the job tether-<session> and finds it by that name",
		"o": "the job's output goes to the session's private directory",
		"e": "the job's output goes to the session's private directory",
		"j": "the job's output goes to the session's private directory",
		"k": "the job's output goes to the session's private directory",
		"R": "the job's output goes to the session's private directory",
		"J": "tether runs one job per session",
		"h": "a held job never starts by itself; tether waits for the job it submits",
		"I": "tether runs a batch job (an interactive one would need a terminal)",
		"X": "tether runs a batch job (an interactive one would need a terminal)",
		"G": "tether runs a batch job (an interactive one would need a terminal)",
		"f": "qsub -f stays in the foreground until the job ends; tether watches the job itself",
		"z": "tether reads the job id qsub prints",
		"S": "tether's job script runs in /bin/sh (tether passes -S /bin/sh)",
		"C": "tether writes the job script, with no directives in it",
	},
}

// CheckOptions judges the --pbs words as qsub's getopt reads them, and refuses the
// -W attributes that make qsub wait for the job or hold it.
func (PBS) CheckOptions(args []string) error {
	if err := pbsQsubCheck.check(args); err != nil {
		return err
	}
	for i, a := range args {
		var v string
		switch {
		case a == "-W" && i+1 < len(args):
			v = args[i+1]
		case strings.HasPrefix(a, "-W") && len(a) > 2:
			v = a[2:]
		default:
			continue
		}
		for _, attr := range strings.Split(v, ",") {
			k, _, _ := strings.Cut(strings.TrimSpace(attr), "=")
			switch strings.ToLower(k) {
			case "block":
				return fmt.Errorf("option -W %s is tether's own: block=true makes qsub wait until the job ends; tether watches the job itself; drop it", termsafe.Clip(v, 64))
			case "depend", "stagein", "stageout", "sandbox", "umask", "group_list", "run_count", "release_nodes_on_stageout", "pwd", "max_run_subjobs", "create_resv_from_job", "tolerate_node_failures":
			default:
				// Unknown attributes go to the server, which refuses them itself.
			}
		}
	}
	return nil
}

// tetherPBSArgs come after the user's options (qsub's later options win).
func tetherPBSArgs(name, output string) []string {
	return []string{"-N", name, "-o", output, "-j", "oe", "-S", "/bin/sh", "-r", "n"}
}

// Submit runs qsub; it prints the job's id (123.server).
func (PBS) Submit(ctx context.Context, run Runner, s Submission) (string, error) {
	if len(s.Name) > 236 {
		return "", &UsageError{Msg: "job name too long for PBS"}
	}
	args := append(append(append([]string{}, s.Options...), tetherPBSArgs(s.Name, s.Output)...), s.Script)
	out, err := run(ctx, s.Env, "qsub", args...)
	if err != nil {
		return "", err
	}
	id := firstLine(out)
	if !JobIDPattern.MatchString(id) || !allDigits(strings.SplitN(strings.SplitN(id, ".", 2)[0], "[", 2)[0]) {
		return "", fmt.Errorf("qsub printed %q, not a job id", termsafe.Clip(id, 64))
	}
	return id, nil
}

// qstatJSON is what tether reads of `qstat -f -F json`. Values PBS prints as numbers
// in one version and strings in another are json.RawMessage.
type qstatJSON struct {
	Jobs map[string]pbsJob `json:"Jobs"`
}

type pbsJob struct {
	Name          json.RawMessage            `json:"Job_Name"` // a number when the name is one
	State         string                     `json:"job_state"`
	ExecHost      string                     `json:"exec_host"`
	Comment       string                     `json:"comment"`
	STime         string                     `json:"stime"`
	ResourceList  map[string]json.RawMessage `json:"Resource_List"`
	ResourcesUsed map[string]json.RawMessage `json:"resources_used"`
	Estimated     map[string]json.RawMessage `json:"estimated"`
	ExitStatus    json.RawMessage            `json:"Exit_status"`
	Substate      json.RawMessage            `json:"substate"`
}

// pbsTime is how qstat prints times: ctime(3) style, in the server's zone.
const pbsTime = "Mon Jan _2 15:04:05 2006"

// rawString reads a JSON value PBS may print as a string or a number.
func rawString(m json.RawMessage) string {
	var s string
	if json.Unmarshal(m, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(m, &n) == nil {
		return n.String()
	}
	return ""
}

// Status asks `qstat -x -f -F json IDS` (-x: finished jobs too, where the server keeps
// job history). An id the server does not know makes qstat complain on stderr and
// exit non-zero, yet print the others.
func (p PBS) Status(ctx context.Context, run Runner, ids []string) (map[string]Job, error) {
	if len(ids) == 0 {
		return map[string]Job{}, nil
	}
	out, err := run(ctx, nil, "qstat", append([]string{"-x", "-f", "-F", "json"}, ids...)...)
	if err != nil {
		ce, ok := err.(*CommandError)
		if !ok || !(ce.Says("Unknown Job Id") || ce.Says("Job has finished")) {
			return nil, err
		}
		if strings.TrimSpace(out) == "" {
			return map[string]Job{}, nil
		}
	}
	return parseQstatJSON(out, p.now())
}

func (p PBS) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func parseQstatJSON(out string, now time.Time) (map[string]Job, error) {
	var q qstatJSON
	if err := json.Unmarshal([]byte(out), &q); err != nil {
		return nil, fmt.Errorf("qstat -F json printed what tether cannot read: %v", err)
	}
	jobs := map[string]Job{}
	for id, pj := range q.Jobs {
		if !JobIDPattern.MatchString(id) || !nativePattern.MatchString(pj.State) {
			continue
		}
		j := Job{JobID: id, Name: rawString(pj.Name), Native: pj.State, State: pbsState(pj.State, rawString(pj.ExitStatus))}
		if IsPending(j.State) {
			j.Reason = termsafe.OneLine(pj.Comment)
			if t, err := time.ParseInLocation(pbsTime, rawString(pj.Estimated["start_time"]), time.Local); err == nil {
				j.Start = t.Format(time.RFC3339)
			}
		} else {
			// exec_host: node1/0*2+node2/1
			node, _, _ := strings.Cut(pj.ExecHost, "/")
			if nodeListPattern.MatchString(node) {
				j.Node = node
			}
			if t, err := time.ParseInLocation(pbsTime, pj.STime, time.Local); err == nil {
				j.Start = t.Format(time.RFC3339)
			}
		}
		if limit, err := parseClock(rawString(pj.ResourceList["walltime"])); err == nil && limit > 0 {
			j.TimeLimit = FormatTimeLeft(limit)
			j.TimeLeft = j.TimeLimit
			if !IsPending(j.State) {
				used, err := parseClock(rawString(pj.ResourcesUsed["walltime"]))
				if start, serr := time.Parse(time.RFC3339, j.Start); serr == nil {
					used = now.Sub(start) // resources_used is sampled; the start time is exact
				} else if err != nil {
					used = 0
				}
				j.TimeLeft = FormatTimeLeft(limit - used)
			}
		}
		if len(j.Reason) > 250 {
			j.Reason = j.Reason[:250] + "…"
		}
		jobs[id] = j
	}
	return jobs, nil
}

// pbsState maps PBS's job_state letters (qstat(1B)): Q queued, W waiting for its
// start time, H held, T in transit, M moved are pending; R running, E exiting, S and U
// suspended; F finished (with its Exit_status: 0 completed, 271 deleted by qdel
// (256+SIGKILL... PBS reports JOB_EXEC_KILL_WALLTIME -29 for the walltime), else failed).
func pbsState(s, exit string) string {
	switch s {
	case "Q", "W", "H", "T", "M":
		return "PENDING"
	case "B", "R":
		return "RUNNING"
	case "E":
		return "COMPLETING"
	case "S", "U":
		return "SUSPENDED"
	case "F", "X":
		switch exit {
		case "0":
			return "COMPLETED"
		case "-29":
			return "TIMEOUT"
		case "271", "265":
			return "CANCELLED"
		}
		return "FAILED"
	}
	return "PENDING"
}

// Cancel deletes the job with qdel once qstat says it still bears the name.
func (p PBS) Cancel(ctx context.Context, run Runner, id, name string) error {
	jobs, err := p.Status(ctx, run, []string{id})
	if err != nil {
		return err
	}
	if j, ok := jobs[id]; !ok || j.Name != name || Ended(j.State) {
		return nil
	}
	_, err = run(ctx, nil, "qdel", id)
	if ce, ok := err.(*CommandError); ok && (ce.Says("Unknown Job Id") || ce.Says("Job has finished")) {
		return nil
	}
	return err
}

// InJob reads PBS_JOBID; the node is the host's name (PBS sets none other).
func (PBS) InJob(getenv func(string) string) (string, string) {
	id := getenv("PBS_JOBID")
	if !JobIDPattern.MatchString(id) {
		id = ""
	}
	return id, ""
}

func (PBS) NodeAddrs(context.Context, Runner, string) []string { return nil }

// Finished is the job's Exit_status, from the server's history.
func (p PBS) Finished(ctx context.Context, run Runner, id string) string {
	out, err := run(ctx, nil, "qstat", "-x", "-f", "-F", "json", id)
	if err != nil {
		return ""
	}
	var q qstatJSON
	if json.Unmarshal([]byte(out), &q) != nil {
		return ""
	}
	if e := rawString(q.Jobs[id].ExitStatus); e != "" {
		if n, err := strconv.Atoi(e); err == nil {
			return strconv.Itoa(n) + ":0"
		}
	}
	return ""
}

// pbsNever: the scheduler's comment "Can Never Run: …" says the job as submitted never
// fits.
var pbsNever = []neverRule{
	{func(r string) bool { return strings.HasPrefix(r, "Can Never Run") }, "PBS says the job can never run as submitted", func(_, host string) string {
		return "change the --pbs options (they are qsub's); `ssh " + shquote.Quote(host) + " qstat -f JOB` shows what PBS says"
	}},
}

// NeverStarts: pbsNever.
func (PBS) NeverStarts(j Job, host string) (Never, bool) {
	if !IsPending(j.State) {
		return Never{}, false
	}
	return lookup(pbsNever, j.Reason, host)
}

func (PBS) SubmitHint(said, host string) string {
	low := strings.ToLower(said)
	h := shquote.Quote(host)
	switch {
	case strings.Contains(low, "unknown queue"):
		return "pick a queue with -q; `ssh " + h + " qstat -Q` lists them"
	case strings.Contains(low, "walltime"), strings.Contains(low, "exceeds"):
		return "ask for less with -l (walltime, ncpus, mem); `ssh " + h + " qstat -Qf QUEUE` shows a queue's limits"
	case strings.Contains(low, "unknown resource"):
		return "check the -l resources; `ssh " + h + " pbsnodes -a` shows what nodes have"
	}
	return "check the --pbs options (they are qsub's)"
}

func (PBS) NoSubmitHint(string) string { return "launch on a PBS login node, or drop --pbs" }
