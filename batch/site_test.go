package batch

import (
	"context"
	"testing"
)

// A site's wrapper: tether-batch-NAME submit|status|cancel, its words as it prints
// them; lines that do not read as a job are left out.
func TestSiteScheduler(t *testing.T) {
	s, err := Lookup("mysite")
	if err != nil || s.Name() != "mysite" || s.Flag() != "--batch mysite" {
		t.Fatalf("Lookup: %v %v", s, err)
	}
	for _, bad := range []string{"My Site", "../x", "-x", "a;b", ""} {
		if bad == "" {
			continue // "" is Slurm
		}
		if _, err := Lookup(bad); err == nil {
			t.Errorf("Lookup(%q) accepted", bad)
		}
	}
	f := &fakeRunner{out: map[string]string{
		"tether-batch-mysite submit": "77\n",
		"tether-batch-mysite status": "77|tether-abcd2345|RUNNING|node3|59:00|1:00:00|2026-12-06T12:00:00|None\n" +
			"78|x|running|node3|1:00|1:00|N/A|None\n" + // a state not in Slurm's words
			"garbage\n",
	}}
	id, err := s.Submit(context.Background(), f.run, Submission{Options: []string{"-q", "gpu"}, Name: "tether-abcd2345", Output: "/h/job.out", Script: "/h/job.sh"})
	if err != nil || id != "77" {
		t.Fatalf("Submit: %q, %v", id, err)
	}
	if want := "tether-batch-mysite submit tether-abcd2345 /h/job.out /h/job.sh -q gpu"; f.calls[0] != want {
		t.Errorf("got %q; want %q", f.calls[0], want)
	}
	jobs, err := s.Status(context.Background(), f.run, []string{"77", "78"})
	if err != nil || len(jobs) != 1 || jobs["77"].Node != "node3" || jobs["77"].TimeLimit != "1:00:00" {
		t.Errorf("Status: %+v, %v", jobs, err)
	}
	if err := s.Cancel(context.Background(), f.run, "77", "tether-abcd2345"); err != nil || f.calls[len(f.calls)-1] != "tether-batch-mysite cancel 77 tether-abcd2345" {
		t.Errorf("Cancel: %v, %q", err, f.calls)
	}
	if err := s.CheckOptions([]string{"job.sh"}); err == nil {
		t.Error("a script word accepted")
	}
}
