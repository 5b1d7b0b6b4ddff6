//go:build unix

package remote

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// Lines as squeue printed them here (Slurm 22.05.8) with squeueFormat.
func TestParseSqueue(t *testing.T) {
	out := "5|tether-abcd2345|RUNNING|vm|59:58|None\n" +
		"6|tether-efgh2345|PENDING||1:00:00|Resources\n" +
		"7|tether-ijkl2345|PENDING||1-00:00:00|Nodes required for job are DOWN, DRAINED or reserved for jobs in higher priority partitions\n" +
		"8|blocker|COMPLETING|node[01-02]|4:57|None\n" +
		"9|x|CANCELLED|(null)|1:00|None\n" +
		"garbage line\n\n"
	jobs, err := parseSqueue(out)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]JobStatus{
		"5": {JobID: "5", Name: "tether-abcd2345", State: "RUNNING", Node: "vm", TimeLeft: "59:58", Reason: "None"},
		"6": {JobID: "6", Name: "tether-efgh2345", State: "PENDING", TimeLeft: "1:00:00", Reason: "Resources"},
		"7": {JobID: "7", Name: "tether-ijkl2345", State: "PENDING", TimeLeft: "1-00:00:00",
			Reason: "Nodes required for job are DOWN, DRAINED or reserved for jobs in higher priority partitions"},
		"8": {JobID: "8", Name: "blocker", State: "COMPLETING", Node: "node[01-02]", TimeLeft: "4:57", Reason: "None"},
		"9": {JobID: "9", Name: "x", State: "CANCELLED", TimeLeft: "1:00", Reason: "None"},
	}
	if len(jobs) != len(want) {
		t.Errorf("got %d jobs: %+v", len(jobs), jobs)
	}
	for id, w := range want {
		if jobs[id] != w {
			t.Errorf("for job %s, got %+v; want %+v", id, jobs[id], w)
		}
	}
	for _, bad := range []string{"x|y\n", "abc|n|RUNNING|vm|1:00|None\n", "5|n|running|vm|1:00|None\n", "5|n|RUN NING|vm|1:00|None\n"} {
		if jobs, err := parseSqueue(bad); err == nil {
			t.Errorf("for %q, got %+v; want an error", bad, jobs)
		}
	}
	if jobs, err := parseSqueue(""); err != nil || len(jobs) != 0 {
		t.Errorf("empty output: %v, %v", jobs, err)
	}
}

func TestParseTimeLeft(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"0:00", 0},
		{"0:58", 58 * time.Second},
		{"4:57", 4*time.Minute + 57*time.Second},
		{"29:57", 29*time.Minute + 57*time.Second},
		{"59:59", 59*time.Minute + 59*time.Second},
		{"1:00:00", time.Hour},
		{"2:29:57", 2*time.Hour + 29*time.Minute + 57*time.Second},
		{"23:59:59", 23*time.Hour + 59*time.Minute + 59*time.Second},
		{"1-00:00:00", 24 * time.Hour},
		{"2-03:04:05", 51*time.Hour + 4*time.Minute + 5*time.Second},
		{"365-00:00:00", 365 * 24 * time.Hour},
		{"1-12", 36 * time.Hour},
		{"1-12:30", 36*time.Hour + 30*time.Minute},
		{" 10:00 ", 10 * time.Minute},
	}
	for _, tt := range tests {
		got, err := ParseTimeLeft(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("for %q, got %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"UNLIMITED", "NOT_SET"} {
		if _, err := ParseTimeLeft(in); !errors.Is(err, ErrNoTimeLimit) {
			t.Errorf("for %q, got %v; want ErrNoTimeLimit", in, err)
		}
	}
	for _, in := range []string{"INVALID", "", "N/A", "10", "1:2", "1:60", "1:00:60", "1:60:00", "-1:00", "1--00:00:00",
		"1-24:00:00", "a:bc", "1:00:00:00", "1-", "::", "1:-1", "99999999:00"} {
		if d, err := ParseTimeLeft(in); err == nil || errors.Is(err, ErrNoTimeLimit) {
			t.Errorf("for %q, got %v, %v; want an error", in, d, err)
		}
	}
}

func TestJobStatesAndReasons(t *testing.T) {
	for _, st := range []string{"", "COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY"} {
		if !JobEnded(st) {
			t.Errorf("%q is not ended", st)
		}
	}
	for _, st := range []string{"PENDING", "RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED", "REQUEUED", "SIGNALING", "STAGE_OUT"} {
		if JobEnded(st) {
			t.Errorf("%q is ended", st)
		}
	}
	if !JobPending("PENDING") || JobPending("RUNNING") || !JobPending("REQUEUE_HOLD") {
		t.Error("JobPending")
	}
	if EndedHow("TIMEOUT") != "reached its time limit" || EndedHow("") == "" || EndedHow("WEIRD") != "weird" {
		t.Error("EndedHow")
	}
	never := []string{"PartitionTimeLimit", "PartitionConfig", "PartitionNodeLimit", "InvalidAccount", "InvalidQOS",
		"AccountNotAllowed", "QOSNotAllowed", "BadConstraints", "DependencyNeverSatisfied",
		"QOSMaxWallDurationPerJobLimit", "AssocMaxCpuPerJobLimit", "QOSMaxGRESPerJob", "QOSMinCpuNotSatisfied"}
	for _, r := range never {
		if why, ok := NeverStarts(r); !ok || why == "" {
			t.Errorf("%s: never starts %v (%q)", r, ok, why)
		}
	}
	resolves := []string{"None", "", "Resources", "Priority", "Dependency", "BeginTime", "JobHeldUser", "JobHeldAdmin",
		"QOSMaxCpuPerUserLimit", "AssocGrpCpuLimit", "AssocGrpJobsLimit", "ReqNodeNotAvail, UnavailableNodes:n1", "PartitionDown",
		"Nodes required for job are DOWN, DRAINED or reserved for jobs in higher priority partitions", "Licenses", "Reservation"}
	for _, r := range resolves {
		if why, ok := NeverStarts(r); ok {
			t.Errorf("%s: never starts (%q)", r, why)
		}
	}
}

func TestCheckSbatchArgs(t *testing.T) {
	ok := [][]string{
		nil,
		{"-p", "gpu", "--gres=gpu:1", "-t", "4:00:00"},
		{"-pgpu", "-t1:00:00", "-N", "1", "--exclusive", "-A", "proj"},
		{"--partition", "gpu", "--hold", "--mem=4G", "-c", "4", "--export=ALL", "--comment", "-dashed"},
		{"--chdir", "/scratch/me"},
	}
	for _, args := range ok {
		if err := CheckSbatchArgs(args); err != nil {
			t.Errorf("for %q, got %v", args, err)
		}
	}
	bad := map[string][]string{
		"job name":      {"-J", "x"},
		"job name long": {"--job-name=x"},
		"output":        {"-o", "x"},
		"output joined": {"-ox"},
		"output long":   {"--output=x"},
		"error":         {"--error", "x"},
		"wrap":          {"--wrap=echo"},
		"wait":          {"-W"},
		"array":         {"--array=1-4"},
		"test only":     {"--test-only"},
		"help":          {"--help"},
		"script":        {"job.sh"},
		"script after":  {"-p", "gpu", "job.sh"},
		"after a flag":  {"--exclusive", "job.sh"},
		"double dash":   {"--"},
		"NUL":           {"--comment=a\x00b"},
	}
	for name, args := range bad {
		if err := CheckSbatchArgs(args); err == nil {
			t.Errorf("%s: %q accepted", name, args)
		}
	}
}

func slurmRecord() Record {
	r := validRecord()
	r.JobID, r.Node, r.Addr, r.TLS = "42", "node17", "10.1.2.3:41234", true
	r.URL, r.CertSHA256 = "https://10.1.2.3:41234/", strings.Repeat("ab", 32)
	return r
}

// A Slurm session's record: its server is on a compute node, so its URL is not
// loopback, but only with a job id, TLS and a URL naming its addr; other records stay
// loopback-only.
func TestRecordValidateSlurm(t *testing.T) {
	if r := slurmRecord(); r.Validate() != nil {
		err := r.Validate()
		t.Fatalf("valid Slurm record refused: %v", err)
	}
	tests := []struct {
		name string
		edit func(r *Record)
		ok   bool
	}{
		{"ipv6 node", func(r *Record) { r.Addr, r.URL = "[fd00::5]:41234", "https://[fd00::5]:41234/" }, true},
		{"loopback node", func(r *Record) { r.Addr, r.URL = "127.0.0.1:41234", "https://127.0.0.1:41234/" }, true},
		{"base url", func(r *Record) { r.BaseURL, r.URL = "/lab/", "https://10.1.2.3:41234/lab/" }, true},
		{"listed running with job", func(r *Record) {
			r.State, r.Job = StateRunning, &JobStatus{JobID: "42", State: "RUNNING", Node: "node17", TimeLeft: "3:59:00", Reason: "None"}
		}, true},
		{"remote url without job", func(r *Record) { r.JobID = "" }, false},
		{"node without job", func(r *Record) { r.JobID, r.URL, r.Addr = "", "", "" }, false},
		{"no tls", func(r *Record) { r.TLS, r.CertSHA256 = false, "" }, false},
		{"http url", func(r *Record) { r.URL = "http://10.1.2.3:41234/" }, false},
		{"url elsewhere", func(r *Record) { r.URL = "https://evil.example:41234/" }, false},
		{"url other port", func(r *Record) { r.URL = "https://10.1.2.3:1/" }, false},
		{"url with query", func(r *Record) { r.URL = "https://10.1.2.3:41234/?x=1" }, false},
		{"url without base", func(r *Record) { r.BaseURL = "/lab/" }, false},
		{"addr a name", func(r *Record) { r.Addr, r.URL = "evil.example:41234", "https://evil.example:41234/" }, false},
		{"addr no port", func(r *Record) { r.Addr = "10.1.2.3" }, false},
		{"addr port 0", func(r *Record) { r.Addr, r.URL = "10.1.2.3:0", "https://10.1.2.3:0/" }, false},
		{"job id text", func(r *Record) { r.JobID = "42; rm -rf" }, false},
		{"job id array", func(r *Record) { r.JobID = "42_1" }, false},
		{"node shell", func(r *Record) { r.Node = "n1;id" }, false},
		{"node empty", func(r *Record) { r.Node = "" }, false},
		{"listed with another job", func(r *Record) { r.State, r.Job = StateRunning, &JobStatus{JobID: "43", State: "RUNNING"} }, false},
		{"listed job state lower", func(r *Record) { r.State, r.Job = StateRunning, &JobStatus{JobID: "42", State: "running"} }, false},
		{"listed job reason escape", func(r *Record) { r.State, r.Job = StateRunning, &JobStatus{JobID: "42", Reason: "\x1b[2J"} }, false},
	}
	for _, tt := range tests {
		r := slurmRecord()
		tt.edit(&r)
		if err := r.Validate(); (err == nil) != tt.ok {
			t.Errorf("for %s, got %v; want ok=%v", tt.name, err, tt.ok)
		}
	}
	// The states only Slurm sessions have.
	plain := validRecord()
	plain.State = StatePending
	if plain.Validate() == nil {
		t.Error("a pending state without a job id validated")
	}
}

func TestRecordValidateQueued(t *testing.T) {
	q := Record{ID: "abcd2345", Name: "lab", JobID: "7", State: StatePending, Started: time.Now(), Version: "v1",
		Job: &JobStatus{JobID: "7", Name: "tether-abcd2345", State: "PENDING", Reason: "Resources", TimeLeft: "1:00:00"}}
	if err := q.ValidateQueued(); err != nil {
		t.Fatalf("queued record refused: %v", err)
	}
	for name, edit := range map[string]func(*Record){
		"no job id":     func(r *Record) { r.JobID = "" },
		"state running": func(r *Record) { r.State = StateRunning },
		"bad id":        func(r *Record) { r.ID = "../x" },
		"job mismatch":  func(r *Record) { r.Job.JobID = "8" },
		"job node":      func(r *Record) { r.Job.Node = "a b" },
	} {
		r := q
		j := *q.Job
		r.Job = &j
		edit(&r)
		if r.ValidateQueued() == nil {
			t.Errorf("%s: validated", name)
		}
	}
}

func TestSlurmEventValidate(t *testing.T) {
	rec := slurmRecord()
	job := JobStatus{JobID: "42", Name: "tether-abcd2345", State: "RUNNING", Node: "node17", TimeLeft: "59:00", Reason: "None"}
	good := []SlurmEvent{
		{Event: "job", Job: job},
		{Event: "ready", Job: job, Session: &rec},
		{Event: "note", Message: "squeue: error: slurm_receive_msg: Socket timed out"},
		{Event: "ended", Job: JobStatus{JobID: "42", State: "TIMEOUT"}, Output: []string{"a", "b"}, ExitCode: "0:15", OutputSeen: true},
	}
	for _, ev := range good {
		if err := ev.Validate(); err != nil {
			t.Errorf("%+v: %v", ev, err)
		}
	}
	other := rec
	other.JobID = "43"
	bad := map[string]SlurmEvent{
		"unknown":            {Event: "boom"},
		"ready without rec":  {Event: "ready", Job: job},
		"ready other job":    {Event: "ready", Job: job, Session: &other},
		"record on job":      {Event: "job", Job: job, Session: &rec},
		"bad job":            {Event: "job", Job: JobStatus{JobID: "x"}},
		"many output lines":  {Event: "ended", Job: job, Output: make([]string, 51)},
		"huge message":       {Event: "note", Message: strings.Repeat("m", 5000)},
		"ready record state": {Event: "ready", Job: job, Session: func() *Record { r := rec; r.State = StateRunning; return &r }()},
	}
	for name, ev := range bad {
		if ev.Validate() == nil {
			t.Errorf("%s: validated", name)
		}
	}
}
