//go:build unix

package remote

import (
	"strings"
	"testing"
	"time"
)

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

func TestBatchEventValidate(t *testing.T) {
	rec := slurmRecord()
	job := JobStatus{JobID: "42", Name: "tether-abcd2345", State: "RUNNING", Node: "node17", TimeLeft: "59:00", Reason: "None"}
	good := []BatchEvent{
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
	bad := map[string]BatchEvent{
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
