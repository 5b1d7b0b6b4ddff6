package batch

import (
	"context"
	"errors"
	"testing"
	"time"
)

// PBS: qstat -x -f -F json as documented (testdata/pbs/README: written, not recorded).
func TestPBSStatus(t *testing.T) {
	at := func(s string) string {
		tm, err := time.ParseInLocation(pbsTime, s, time.Local)
		if err != nil {
			t.Fatal(err)
		}
		return tm.Format(time.RFC3339)
	}
	started, _ := time.ParseInLocation(pbsTime, "Sun Dec  6 12:00:00 2026", time.Local)
	f := &fakeRunner{out: map[string]string{"qstat -x": testdata(t, "pbs/qstat-f-json.json")}}
	p := PBS{Now: func() time.Time { return started.Add(5*time.Minute + 30*time.Second) }}
	jobs, err := p.Status(context.Background(), f.run, []string{"101.pbs-head", "102.pbs-head", "99.pbs-head", "103.pbs-head"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Job{
		"101.pbs-head": {JobID: "101.pbs-head", Name: "tether-abcd2345", State: "RUNNING", Native: "R", Node: "node07",
			TimeLeft: "54:30", TimeLimit: "1:00:00", Start: at("Sun Dec  6 12:00:00 2026")},
		"102.pbs-head": {JobID: "102.pbs-head", Name: "tether-efgh2345", State: "PENDING", Native: "Q", TimeLeft: "4:00:00", TimeLimit: "4:00:00",
			Reason: "Not Running: Insufficient amount of resource: ncpus (R: 8 A: 2 T: 64)", Start: at("Sun Dec  6 13:30:00 2026")},
		"99.pbs-head": {JobID: "99.pbs-head", Name: "tether-ijkl2345", State: "TIMEOUT", Native: "F", Node: "node02",
			TimeLeft: "0:00", TimeLimit: "10:00", Start: at("Sun Dec  6 11:40:00 2026")},
		"103.pbs-head": {JobID: "103.pbs-head", Name: "tether-mnop2345", State: "PENDING", Native: "Q", TimeLeft: "1:00:00", TimeLimit: "1:00:00",
			Reason: "Can Never Run: Insufficient amount of resource: ncpus (R: 512 A: 64 T: 64)"},
		"104.pbs-head": {JobID: "104.pbs-head", Name: "12345", State: "PENDING", Native: "H", TimeLeft: "30:00", TimeLimit: "30:00"},
	}
	for id, w := range want {
		if jobs[id] != w {
			t.Errorf("for job %s, got %+v; want %+v", id, jobs[id], w)
		}
		if err := w.Validate(); err != nil {
			t.Errorf("job %s: %v", id, err)
		}
	}
	if f.calls[0] != "qstat -x -f -F json 101.pbs-head 102.pbs-head 99.pbs-head 103.pbs-head" {
		t.Errorf("calls: %q", f.calls)
	}
	if _, ok := p.NeverStarts(jobs["103.pbs-head"], "hpc"); !ok {
		t.Error("Can Never Run is not never-starting")
	}
	if _, ok := p.NeverStarts(jobs["102.pbs-head"], "hpc"); ok {
		t.Error("Not Running is never-starting")
	}
	if got := p.Finished(context.Background(), f.run, "99.pbs-head"); got != "-29:0" {
		t.Errorf("Finished: %q", got)
	}

	// An id the server no longer knows: qstat complains and exits non-zero.
	f.out["qstat -x"] = ""
	f.err = map[string]error{"qstat -x": &CommandError{Name: "qstat", Stderr: "qstat: Unknown Job Id 98.pbs-head\n", Err: errors.New("exit status 153")}}
	if jobs, err := p.Status(context.Background(), f.run, []string{"98.pbs-head"}); err != nil || len(jobs) != 0 {
		t.Errorf("unknown id: %v, %v", jobs, err)
	}
	f.out["qstat -x"] = "{not json"
	f.err = nil
	if _, err := p.Status(context.Background(), f.run, []string{"1.x"}); err == nil {
		t.Error("bad JSON accepted")
	}
}

func TestPBSStates(t *testing.T) {
	for _, c := range []struct{ native, exit, want string }{
		{"Q", "", "PENDING"}, {"H", "", "PENDING"}, {"W", "", "PENDING"}, {"T", "", "PENDING"}, {"R", "", "RUNNING"},
		{"E", "", "COMPLETING"}, {"S", "", "SUSPENDED"}, {"F", "0", "COMPLETED"}, {"F", "-29", "TIMEOUT"},
		{"F", "271", "CANCELLED"}, {"F", "1", "FAILED"},
	} {
		if got := pbsState(c.native, c.exit); got != c.want {
			t.Errorf("for %s/%s, got %s; want %s", c.native, c.exit, got, c.want)
		}
	}
}

// PBS's qsub reads getopt's short options: values attached or not, bundles.
func TestPBSCheckOptions(t *testing.T) {
	ok := [][]string{
		nil,
		{"-q", "workq", "-l", "walltime=4:00:00", "-l", "select=1:ncpus=4:ngpus=1", "-A", "proj"},
		{"-qworkq", "-lwalltime=1:00:00", "-V", "-P", "proj", "-W", "group_list=lab"},
		{"-m", "n", "-r", "y", "-v", "FOO=1"},
	}
	for _, args := range ok {
		if err := (PBS{}).CheckOptions(args); err != nil {
			t.Errorf("for %q, got %v", args, err)
		}
	}
	bad := map[string][]string{
		"name": {"-N", "x"}, "output": {"-o", "x"}, "output joined": {"-ox"}, "bundle": {"-Vo", "x"},
		"error": {"-e", "x"}, "join": {"-j", "oe"}, "keep": {"-k", "oe"}, "array": {"-J", "1-4"},
		"hold": {"-h"}, "interactive": {"-I"}, "X11": {"-X"}, "foreground": {"-f"}, "no id": {"-z"},
		"block": {"-W", "block=true"}, "block joined": {"-Wblock=true"}, "block among": {"-W", "group_list=lab,block=true"},
		"long": {"--version"}, "script": {"job.sh"}, "missing value": {"-q"}, "shell": {"-S", "/bin/bash"},
	}
	for name, args := range bad {
		if err := (PBS{}).CheckOptions(args); err == nil {
			t.Errorf("%s: %q accepted", name, args)
		}
	}
}

func TestPBSSubmit(t *testing.T) {
	f := &fakeRunner{out: map[string]string{"qsub -q": "105.pbs-head\n"}}
	id, err := (PBS{}).Submit(context.Background(), f.run, Submission{Options: []string{"-q", "workq"}, Name: "tether-abcd2345", Output: "/h/job.out", Script: "/h/job.sh"})
	if err != nil || id != "105.pbs-head" {
		t.Fatalf("got %q, %v", id, err)
	}
	if want := "qsub -q workq -N tether-abcd2345 -o /h/job.out -j oe -S /bin/sh -r n /h/job.sh"; f.calls[0] != want {
		t.Errorf("got %q; want %q", f.calls[0], want)
	}
	f.out["qsub -q"] = "qsub: something else\n"
	if _, err := (PBS{}).Submit(context.Background(), f.run, Submission{Options: []string{"-q", "x"}}); err == nil {
		t.Error("a non-id answer accepted")
	}
}
