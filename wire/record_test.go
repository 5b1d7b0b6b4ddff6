package wire

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/tokenserver"
)

func validRecord() Record {
	var r Record
	json.Unmarshal([]byte(`{"id":"abcd2345","name":"lab","pid":1234,"host":"gpu-box.example.org",
		"socket":"/run/user/1000/tether/abcd2345/server.sock","url":"http://127.0.0.1:8888/",
		"token":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","base_url":"/","tls":false,"cert_sha256":"",
		"command":["jupyter","lab","--port={port}"],"started":"2026-01-02T03:04:05Z","version":"v1.0.0"}`), &r)
	return r
}

func TestRecordValidate(t *testing.T) {
	if err := (&Record{}).Validate(); err == nil {
		t.Fatal("empty record validated")
	}
	good := validRecord()
	if err := good.Validate(); err != nil {
		t.Fatalf("valid record refused: %v", err)
	}
	tests := []struct {
		name string
		edit func(r *Record)
		ok   bool
	}{
		{"socket only", func(r *Record) { r.URL = "" }, true},
		{"tls with fingerprint", func(r *Record) {
			r.TLS, r.URL, r.CertSHA256 = true, "https://[::1]:443/", strings.Repeat("ab", 32)
		}, true},
		{"localhost url", func(r *Record) { r.URL = "http://localhost:1/" }, true},
		{"state dead", func(r *Record) { r.State = StateDead }, true},
		{"id too long", func(r *Record) { r.ID = "abcd23456" }, false},
		{"id with slash", func(r *Record) { r.ID = "../../..a" }, false},
		{"id uppercase", func(r *Record) { r.ID = "ABCD2345" }, false},
		{"name with space", func(r *Record) { r.Name = "a b" }, false},
		{"name with newline", func(r *Record) { r.Name = "a\nb" }, false},
		{"name too long", func(r *Record) { r.Name = strings.Repeat("n", 65) }, false},
		{"pid zero", func(r *Record) { r.PID = 0 }, false},
		{"pid negative", func(r *Record) { r.PID = -1 }, false},
		{"host with semicolon", func(r *Record) { r.Host = "a;id" }, false},
		{"host empty", func(r *Record) { r.Host = "" }, false},
		{"relative socket", func(r *Record) { r.Socket = "tether/server.sock" }, false},
		{"socket with dotdot", func(r *Record) { r.Socket = "/run/../etc/server.sock" }, false},
		{"socket too long", func(r *Record) { r.Socket = "/" + strings.Repeat("s", 120) }, false},
		{"socket with newline", func(r *Record) { r.Socket = "/tmp/a\nb" }, false},
		{"token short", func(r *Record) { r.Token = "short" }, false},
		{"token empty", func(r *Record) { r.Token = "" }, false},
		{"token with space", func(r *Record) { r.Token = strings.Repeat("a", 20) + " x" }, false},
		{"token with quote", func(r *Record) { r.Token = strings.Repeat("a", 20) + `"` }, false},
		{"url remote host", func(r *Record) { r.URL = "http://evil.example:80/" }, false},
		{"url public ip", func(r *Record) { r.URL = "http://8.8.8.8:80/" }, false},
		{"url no port", func(r *Record) { r.URL = "http://127.0.0.1/" }, false},
		{"url javascript", func(r *Record) { r.URL = "javascript:alert(1)" }, false},
		{"url userinfo", func(r *Record) { r.URL = "http://x@127.0.0.1:1/" }, false},
		{"url https without tls", func(r *Record) { r.URL = "https://127.0.0.1:1/" }, false},
		{"url with query", func(r *Record) { r.URL = "http://127.0.0.1:1/?a=b" }, false},
		{"base url relative", func(r *Record) { r.BaseURL = "lab/" }, false},
		{"base url double slash", func(r *Record) { r.BaseURL = "//evil.example/" }, false},
		// The gate's rule, not a looser one: a record whose base URL the gate could not
		// serve under is not one a real server wrote.
		{"base url beyond the gate's characters", func(r *Record) { r.BaseURL = "/a+b/" }, false},
		{"base url dot segment", func(r *Record) { r.BaseURL = "/a/../" }, false},
		{"base url plain", func(r *Record) { r.BaseURL = "/lab-1_x~/" }, true},
		{"tls without fingerprint", func(r *Record) { r.TLS, r.URL = true, "" }, false},
		{"fingerprint without tls", func(r *Record) { r.CertSHA256 = strings.Repeat("ab", 32) }, false},
		{"started missing", func(r *Record) { r.Started = time.Time{} }, false},
		{"command NUL", func(r *Record) { r.Command = []string{"a\x00b"} }, false},
		{"version control", func(r *Record) { r.Version = "v1\x1b[2J" }, false},
		{"state unknown", func(r *Record) { r.State = "zombie" }, false},
	}
	for _, tt := range tests {
		r := validRecord()
		tt.edit(&r)
		err := r.Validate()
		if (err == nil) != tt.ok {
			t.Errorf("for %s, got %v; want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestDecodeRecord(t *testing.T) {
	r := validRecord()
	b, _ := json.Marshal(r)
	got, err := DecodeRecord(b)
	if err != nil || got.ID != r.ID || !tokenserver.TokensEqual(got.Token, r.Token) {
		t.Fatalf("got %+v, %v", got, err)
	}
	for _, bad := range []string{``, `{`, `[]`, string(b) + `{}`, `{"id":"x"}`} {
		if _, err := DecodeRecord([]byte(bad)); err == nil {
			t.Errorf("for %q, got no error", bad)
		}
	}
	// The JSON keys are exactly the contract's.
	var m map[string]any
	json.Unmarshal(b, &m)
	want := []string{"id", "name", "pid", "host", "socket", "url", "token", "base_url", "tls", "cert_sha256", "command", "started", "version"}
	if len(m) != len(want) {
		t.Errorf("record has %d keys; want %d: %v", len(m), len(want), m)
	}
	for _, k := range want {
		if _, ok := m[k]; !ok {
			t.Errorf("record lacks key %q", k)
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

func TestBatchEventValidate(t *testing.T) {
	rec := slurmRecord()
	job := JobStatus{JobID: "42", Name: "tether-abcd2345", State: "RUNNING", Node: "node17", TimeLeft: "59:00", Reason: "None"}
	good := []Event{
		{Kind: EventJob, Job: job},
		{Kind: EventReady, Job: job, Session: &rec},
		{Kind: EventNote, Said: Plain("squeue: error: slurm_receive_msg: Socket timed out")},
		{Kind: EventEnded, Job: JobStatus{JobID: "42", State: "TIMEOUT"}, Output: []string{"a", "b"}, ExitCode: "0:15", OutputSeen: true},
		{Kind: EventEnded, Job: job, Why: Fail(FailAppExited, Plain("the app exited with status 1"), nil)},
	}
	for _, ev := range good {
		if err := ev.Validate(); err != nil {
			t.Errorf("%+v: %v", ev, err)
		}
	}
	other := rec
	other.JobID = "43"
	bad := map[string]Event{
		"unknown":            {Kind: "boom"},
		"ready without rec":  {Kind: EventReady, Job: job},
		"ready other job":    {Kind: EventReady, Job: job, Session: &other},
		"record on job":      {Kind: EventJob, Job: job, Session: &rec},
		"bad job":            {Kind: EventJob, Job: JobStatus{JobID: "x"}},
		"many output lines":  {Kind: EventEnded, Job: job, Output: make([]string, 51)},
		"huge message":       {Kind: EventNote, Said: Plain(strings.Repeat("m", 9000))},
		"output escape":      {Kind: EventEnded, Job: job, Output: []string{"\x1b[2J"}},
		"ready record state": {Kind: EventReady, Job: job, Session: func() *Record { r := rec; r.State = StateRunning; return &r }()},
		"bad why":            {Kind: EventEnded, Job: job, Why: &Failure{Session: "../x"}},
	}
	for name, ev := range bad {
		if ev.Validate() == nil {
			t.Errorf("%s: validated", name)
		}
	}
}
