package batch

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// Lines as squeue prints them (Slurm 22.05.8) with squeueFormat (%S is the start, or
// for a pending job the expected start; N/A when Slurm has none).
func TestParseSqueue(t *testing.T) {
	out := "5|tether-abcd2345|RUNNING|vm|59:58|1:00:00|2026-12-06T12:00:00|None\n" +
		"6|tether-efgh2345|PENDING||1:00:00|1:00:00|N/A|Resources\n" +
		"7|tether-ijkl2345|PENDING||1-00:00:00|1-00:00:00|2026-12-06T13:30:00|Nodes required for job are DOWN, DRAINED or reserved for jobs in higher priority partitions\n" +
		"8|blocker|COMPLETING|node[01-02]|4:57|10:00|2026-12-06T12:00:00|None\n" +
		"9|x|CANCELLED|(null)|1:00|1:00|N/A|None\n" +
		"garbage line\n\n"
	jobs, err := parseSqueue(out)
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) string {
		tm, err := time.ParseInLocation("2006-01-02T15:04:05", s, time.Local)
		if err != nil {
			t.Fatal(err)
		}
		return tm.Format(time.RFC3339)
	}
	want := map[string]Job{
		"5": {JobID: "5", Name: "tether-abcd2345", State: "RUNNING", Node: "vm", TimeLeft: "59:58", TimeLimit: "1:00:00", Start: at("2026-12-06T12:00:00"), Reason: "None"},
		"6": {JobID: "6", Name: "tether-efgh2345", State: "PENDING", TimeLeft: "1:00:00", TimeLimit: "1:00:00", Reason: "Resources"},
		"7": {JobID: "7", Name: "tether-ijkl2345", State: "PENDING", TimeLeft: "1-00:00:00", TimeLimit: "1-00:00:00", Start: at("2026-12-06T13:30:00"),
			Reason: "Nodes required for job are DOWN, DRAINED or reserved for jobs in higher priority partitions"},
		"8": {JobID: "8", Name: "blocker", State: "COMPLETING", Node: "node[01-02]", TimeLeft: "4:57", TimeLimit: "10:00", Start: at("2026-12-06T12:00:00"), Reason: "None"},
		"9": {JobID: "9", Name: "x", State: "CANCELLED", TimeLeft: "1:00", TimeLimit: "1:00", Reason: "None"},
	}
	if len(jobs) != len(want) {
		t.Errorf("got %d jobs: %+v", len(jobs), jobs)
	}
	for id, w := range want {
		if jobs[id] != w {
			t.Errorf("for job %s, got %+v; want %+v", id, jobs[id], w)
		}
	}
	for _, bad := range []string{"x|y\n", "abc|n|RUNNING|vm|1:00|1:00|N/A|None\n", "5|n|running|vm|1:00|1:00|N/A|None\n", "5|n|RUN NING|vm|1:00|1:00|N/A|None\n"} {
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
		if !Ended(st) {
			t.Errorf("%q is not ended", st)
		}
	}
	for _, st := range []string{"PENDING", "RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED", "REQUEUED", "SIGNALING", "STAGE_OUT"} {
		if Ended(st) {
			t.Errorf("%q is ended", st)
		}
	}
	if !IsPending("PENDING") || IsPending("RUNNING") || !IsPending("REQUEUE_HOLD") {
		t.Error("JobPending")
	}
	if EndedHow("TIMEOUT") != "reached its time limit" || EndedHow("") == "" || EndedHow("WEIRD") != "weird" {
		t.Error("EndedHow")
	}
	never := []string{"PartitionTimeLimit", "PartitionConfig", "PartitionNodeLimit", "InvalidAccount", "InvalidQOS",
		"AccountNotAllowed", "QOSNotAllowed", "BadConstraints", "DependencyNeverSatisfied",
		"QOSMaxWallDurationPerJobLimit", "AssocMaxCpuPerJobLimit", "QOSMaxGRESPerJob", "QOSMinCpuNotSatisfied"}
	for _, r := range never {
		if n, ok := (Slurm{}).NeverStarts(Job{State: "PENDING", Reason: r}, "hpc"); !ok || n.Why == "" || n.Hint == "" {
			t.Errorf("%s: never starts %v (%+v)", r, ok, n)
		}
	}
	resolves := []string{"None", "", "Resources", "Priority", "Dependency", "BeginTime", "JobHeldUser", "JobHeldAdmin",
		"QOSMaxCpuPerUserLimit", "AssocGrpCpuLimit", "AssocGrpJobsLimit", "ReqNodeNotAvail, UnavailableNodes:n1", "PartitionDown",
		"Nodes required for job are DOWN, DRAINED or reserved for jobs in higher priority partitions", "Licenses", "Reservation"}
	for _, r := range resolves {
		if n, ok := (Slurm{}).NeverStarts(Job{State: "PENDING", Reason: r}, "hpc"); ok {
			t.Errorf("%s: never starts (%+v)", r, n)
		}
	}
}

func TestCheckSbatchArgs(t *testing.T) {
	ok := [][]string{
		nil,
		{"-p", "gpu", "--gres=gpu:1", "-t", "4:00:00"},
		{"-pgpu", "-t1:00:00", "-N", "1", "--exclusive", "-A", "proj"},
		{"--partition", "gpu", "--mem=4G", "-c", "4", "--export=ALL", "--comment", "-dashed"},
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
		"hold":          {"--hold"},
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

func TestSbatchHints(t *testing.T) {
	for msg, want := range map[string]string{
		"sbatch refused the job: invalid partition specified: nosuch; Batch job submission failed: Invalid partition name specified": "sinfo -s",
		"sbatch refused the job: Batch job submission failed: Requested time limit is invalid (missing or exceeds some limit)":       "less time with -t",
		"sbatch refused the job: Invalid --time specification":                                                                       "MINUTES, H:MM:SS",
		"sbatch refused the job: Batch job submission failed: Invalid account or account/partition combination specified":            "sacctmgr",
		"sbatch refused the job: Batch job submission failed: Requested node configuration is not available":                         "sinfo -o '%P %c %m %G'",
	} {
		if got := (Slurm{}).SubmitHint(msg, "hpc"); !strings.Contains(got, want) {
			t.Errorf("for %q, got %q; want %q", msg, got, want)
		}
	}
	for reason, want := range map[string]string{
		"PartitionTimeLimit": "less time with -t", "PartitionConfig": "less time with -t, or fewer nodes",
		"InvalidAccount": "sacctmgr", "InvalidQOS": "sacctmgr", "QOSMaxWallDurationPerJobLimit": "less time",
		"DependencyNeverSatisfied": "--dependency",
	} {
		if got, _ := (Slurm{}).NeverStarts(Job{State: "PENDING", Reason: reason}, "hpc"); !strings.Contains(got.Hint, want) {
			t.Errorf("for %s, got %q; want %q", reason, got.Hint, want)
		}
	}
}
