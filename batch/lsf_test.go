package batch

import (
	"context"
	"testing"
	"time"
)

// LSF: bjobs -a -json -o FIELDS as documented (testdata/lsf/README: written, not
// recorded).
func TestLSFStatus(t *testing.T) {
	f := &fakeRunner{out: map[string]string{"bjobs -a": testdata(t, "lsf/bjobs-json.json")}}
	jobs, err := (LSF{}).Status(context.Background(), f.run, []string{"5011", "5012", "5009", "5010", "4999"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	at := func(s string) string { return lsfTime(s, now) }
	want := map[string]Job{
		"5011": {JobID: "5011", Name: "tether-abcd2345", State: "RUNNING", Native: "RUN", Node: "node07", TimeLeft: "54:00", TimeLimit: "1:00:00", Start: at("Dec  6 12:00")},
		"5012": {JobID: "5012", Name: "tether-efgh2345", State: "PENDING", Native: "PEND", TimeLeft: "4:00:00", TimeLimit: "4:00:00",
			Reason: "Job slot limit reached", Start: at("Dec  6 13:30 E")},
		"5009": {JobID: "5009", Name: "tether-ijkl2345", State: "COMPLETED", Native: "DONE", Node: "node02", Start: at("Dec  6 11:40")},
		"5010": {JobID: "5010", Name: "tether-mnop2345", State: "CANCELLED", Native: "EXIT", Node: "node03", TimeLimit: "30:00", Start: at("Dec  6 11:50")},
	}
	if len(jobs) != len(want) {
		t.Errorf("got %d jobs: %+v", len(jobs), jobs)
	}
	for id, w := range want {
		if jobs[id] != w {
			t.Errorf("for job %s, got %+v; want %+v", id, jobs[id], w)
		}
		if err := w.Validate(); err != nil {
			t.Errorf("job %s: %v", id, err)
		}
	}
	if w := want["5011"].Start; w == "" {
		t.Error("bjobs' start time not read")
	}
	if f.calls[0] != "bjobs -a -json -o "+bjobsFields+" 5011 5012 5009 5010 4999" {
		t.Errorf("calls: %q", f.calls)
	}
	f.out["bjobs -a"] = `{"COMMAND":"bjobs","JOBS":1,"RECORDS":[{"JOBID":"5010","EXIT_CODE":"130"}]}`
	if got := (LSF{}).Finished(context.Background(), f.run, "5010"); got != "130:0" {
		t.Errorf("Finished: %q", got)
	}
}

func TestLSFTimes(t *testing.T) {
	for in, want := range map[string]string{"0:54 L": "54:00", "12:05 E": "12:05:00", "0:00 X": "0:00", "-": "", "": "", "x": ""} {
		if got := timeLeftLSF(in); got != want {
			t.Errorf("time_left %q: got %q; want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"60.0/node07": "1:00:00", "240.0/login1": "4:00:00", "-": "", "0.5/h": "0:30"} {
		if got := runLimitLSF(in); got != want {
			t.Errorf("runtimelimit %q: got %q; want %q", in, got, want)
		}
	}
	now := time.Date(2026, 1, 3, 10, 0, 0, 0, time.Local)
	if got := lsfTime("Dec 30 23:00", now); got != time.Date(2025, 12, 30, 23, 0, 0, 0, time.Local).Format(time.RFC3339) {
		t.Errorf("a December start seen in January: %q", got)
	}
}

func TestLSFCheckOptionsAndSubmit(t *testing.T) {
	ok := [][]string{nil, {"-q", "normal", "-W", "4:00", "-n", "4", "-R", "span[hosts=1]", "-gpu", "num=1", "-P", "proj"}}
	for _, args := range ok {
		if err := (LSF{}).CheckOptions(args); err != nil {
			t.Errorf("for %q, got %v", args, err)
		}
	}
	bad := map[string][]string{
		"name": {"-J", "x"}, "output": {"-o", "x"}, "output over": {"-oo", "x"}, "error": {"-e", "x"},
		"wait": {"-K"}, "interactive": {"-Is"}, "hold": {"-H"}, "input": {"-i", "f"}, "script": {"job.sh"},
		"missing value": {"-q"}, "pack": {"-pack", "f"},
	}
	for name, args := range bad {
		if err := (LSF{}).CheckOptions(args); err == nil {
			t.Errorf("%s: %q accepted", name, args)
		}
	}
	f := &fakeRunner{out: map[string]string{"bsub -q": "Job <5013> is submitted to queue <normal>.\n"}}
	id, err := (LSF{}).Submit(context.Background(), f.run, Submission{Options: []string{"-q", "normal"}, Name: "tether-abcd2345", Output: "/h/job.out", Script: "/h/job.sh"})
	if err != nil || id != "5013" {
		t.Fatalf("got %q, %v", id, err)
	}
	if want := "bsub -q normal -J tether-abcd2345 -oo /h/job.out -eo /h/job.out -i /dev/null /bin/sh /h/job.sh"; f.calls[0] != want {
		t.Errorf("got %q; want %q", f.calls[0], want)
	}
}
