package batch

import (
	"context"
	"encoding/xml"
	"fmt"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/tether-dev/tether/internal/shquote"
	"github.com/tether-dev/tether/internal/termsafe"
)

// SGE is Grid Engine (Sun/Oracle Grid Engine, Son of Grid Engine, Open Grid Scheduler):
// qsub, qstat -xml, qdel and qacct, checked against Debian's gridengine 8.1.9 (the e2e
// tests drive a real single-node cell).
type SGE struct {
	// Now is the clock for time left (tests); nil is time.Now.
	Now func() time.Time
}

func (SGE) Name() string  { return "sge" }
func (SGE) Title() string { return "Grid Engine" }
func (SGE) Flag() string  { return "--sge" }

// qsubCheck is Grid Engine's qsub (submit(1) of 8.1.9, plus options later releases and
// Univa/Altair Grid Engine added): every option a whole word, its values the words
// after it.
var qsubCheck = &wordCheck{
	prog: "qsub",
	opts: map[string]int{
		"-a": 1, "-ac": 1, "-adds": 3, "-ar": 1, "-A": 1, "-b": 1, "-binding": -1, "-c": 1, "-ckpt": 1,
		"-clear": 0, "-clearp": 1, "-clears": 2, "-cwd": 0, "-dc": 1, "-display": 1, "-dl": 1, "-hard": 0,
		"-hold_jid": 1, "-hold_jid_ad": 1, "-inherit": 0, "-jc": 1, "-js": 1, "-jsv": 1,
		"-l": 1, "-m": 1, "-M": 1, "-masterl": 1, "-masterq": 1, "-mods": 3, "-mbind": 1,
		"-notify": 0, "-now": 1, "-noshell": 0, "-nostdin": 0, "-ot": 1, "-P": 1, "-p": 1, "-pe": 2,
		"-pty": 1, "-q": 1, "-R": 1, "-r": 1, "-rou": 1, "-rdi": 1, "-sc": 1, "-shell": 1, "-si": 1,
		"-soft": 0, "-tcon": 1, "-u": 1, "-v": 1, "-V": 0, "-verbose": 0, "-w": 1, "-wd": 1,
	},
	twoWhen: map[string][]string{"-binding": {"set", "env", "pe"}},
	owned: map[string]string{
		"-N":      "tether names the job tether-<session> and finds it by that name",
		"-o":      "the job's output goes to the session's private directory",
		"-e":      "the job's output goes to the session's private directory",
		"-j":      "the job's output goes to the session's private directory",
		"-i":      "the job reads no input (tether passes -i /dev/null)",
		"-S":      "tether's job script runs in /bin/sh (tether passes -S /bin/sh)",
		"-b":      "tether submits the job script it writes",
		"-C":      "tether writes the job script, with no directives in it",
		"-t":      "tether runs one job per session",
		"-tc":     "tether runs one job per session",
		"-sync":   "tether watches the job itself (qsub -sync y would not return until the job ends)",
		"-terse":  "tether passes it to read the job id",
		"-@":      "tether cannot check the options in that file; give them here",
		"-h":      "a held job never starts by itself; tether waits for the job it submits",
		"-help":   "it makes qsub print something and submit nothing",
		"-verify": "it makes qsub print something and submit nothing",
	},
	ownedValue: map[string]map[string]string{
		"-w": {"v": "-w v makes qsub print a report and submit nothing", "p": "-w p makes qsub print a report and submit nothing"},
	},
}

// CheckOptions judges the --sge words as qsub reads them.
func (SGE) CheckOptions(args []string) error { return qsubCheck.check(args) }

// tetherQsubFirst come before the user's options (the user's win): the job gets the
// login environment (-V, as sbatch's default --export=ALL gives it) and runs in the
// login session's directory, as sbatch's do, and qsub refuses a job no queue could
// ever run (rather than leaving it waiting forever); `-w n` in the options turns that
// off. tetherQsubArgs come after them and win.
var tetherQsubFirst = []string{"-V", "-cwd", "-w", "e"}

func tetherQsubArgs(name, output string) []string {
	return []string{"-terse", "-sync", "n", "-N", name, "-o", output, "-j", "y", "-i", "/dev/null", "-S", "/bin/sh", "-b", "n"}
}

// Submit runs qsub.
func (SGE) Submit(ctx context.Context, run Runner, s Submission) (string, error) {
	args := append(append(append(append([]string{}, tetherQsubFirst...), s.Options...), tetherQsubArgs(s.Name, s.Output)...), s.Script)
	out, err := run(ctx, s.Env, "qsub", args...)
	if err != nil {
		return "", err
	}
	line := firstLine(out)
	id, _, _ := strings.Cut(line, ".") // an array job would print ID.1-3:1
	if !allDigits(id) || len(id) > 20 {
		return "", fmt.Errorf("qsub printed %q, not a job id", termsafe.Clip(line, 64))
	}
	return id, nil
}

// qstatList is `qstat -xml -r`: running jobs under queue_info, pending ones under
// job_info.
type qstatList struct {
	Running []qstatJob `xml:"queue_info>job_list"`
	Pending []qstatJob `xml:"job_info>job_list"`
}

type qstatJob struct {
	Number    string `xml:"JB_job_number"`
	Name      string `xml:"JB_name"`
	FullName  string `xml:"full_job_name"`
	State     string `xml:"state"`
	StartTime string `xml:"JAT_start_time"`
	Queue     string `xml:"queue_name"`
	Hard      []struct {
		Name  string `xml:"name,attr"`
		Value string `xml:",chardata"`
	} `xml:"hard_request"`
}

// qstatDetail is what tether reads of `qstat -j ID -xml`: why a job waits or failed.
type qstatDetail struct {
	Jobs []struct {
		Number string `xml:"JB_job_number"`
		// The task's messages (a job in error state says why there), under
		// ulong_sublist in 8.1.9's output, element in others'.
		Errors  []string `xml:"JB_ja_tasks>ulong_sublist>JAT_message_list>ulong_sublist>QIM_message"`
		Errors2 []string `xml:"JB_ja_tasks>element>JAT_message_list>element>QIM_message"`
	} `xml:"djob_info>element"`
	Messages []string `xml:"messages>element>SME_message_list>element>MES_message"`
	Global   []string `xml:"messages>element>SME_global_message_list>element>MES_message"`
}

// maxDetails bounds the `qstat -j` calls one Status makes (one per waiting job).
const maxDetails = 8

// Status asks qstat about the user's jobs and keeps those among ids; for waiting
// ones, `qstat -j` says why.
func (g SGE) Status(ctx context.Context, run Runner, ids []string) (map[string]Job, error) {
	jobs := map[string]Job{}
	if len(ids) == 0 {
		return jobs, nil
	}
	args := []string{"-xml", "-r"}
	if u, err := user.Current(); err == nil && u.Username != "" {
		args = append(args, "-u", u.Username)
	}
	out, err := run(ctx, nil, "qstat", args...)
	if err != nil {
		return nil, err
	}
	all, err := parseQstatList(out, g.now())
	if err != nil {
		return nil, err
	}
	details := 0
	for _, id := range ids {
		j, ok := all[id]
		if !ok {
			continue
		}
		if IsPending(j.State) && details < maxDetails {
			details++
			if d, err := run(ctx, nil, "qstat", "-j", id, "-xml"); err == nil {
				if r := qstatReason(d); r != "" {
					j.Reason = r
				}
			}
		}
		jobs[id] = j
	}
	return jobs, nil
}

func (g SGE) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}

// parseQstatList reads `qstat -xml -r` into jobs by id.
func parseQstatList(out string, now time.Time) (map[string]Job, error) {
	var l qstatList
	if err := xml.Unmarshal([]byte(out), &l); err != nil {
		return nil, fmt.Errorf("qstat -xml printed what tether cannot read: %v", err)
	}
	jobs := map[string]Job{}
	for _, q := range append(l.Running, l.Pending...) {
		if !allDigits(q.Number) || len(q.Number) > 20 || !nativePattern.MatchString(q.State) {
			continue
		}
		name := q.FullName
		if name == "" {
			name = q.Name
		}
		j := Job{JobID: q.Number, Name: name, Native: q.State, State: sgeState(q.State)}
		if _, host, ok := strings.Cut(q.Queue, "@"); ok && nodeListPattern.MatchString(host) && !IsPending(j.State) {
			j.Node = host
		}
		var limit time.Duration
		for _, h := range q.Hard {
			if h.Name == "h_rt" {
				if d, err := parseClock(h.Value); err == nil {
					limit = d
				}
			}
		}
		if q.StartTime != "" {
			j.Start = localTime(q.StartTime, "2006-01-02T15:04:05")
		}
		if limit > 0 {
			j.TimeLimit = FormatTimeLeft(limit)
			j.TimeLeft = j.TimeLimit
			if start, err := time.Parse(time.RFC3339, j.Start); err == nil && !IsPending(j.State) {
				j.TimeLeft = FormatTimeLeft(limit - now.Sub(start))
			}
		}
		if strings.Contains(q.State, "h") && j.State == "PENDING" {
			j.Reason = "held (qrls releases it)"
		}
		jobs[j.JobID] = j
	}
	return jobs, nil
}

// sgeState maps qstat's state letters to tether's words: E (error) and q/w/h (queued,
// waiting, held) are pending, d (being deleted) completing, t (being started)
// configuring, r/R running, s/S/T suspended, z (finished) completed.
func sgeState(s string) string {
	switch {
	case strings.Contains(s, "d"):
		return "COMPLETING"
	case strings.Contains(s, "E"), strings.Contains(s, "q"), strings.Contains(s, "w"), strings.Contains(s, "h"):
		return "PENDING"
	case strings.Contains(s, "t"):
		return "CONFIGURING"
	case strings.ContainsAny(s, "sST"):
		return "SUSPENDED"
	case strings.ContainsAny(s, "rR"):
		return "RUNNING"
	case strings.Contains(s, "z"):
		return "COMPLETED"
	}
	return "PENDING"
}

// qstatReason is why a job waits, from `qstat -j ID -xml`: its error messages (a job in
// error state), else the scheduler's messages about it.
func qstatReason(out string) string {
	var d qstatDetail
	if xml.Unmarshal([]byte(out), &d) != nil {
		return ""
	}
	var msgs []string
	for _, j := range d.Jobs {
		for _, m := range append(j.Errors, j.Errors2...) {
			// "12/06/2026 12:08:34 [0:7487]: error: can't open output file …"
			if i := strings.Index(m, "]: "); i >= 0 {
				m = m[i+3:]
			}
			msgs = append(msgs, m)
		}
	}
	if len(msgs) == 0 {
		msgs = append(d.Messages, d.Global...)
	}
	var out2 []string
	for _, m := range msgs {
		if m = strings.TrimSpace(termsafe.OneLine(m)); m != "" && !contains(out2, m) {
			out2 = append(out2, m)
		}
	}
	r := strings.Join(out2, "; ")
	if len(r) > 250 {
		r = r[:250] + "…"
	}
	return r
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

// Cancel deletes the job with qdel, once qstat says it still bears the name (an id
// reused by another job is never hit). A job already gone is not an error.
func (g SGE) Cancel(ctx context.Context, run Runner, id, name string) error {
	jobs, err := g.Status(ctx, run, []string{id})
	if err != nil {
		return err
	}
	j, ok := jobs[id]
	if !ok || j.Name != name {
		return nil
	}
	_, err = run(ctx, nil, "qdel", id)
	if ce, ok := err.(*CommandError); ok && (ce.Says("does not exist") || ce.Says("has already been deleted")) {
		return nil
	}
	return err
}

// InJob reads JOB_ID and HOSTNAME (Grid Engine sets both in the job).
func (SGE) InJob(getenv func(string) string) (string, string) {
	id := getenv("JOB_ID")
	if !allDigits(id) || len(id) > 20 {
		id = ""
	}
	return id, getenv("HOSTNAME")
}

func (SGE) NodeAddrs(context.Context, Runner, string) []string { return nil }

// Finished reads the job's exit status from the accounting file (qacct), which Grid
// Engine writes some seconds after the job ends (reporting_params flush_time).
func (SGE) Finished(ctx context.Context, run Runner, id string) string {
	out, err := run(ctx, nil, "qacct", "-j", id)
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == "exit_status" {
			if n, err := strconv.Atoi(f[1]); err == nil {
				return strconv.Itoa(n) + ":0"
			}
		}
	}
	return ""
}

// NeverStarts: a job in error state (Eqw) waits for someone to fix it and clear the
// error; as tether submitted it, it never runs. Its reason (qstat -j's error) picks
// the next step.
func (SGE) NeverStarts(j Job, host string) (Never, bool) {
	if !IsPending(j.State) || !strings.Contains(j.Native, "E") {
		return Never{}, false
	}
	n := Never{Why: "the job is in Grid Engine's error state",
		Hint: "check the --sge options (they are qsub's); `ssh " + shquote.Quote(host) + " qstat -j JOB` shows what Grid Engine says"}
	if strings.Contains(j.Reason, "output file") || strings.Contains(j.Reason, "working directory") || strings.Contains(j.Reason, "shell") {
		n.Hint = "the node cannot use a path the job needs (the session directory on the shared home?); check it on a node"
	}
	return n, true
}

func (SGE) SubmitHint(said, host string) string {
	low := strings.ToLower(said)
	h := shquote.Quote(host)
	switch {
	case strings.Contains(low, "unknown queue"):
		return "pick a queue with -q; `ssh " + h + " qconf -sql` lists them"
	case strings.Contains(low, "no suitable queue"):
		return "no queue can ever run the job as asked (time, slots or resources over a queue's limits); `ssh " + h + " qconf -sq QUEUE` shows a queue's limits (or add -w n to queue it anyway)"
	case strings.Contains(low, "project"):
		return "check -P; `ssh " + h + " qconf -sprjl` lists the projects"
	case strings.Contains(low, "parallel environment"):
		return "check -pe; `ssh " + h + " qconf -spl` lists the parallel environments"
	}
	return "check the --sge options (they are qsub's)"
}

func (SGE) NoSubmitHint(string) string {
	return "launch on a Grid Engine login node (with SGE_ROOT set in your login environment), or drop --sge"
}
