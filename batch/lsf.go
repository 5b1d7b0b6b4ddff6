package batch

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tether-dev/tether/internal/shquote"
	"github.com/tether-dev/tether/internal/termsafe"
)

// LSF is IBM Spectrum LSF: bsub, `bjobs -json -o FIELDS`, bkill. Written from the LSF
// 10.1.0 command reference (bsub, bjobs -o/-json, bkill); not yet run against a real
// LSF cluster (README says so), unlike Slurm and Grid Engine.
type LSF struct{}

func (LSF) Name() string  { return "lsf" }
func (LSF) Title() string { return "LSF" }
func (LSF) Flag() string  { return "--lsf" }

// bsubCheck is bsub: every option a whole word, its value the next word (bsub also
// takes -q VALUE's attached form for some options; tether asks for the separate word).
var bsubCheck = &wordCheck{
	prog: "bsub",
	opts: map[string]int{
		"-a": 1, "-alloc_flags": 1, "-app": 1, "-ar": 0, "-B": 0, "-b": 1, "-C": 1, "-c": 1,
		"-cn_cu": 1, "-cn_mem": 1, "-core_isolation": 1, "-csm": 1, "-cwd": 1, "-D": 1, "-data": 1,
		"-datachk": 0, "-datagrp": 1, "-E": 1, "-Ep": 1, "-eptl": 1, "-env": 1, "-F": 1, "-f": 1,
		"-freq": 1, "-G": 1, "-g": 1, "-gpu": 1, "-hl": 0, "-hostfile": 1, "-jsdl": 1,
		"-jsdl_strict": 1, "-jsm": 1, "-L": 1, "-Lp": 1, "-ln_mem": 1, "-ln_slots": 1, "-M": 1,
		"-m": 1, "-mig": 1, "-n": 1, "-network": 1, "-notify": 1, "-P": 1, "-p": 1, "-pack": 1,
		"-ptl": 1, "-Q": 1, "-q": 1, "-R": 1, "-r": 0, "-rn": 0, "-rnc": 1, "-S": 1, "-s": 1,
		"-sla": 1, "-smt": 1, "-sp": 1, "-stage": 1, "-T": 1, "-t": 1, "-U": 1, "-u": 1, "-ul": 0,
		"-v": 1, "-W": 1, "-We": 1, "-w": 1, "-wa": 1, "-wt": 1, "-x": 0, "-XF": 0, "-Zs": 0,
	},
	owned: map[string]string{
		"-J":    "tether names the job tether-<session> and finds it by that name",
		"-Jd":   "tether describes the job itself",
		"-o":    "the job's output goes to the session's private directory",
		"-oo":   "the job's output goes to the session's private directory",
		"-e":    "the job's output goes to the session's private directory",
		"-eo":   "the job's output goes to the session's private directory",
		"-N":    "the job's output goes to the session's private directory",
		"-i":    "the job reads no input (tether passes -i /dev/null)",
		"-is":   "the job reads no input (tether passes -i /dev/null)",
		"-K":    "bsub -K waits until the job ends; tether watches the job itself",
		"-I":    "tether runs a batch job (an interactive one would need a terminal)",
		"-Ip":   "tether runs a batch job (an interactive one would need a terminal)",
		"-Is":   "tether runs a batch job (an interactive one would need a terminal)",
		"-IS":   "tether runs a batch job (an interactive one would need a terminal)",
		"-ISp":  "tether runs a batch job (an interactive one would need a terminal)",
		"-ISs":  "tether runs a batch job (an interactive one would need a terminal)",
		"-IX":   "tether runs a batch job (an interactive one would need a terminal)",
		"-H":    "a held job never starts by itself; tether waits for the job it submits",
		"-Zs":   "tether submits the job script it writes",
		"-f":    "file transfer would copy files the session keeps in its private directory",
		"-h":    "it makes bsub print something and submit nothing",
		"-V":    "it makes bsub print something and submit nothing",
		"-pack": "tether submits one job per session",
	},
}

// CheckOptions judges the --lsf words as bsub reads them.
func (LSF) CheckOptions(args []string) error { return bsubCheck.check(args) }

func tetherBsubArgs(name, output string) []string {
	return []string{"-J", name, "-oo", output, "-eo", output, "-i", "/dev/null"}
}

// bsubAnswer is bsub's line: Job <123> is submitted to queue <normal>.
var bsubAnswer = regexp.MustCompile(`Job <([0-9]{1,20})> is submitted`)

// Submit runs bsub with `/bin/sh SCRIPT` as the job's command (bsub runs a command on
// the node, and the script, 0600 in the session's directory on the shared home, is not
// executable); bsub answers "Job <123> is submitted to queue <normal>.".
func (LSF) Submit(ctx context.Context, run Runner, s Submission) (string, error) {
	args := append(append(append([]string{}, s.Options...), tetherBsubArgs(s.Name, s.Output)...), "/bin/sh", s.Script)
	out, err := run(ctx, s.Env, "bsub", args...)
	if err != nil {
		return "", err
	}
	m := bsubAnswer.FindStringSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("bsub printed %q, not a job id", termsafe.Clip(firstLine(out), 64))
	}
	return m[1], nil
}

// bjobsFields are the fields tether asks bjobs -o for.
const bjobsFields = "jobid job_name stat exec_host time_left runtimelimit start_time estimated_start_time pend_reason exit_code"

// bjobsJSON is `bjobs -json -o FIELDS`: a record per job, or per unknown id an ERROR.
type bjobsJSON struct {
	Records []map[string]string `json:"RECORDS"`
}

// Status asks bjobs about the jobs (-a: finished ones too, for CLEAN_PERIOD).
func (LSF) Status(ctx context.Context, run Runner, ids []string) (map[string]Job, error) {
	if len(ids) == 0 {
		return map[string]Job{}, nil
	}
	out, err := run(ctx, nil, "bjobs", append([]string{"-a", "-json", "-o", bjobsFields}, ids...)...)
	if err != nil && strings.TrimSpace(out) == "" {
		ce, ok := err.(*CommandError)
		if ok && ce.Says("not found") {
			return map[string]Job{}, nil
		}
		return nil, err
	}
	return parseBjobsJSON(out)
}

// lsfTime is how bjobs -o prints start times: "Jun 24 17:39" (this year), in the
// cluster's zone; estimated ones may end in a letter (E, L…).
func lsfTime(s string, now time.Time) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, ' '); i > 0 && len(s)-i == 2 {
		s = s[:i]
	}
	t, err := time.ParseInLocation("Jan _2 15:04", s, time.Local)
	if err != nil {
		t, err = time.ParseInLocation("Jan _2 15:04:05 2006", s, time.Local)
		if err != nil {
			return ""
		}
	} else {
		t = t.AddDate(now.Year(), 0, 0)
		if t.After(now.AddDate(0, 6, 0)) {
			t = t.AddDate(-1, 0, 0)
		}
	}
	return t.Format(time.RFC3339)
}

// timeLeftLSF reads bjobs' time_left "H:MM L" (L: from the run limit; E: estimated; X:
// over it): "" when there is no limit.
func timeLeftLSF(s string) string {
	s = strings.TrimSpace(s)
	if s == "" || s == "-" {
		return ""
	}
	f := strings.Fields(s)
	h, m, ok := strings.Cut(f[0], ":")
	hn, err1 := strconv.Atoi(h)
	mn, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || hn < 0 || mn < 0 || mn > 59 {
		return ""
	}
	if len(f) > 1 && f[1] == "X" {
		return "0:00"
	}
	return FormatTimeLeft(time.Duration(hn)*time.Hour + time.Duration(mn)*time.Minute)
}

// runLimitLSF reads runtimelimit "60.0/hostA" (minutes, normalised to a host) or "-".
func runLimitLSF(s string) string {
	v, _, _ := strings.Cut(strings.TrimSpace(s), "/")
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f <= 0 {
		return ""
	}
	return FormatTimeLeft(time.Duration(f * float64(time.Minute)))
}

func parseBjobsJSON(out string) (map[string]Job, error) {
	var b bjobsJSON
	if err := json.Unmarshal([]byte(out), &b); err != nil {
		return nil, fmt.Errorf("bjobs -json printed what tether cannot read: %v", err)
	}
	now := time.Now()
	jobs := map[string]Job{}
	for _, r := range b.Records {
		id := r["JOBID"]
		if r["ERROR"] != "" || !allDigits(id) || len(id) > 20 || !nativePattern.MatchString(r["STAT"]) {
			continue
		}
		j := Job{JobID: id, Name: r["JOB_NAME"], Native: r["STAT"], State: lsfState(r["STAT"], r["EXIT_CODE"])}
		j.TimeLimit = runLimitLSF(r["RUNTIMELIMIT"])
		if IsPending(j.State) {
			j.Reason = termsafe.OneLine(strings.TrimSpace(strings.TrimSuffix(r["PEND_REASON"], ";")))
			j.Start = lsfTime(r["ESTIMATED_START_TIME"], now)
			j.TimeLeft = j.TimeLimit
		} else {
			// exec_host: 4*hostA:2*hostB
			host := r["EXEC_HOST"]
			host, _, _ = strings.Cut(host, ":")
			if _, h, ok := strings.Cut(host, "*"); ok {
				host = h
			}
			if nodeListPattern.MatchString(host) {
				j.Node = host
			}
			j.Start = lsfTime(r["START_TIME"], now)
			j.TimeLeft = timeLeftLSF(r["TIME_LEFT"])
		}
		if len(j.Reason) > 250 {
			j.Reason = j.Reason[:250] + "…"
		}
		jobs[id] = j
	}
	return jobs, nil
}

// lsfState maps bjobs' STAT: PEND and PSUSP (suspended while pending) wait; RUN runs;
// USUSP and SSUSP are suspended; DONE completed; EXIT failed or was killed (bkill's
// exit code is 130 (SIGINT) or 137; the run limit's 140 (SIGUSR2... LSF's TERM_RUNLIMIT
// shows in the exit reason, which tether does not ask for); UNKWN and ZOMBI lost.
func lsfState(s, exit string) string {
	switch s {
	case "PEND", "PSUSP", "WAIT":
		return "PENDING"
	case "RUN", "PROV":
		return "RUNNING"
	case "USUSP", "SSUSP":
		return "SUSPENDED"
	case "DONE":
		return "COMPLETED"
	case "EXIT":
		if exit == "130" || exit == "137" {
			return "CANCELLED"
		}
		return "FAILED"
	case "UNKWN", "ZOMBI":
		return "NODE_FAIL"
	}
	return "PENDING"
}

// Cancel kills the job with bkill once bjobs says it still bears the name.
func (l LSF) Cancel(ctx context.Context, run Runner, id, name string) error {
	jobs, err := l.Status(ctx, run, []string{id})
	if err != nil {
		return err
	}
	if j, ok := jobs[id]; !ok || j.Name != name || Ended(j.State) {
		return nil
	}
	_, err = run(ctx, nil, "bkill", id)
	if ce, ok := err.(*CommandError); ok && (ce.Says("already finished") || ce.Says("not found")) {
		return nil
	}
	return err
}

// InJob reads LSB_JOBID; the node is the host's name.
func (LSF) InJob(getenv func(string) string) (string, string) {
	id := getenv("LSB_JOBID")
	if !allDigits(id) || len(id) > 20 {
		id = ""
	}
	return id, ""
}

func (LSF) NodeAddrs(context.Context, Runner, string) []string { return nil }

// Finished is bjobs' exit_code while LSF still lists the job.
func (LSF) Finished(ctx context.Context, run Runner, id string) string {
	out, err := run(ctx, nil, "bjobs", "-a", "-json", "-o", "jobid exit_code", id)
	if err != nil {
		return ""
	}
	var b bjobsJSON
	if json.Unmarshal([]byte(out), &b) != nil {
		return ""
	}
	for _, r := range b.Records {
		if r["JOBID"] == id {
			if n, err := strconv.Atoi(strings.TrimSpace(r["EXIT_CODE"])); err == nil {
				return strconv.Itoa(n) + ":0"
			}
		}
	}
	return ""
}

// lsfNever: LSF's pending reasons that no wait resolves (not the ones that wait for
// scheduling or a reservation).
var lsfNever = []neverRule{
	{func(r string) bool {
		for _, w := range []string{"New job is waiting for scheduling", "Job's requirements for resource reservation not satisfied"} {
			if strings.HasPrefix(r, w) {
				return false
			}
		}
		return strings.Contains(r, "exceeds the queue's") || strings.Contains(r, "can never")
	}, "LSF says the job does not fit the queue's limits", func(_, host string) string {
		return "change the --lsf options (they are bsub's); `ssh " + shquote.Quote(host) + " bjobs -l JOB` shows what LSF says"
	}},
}

// NeverStarts: lsfNever.
func (LSF) NeverStarts(j Job, host string) (Never, bool) {
	if !IsPending(j.State) {
		return Never{}, false
	}
	return lookup(lsfNever, j.Reason, host)
}

func (LSF) SubmitHint(said, host string) string {
	low := strings.ToLower(said)
	h := shquote.Quote(host)
	switch {
	case strings.Contains(low, "queue"):
		return "pick a queue with -q; `ssh " + h + " bqueues` lists them"
	case strings.Contains(low, "run limit"), strings.Contains(low, "runlimit"):
		return "ask for less time with -W; `ssh " + h + " bqueues -l QUEUE` shows a queue's limits"
	}
	return "check the --lsf options (they are bsub's)"
}

func (LSF) NoSubmitHint(string) string { return "launch on an LSF login node, or drop --lsf" }
