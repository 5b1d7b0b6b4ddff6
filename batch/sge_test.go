package batch

import (
	"context"
	"strings"
	"testing"
	"time"
)

// Outputs recorded from Debian's gridengine 8.1.9 (the e2e cell): qstat -xml -r with
// running, waiting, error-state and held jobs; qstat -j -xml of a full queue and of a
// job in error state; qacct -j.
func TestSGEStatus(t *testing.T) {
	start, _ := time.ParseInLocation("2006-01-02T15:04:05", "2026-12-06T12:09:32", time.Local)
	f := &fakeRunner{out: map[string]string{
		"qstat -xml": testdata(t, "sge/qstat-list.xml"),
		"qstat -j":   testdata(t, "sge/qstat-j-full.xml"),
	}}
	g := SGE{Now: func() time.Time { return start.Add(90 * time.Second) }}
	jobs, err := g.Status(context.Background(), f.run, []string{"6", "8", "9", "5", "77"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Job{
		"6": {JobID: "6", Name: "tether-abcd2345", State: "RUNNING", Native: "r", Node: "localhost", TimeLeft: "8:30", TimeLimit: "10:00", Start: start.Format(time.RFC3339)},
		"8": {JobID: "8", Name: "tether-efgh2345", State: "PENDING", Native: "qw", TimeLeft: "1:00:00", TimeLimit: "1:00:00",
			Reason: `queue instance "all.q@localhost" dropped because it is full; All queues dropped because of overload or full`},
		"9": {JobID: "9", Name: "tether-held2345", State: "PENDING", Native: "hqw",
			Reason: `queue instance "all.q@localhost" dropped because it is full; All queues dropped because of overload or full`},
		"5": {JobID: "5", Name: "badout", State: "PENDING", Native: "Eqw",
			Reason: `queue instance "all.q@localhost" dropped because it is full; All queues dropped because of overload or full`},
	}
	if len(jobs) != len(want) {
		t.Errorf("got %d jobs: %+v", len(jobs), jobs)
	}
	for id, w := range want {
		if jobs[id] != w {
			t.Errorf("for job %s, got %+v; want %+v", id, jobs[id], w)
		}
	}
	for _, j := range jobs {
		if err := j.Validate(); err != nil {
			t.Errorf("job %s: %v", j.JobID, err)
		}
	}
	if !strings.HasPrefix(f.calls[0], "qstat -xml -r") {
		t.Errorf("calls: %q", f.calls)
	}

	// A job in error state: its own error, and it never starts as submitted.
	if r := qstatReason(testdata(t, "sge/qstat-j-eqw.xml")); r != `error: can't open output file "/nonexistent/dir/x": No such file or directory` {
		t.Errorf("Eqw reason: %q", r)
	}
	if n, ok := (SGE{}).NeverStarts(Job{State: "PENDING", Native: "Eqw"}, "hpc"); !ok || n.Why == "" || n.Hint == "" {
		t.Error("Eqw is not never-starting")
	}
	if _, ok := (SGE{}).NeverStarts(Job{State: "PENDING", Native: "qw"}, "hpc"); ok {
		t.Error("qw is never-starting")
	}

	f.out = map[string]string{"qacct -j": testdata(t, "sge/qacct.txt")}
	if got := (SGE{}).Finished(context.Background(), f.run, "4"); got != "0:0" {
		t.Errorf("qacct exit: %q", got)
	}
}

func TestSGEStates(t *testing.T) {
	for native, want := range map[string]string{
		"qw": "PENDING", "hqw": "PENDING", "Eqw": "PENDING", "r": "RUNNING", "t": "CONFIGURING", "Rr": "RUNNING",
		"s": "SUSPENDED", "S": "SUSPENDED", "dr": "COMPLETING", "z": "COMPLETED",
	} {
		if got := sgeState(native); got != want {
			t.Errorf("for %q, got %s; want %s", native, got, want)
		}
	}
}

// qsub's options are whole words: tether's own are refused, however they come;
// options taking two words (-pe NAME N) keep their values; an option tether does not
// know passes only where what follows is an option too.
func TestSGECheckOptions(t *testing.T) {
	ok := [][]string{
		nil,
		{"-q", "all.q"},
		{"-q", "all.q", "-l", "h_rt=4:00:00,gpu=1", "-pe", "smp", "4", "-P", "proj", "-A", "acct"},
		{"-binding", "linear:2", "-V", "-notify"},
		{"-binding", "set", "linear:2"},
		{"-w", "n"},
		{"-site_plugin", "-V", "-q", "all.q"},
	}
	for _, args := range ok {
		if err := (SGE{}).CheckOptions(args); err != nil {
			t.Errorf("for %q, got %v", args, err)
		}
	}
	bad := map[string][]string{
		"name": {"-N", "x"}, "output": {"-o", "/tmp/x"}, "error": {"-e", "x"}, "join": {"-j", "y"},
		"array": {"-t", "1-3"}, "array limit": {"-tc", "2"}, "sync": {"-sync", "y"}, "hold": {"-h"},
		"binary": {"-b", "y"}, "verify": {"-w", "v"}, "poke": {"-w", "p"}, "options file": {"-@", "f"},
		"script": {"job.sh"}, "after value": {"-q", "all.q", "job.sh"}, "missing value": {"-q"},
		"pe one value": {"-pe", "smp"}, "unknown last": {"-whatever"}, "unknown then word": {"-whatever", "x"}, "unknown then valued": {"-whatever", "-q", "all.q"},
		"shell": {"-S", "/bin/bash"}, "prefix": {"-C", "#X"},
	}
	for name, args := range bad {
		if err := (SGE{}).CheckOptions(args); err == nil {
			t.Errorf("%s: %q accepted", name, args)
		}
	}
}

// Submit: -V -cwd -w e first, the user's options, then tether's (the last wins in
// qsub), the script last; qsub -terse's answer is the id.
func TestSGESubmit(t *testing.T) {
	f := &fakeRunner{out: map[string]string{"qsub -V": "42\n"}}
	id, err := (SGE{}).Submit(context.Background(), f.run, Submission{Options: []string{"-q", "all.q"}, Name: "tether-abcd2345", Output: "/h/job.out", Script: "/h/job.sh"})
	if err != nil || id != "42" {
		t.Fatalf("got %q, %v", id, err)
	}
	want := "qsub -V -cwd -w e -q all.q -terse -sync n -N tether-abcd2345 -o /h/job.out -j y -i /dev/null -S /bin/sh -b n /h/job.sh"
	if f.calls[0] != want {
		t.Errorf("got %q; want %q", f.calls[0], want)
	}
	f.out["qsub -V"] = "Your job 42 (\"x\") has been submitted\n"
	if _, err := (SGE{}).Submit(context.Background(), f.run, Submission{Script: "/h/job.sh"}); err == nil {
		t.Error("qsub without -terse's answer accepted")
	}
}
