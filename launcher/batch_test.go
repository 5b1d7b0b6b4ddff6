package launcher

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/batch"
	"github.com/tether-dev/tether/wire"
)

func TestSplitOptions(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"   \t\n ", nil},
		{"-p gpu --gres=gpu:1 -t 4:00:00", []string{"-p", "gpu", "--gres=gpu:1", "-t", "4:00:00"}},
		{"  -p   gpu\t-N1 ", []string{"-p", "gpu", "-N1"}},
		{"--comment 'two words'", []string{"--comment", "two words"}},
		{`--comment 'it''s'`, []string{"--comment", "its"}},
		{`--comment '$HOME ` + "`id`" + ` ; | & * ? ~'`, []string{"--comment", "$HOME `id` ; | & * ? ~"}},
		{`--comment "a \"quoted\" \\ \$ \` + "`" + ` word"`, []string{"--comment", "a \"quoted\" \\ $ ` word"}},
		{`--comment "back\slash"`, []string{"--comment", `back\slash`}},
		{`--comment "don't"`, []string{"--comment", "don't"}},
		{`--comment a\ b\'c`, []string{"--comment", "a b'c"}},
		{`--comment '' -p x`, []string{"--comment", "", "-p", "x"}},
		{`--comment ""`, []string{"--comment", ""}},
		{`-J"x"y'z'`, []string{"-Jxyz"}},
		{`-C "intel&ib"`, []string{"-C", "intel&ib"}},
		{"--nodelist=node[01-04]", []string{"--nodelist=node[01-04]"}},
		{"--x=a~b --y=a#b", []string{"--x=a~b", "--y=a#b"}},
		{"-p gpu \\\n -t 1", []string{"-p", "gpu", "-t", "1"}},
		{"-p g\\\npu", []string{"-p", "gpu"}},
		{"\"multi\nline\"", []string{"multi\nline"}},
		{"-p\u00a0gpu", []string{"-p\u00a0gpu"}}, // only ASCII blanks separate, as in sh
	}
	for _, tt := range tests {
		got, err := SplitOptions(tt.in)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("for %q, got %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	refused := []struct{ in, why string }{
		{"-D $HOME/work", `"$HOME"`},
		{`-D "$HOME/work"`, `"$HOME"`},
		{"--comment ${X}", `"${X}"`},
		{`--comment "$(id)"`, `"$(id)"`},
		{"--comment `id`", "backquote"},
		{"--comment \"`id`\"", "backquote"},
		{"-p gpu; rm -rf x", `";"`},
		{"-p gpu | cat", `"|"`},
		{"-p gpu & ", `"&"`},
		{"-p gpu && echo", `"&"`},
		{"-p gpu > out", `">"`},
		{"-p gpu < in", `"<"`},
		{"-p (gpu)", `"("`},
		{"--nodelist=n*", `"*"`},
		{"--nodelist=n?", `"?"`},
		{"-D ~/work", "leading ~"},
		{"-p gpu #comment", "leading #"},
		{"--comment 'open", "unterminated single quote"},
		{`--comment "open`, "unterminated double quote"},
		{`--comment "open\"`, "unterminated double quote"},
		{`-t 1\`, "ends with a backslash"},
	}
	for _, tt := range refused {
		got, err := SplitOptions(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.why) {
			t.Errorf("for %q, got %q, %v; want an error about %s", tt.in, got, err, tt.why)
		}
	}
	// Expansions are refused with the way out.
	_, err := SplitOptions("-D $HOME")
	if err == nil || !strings.Contains(err.Error(), "without a shell") || !strings.Contains(err.Error(), "single quotes") {
		t.Errorf("error %v: want it to say tether uses no shell and how to quote", err)
	}
}

// SbatchArgs adds sbatch's own checks: options tether sets itself, and words that are
// not options.
func TestSbatchArgs(t *testing.T) {
	if got, err := SbatchArgs("-p gpu -t 1:00:00 --exclusive -N 1"); err != nil || len(got) != 7 {
		t.Errorf("got %q, %v", got, err)
	}
	if got, err := SbatchArgs("-p gpu --gres=gpu:1 -t 4:00:00 -N1 -c4 --mem=8G"); err != nil || len(got) != 8 {
		t.Errorf("got %q, %v", got, err)
	}
	// Issue 11 item 7(c): read as sbatch's getopt_long reads them.
	_, err := SbatchArgs("-p gpu --out=/tmp/x")
	if want := "--slurm option --out=/tmp/x (sbatch reads it as --output) is tether's own: the job's output goes to the session's private directory; drop it"; err == nil || err.Error() != want {
		t.Errorf("got %v; want %q", err, want)
	}
	for _, in := range []string{"--out=/tmp/x", "--job=x", "--arr=0-3", "-vo/tmp/x", "-Qa0-3", "-o/tmp/x", "--output /tmp/x", "-J x",
		"-o out", "--output=x", "-Jname", "--job-name x", "-e err", "--wrap 'x'", "--array=1-3", "-W", "--test-only", "script.sh", "-p gpu script.sh", "--exclusive script.sh", "-p gpu --", "$HOME"} {
		_, err := SbatchArgs(in)
		var le *Error
		if err == nil || !errors.As(err, &le) || le.ExitCode() != 2 || !strings.HasPrefix(le.Msg, "--slurm") {
			t.Errorf("for %q, got %v; want a usage error", in, err)
		}
	}
}

func TestWalltimeWarnings(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	var w walltime
	w.observe("4:00:00", "", t0)
	steps := []struct {
		at   time.Duration
		want bool
	}{
		{0, false}, {3*time.Hour + 49*time.Minute, false},
		{3*time.Hour + 50*time.Minute, true}, // 10 minutes left
		{3*time.Hour + 51*time.Minute, false},
		{3*time.Hour + 57*time.Minute, false},
		{3*time.Hour + 58*time.Minute, true}, // 2 minutes left
		{3*time.Hour + 59*time.Minute, false},
		{5 * time.Hour, false},
	}
	for _, st := range steps {
		if _, got := w.due(t0.Add(st.at)); got != st.want {
			t.Errorf("4 h job, at +%v: due %v; want %v", st.at, got, st.want)
		}
	}

	// Less time left than both warnings: one warning, once.
	var short walltime
	short.observe("0:58", "", t0)
	left, due := short.due(t0)
	if !due || left != 58*time.Second || roundLeft(left) != "about 1 minute" {
		t.Errorf("58 s left: due %v, left %v (%s)", due, left, roundLeft(left))
	}
	if _, due := short.due(t0.Add(10 * time.Second)); due {
		t.Error("a second warning for the same job")
	}

	// No limit, or squeue's INVALID: no warning; INVALID keeps the last good sample.
	var none walltime
	none.observe("UNLIMITED", "", t0)
	if _, due := none.due(t0.Add(1000 * time.Hour)); due {
		t.Error("a warning for an UNLIMITED job")
	}
	var keep walltime
	keep.observe("15:00", "", t0)
	keep.observe("INVALID", "", t0.Add(time.Minute))
	if _, due := keep.due(t0.Add(5 * time.Minute)); !due {
		t.Error("INVALID lost the end time")
	}

	// A time limit extended past a warning's point (scontrol update) re-arms it.
	var ext walltime
	ext.observe("9:00", "", t0)
	if _, due := ext.due(t0); !due {
		t.Fatal("no 10-minute warning with 9 minutes left")
	}
	t1 := t0.Add(time.Minute)
	ext.observe("1:00:00", "", t1)
	if _, due := ext.due(t1.Add(50 * time.Minute)); !due {
		t.Error("an extended job is not warned again at 10 minutes")
	}

	// A -t 10 job: its 10-minute warning would come at its start (9:59 left); it gets
	// the 2-minute one only. A -t 2 job, shorter than every warning, gets one at once.
	var ten walltime
	ten.observe("9:59", "10:00", t0)
	if _, due := ten.due(t0); due {
		t.Error("a -t 10 job is warned at its start")
	}
	if _, due := ten.due(t0.Add(7*time.Minute + 59*time.Second)); !due {
		t.Error("a -t 10 job is not warned 2 minutes before its end")
	}
	var two walltime
	two.observe("1:59", "2:00", t0)
	if _, due := two.due(t0); !due {
		t.Error("a -t 2 job is not warned at once")
	}
	var long walltime
	long.observe("9:00", "1:00:00", t0) // attached late to a one-hour job
	if _, due := long.due(t0); !due {
		t.Error("no 10-minute warning for a one-hour job with 9 minutes left")
	}

	for d, want := range map[time.Duration]string{
		30 * time.Second: "less than a minute", 58 * time.Second: "about 1 minute",
		9*time.Minute + 50*time.Second: "about 10 minutes", 2 * time.Minute: "about 2 minutes",
	} {
		if got := roundLeft(d); got != want {
			t.Errorf("roundLeft(%v) = %q; want %q", d, got, want)
		}
	}
}

func testSession(buf *bytes.Buffer) *session {
	return &session{host: "hpc", o: Options{Host: "hpc", Stderr: buf, Stdout: buf}, status: newStatus(buf),
		slurm: &slurmState{id: "abcdefgh", jobID: "42", sched: batch.Slurm{}}}
}

// A job that ends before its server is ready: why, in words, with its output; the
// cases where the node cannot see the login node's home get their own message.
func TestEndedBeforeReady(t *testing.T) {
	tests := []struct {
		name      string
		ev        wire.Event
		msg, hint []string
		printed   string
	}{
		{"binary not on the node",
			wire.Event{Kind: wire.EventEnded, Job: wire.JobStatus{JobID: "42", State: "FAILED", Reason: "NonZeroExitCode", Node: "n1"},
				ExitCode: "97:0", NotVisible: true, OutputSeen: true, OutputPath: "/h/x/job.out", Output: []string{"tether: /h/.cache/tether/bin/t is not on node n1"}},
			[]string{"job 42 on n1 could not run tether", "not visible on the node"}, []string{"share your home directory with hpc"}, "is not on node n1"},
		{"output file not there",
			wire.Event{Kind: wire.EventEnded, Job: wire.JobStatus{JobID: "42", State: "FAILED", Reason: "JobLaunchFailure", Node: "n1"},
				ExitCode: "0:53", OutputPath: "/h/x/job.out"},
			[]string{"job 42 failed (JobLaunchFailure, exit code 0:53)", "/h/x/job.out is not on hpc", "cannot see the session directory"}, []string{"share your home directory"}, ""},
		{"the app failed",
			wire.Event{Kind: wire.EventEnded, Job: wire.JobStatus{JobID: "42", State: "FAILED", Reason: "NonZeroExitCode", Node: "n1"},
				ExitCode: "1:0", OutputSeen: true, Output: []string{"boom"},
				Exit: `the app exited with status 3 before it was ready (last output: "boom"); check the command and try again`,
				Why:  wire.Fail(wire.FailAppExited, wire.Plain(`the app exited with status 3 before it was ready (last output: "boom")`), wire.Plain("check the command and try again"))},
			[]string{"job 42 failed (NonZeroExitCode) before tether was ready on n1: the app exited with status 3"}, []string{"fix the command or the --slurm options", "nothing was left queued or running"}, "  | boom"},
		{"the setup failed",
			wire.Event{Kind: wire.EventEnded, Job: wire.JobStatus{JobID: "42", State: "FAILED", Reason: "NonZeroExitCode", Node: "n1"},
				ExitCode: "1:0", OutputSeen: true, Output: []string{"module: not found"}, Exit: "the setup failed in your login shell (bash) with status 127",
				Why: &wire.Failure{Kind: wire.FailSetupFailed, Said: wire.Plain("the setup failed in your login shell (bash) with status 127"), OutputOf: wire.OutputSetup}},
			[]string{"before tether was ready on n1: the setup failed in your login shell (bash) with status 127"}, []string{"fix --setup", "srun --pty"}, "module: not found"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		s := testSession(&buf)
		err := s.endedBeforeReady(tt.ev)
		var le *Error
		if !errors.As(err, &le) {
			t.Fatalf("%s: %v", tt.name, err)
		}
		for _, m := range tt.msg {
			if !strings.Contains(le.Msg, m) {
				t.Errorf("%s: message %q lacks %q", tt.name, le.Msg, m)
			}
		}
		for _, h := range tt.hint {
			if !strings.Contains(le.Hint, h) {
				t.Errorf("%s: hint %q lacks %q", tt.name, le.Hint, h)
			}
		}
		if strings.Count(le.Error(), "check the command and try again") > 0 {
			t.Errorf("%s: serve's advice kept: %q", tt.name, le.Error())
		}
		if !strings.Contains(buf.String(), tt.printed) {
			t.Errorf("%s: printed %q; want %q", tt.name, buf.String(), tt.printed)
		}
	}
}

// Ctrl-C while the job waits: --detach-pending and a "no" leave it queued (and say how
// to come back); no terminal or a "yes" cancel it; attach never cancels.
func TestInterruptedWaiting(t *testing.T) {
	ask := func(yes, ok bool) func(string) (bool, bool) {
		return func(string) (bool, bool) { return yes, ok }
	}
	tests := []struct {
		name     string
		so       BatchOptions
		launched bool
		leave    bool
		says     string
	}{
		{"detach-pending", BatchOptions{DetachPending: true, Confirm: ask(true, true)}, true, true, "stays queued"},
		{"no terminal", BatchOptions{Confirm: ask(false, false)}, true, false, "not a terminal, so cancelling it"},
		{"answered yes", BatchOptions{Confirm: ask(true, true)}, true, false, ""},
		{"answered no", BatchOptions{Confirm: ask(false, true)}, true, true, "attach when it runs: tether attach hpc abcdefgh"},
		{"attach", BatchOptions{Confirm: ask(true, true)}, false, true, "cancel it:           tether stop hpc abcdefgh"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		s := testSession(&buf)
		s.slurm.last = wire.JobStatus{JobID: "42", State: "PENDING"}
		err := s.interruptedWaiting(tt.so, tt.launched)
		if got := errors.Is(err, errDetachedPending); got != tt.leave {
			t.Errorf("%s: left queued %v (%v); want %v", tt.name, got, err, tt.leave)
		}
		if !tt.leave {
			var le *Error
			if !errors.As(err, &le) || le.Code != 130 || !strings.Contains(le.Msg, "cancelled job 42 (PENDING)") {
				t.Errorf("%s: %v; want the cancellation, exit 130", tt.name, err)
			}
		}
		if !strings.Contains(buf.String(), tt.says) {
			t.Errorf("%s: printed %q; want %q", tt.name, buf.String(), tt.says)
		}
	}
}

// ls --json from a login node: a pending Slurm session (no token yet) is kept with its
// job; a running one is a full record; hostile entries are dropped; attach picks the
// pending one when it is the only one.
func TestDecodeListingSlurm(t *testing.T) {
	pending := map[string]any{"id": "pendingg", "name": "", "state": "pending", "job_id": "7", "command": []string{},
		"started": "2026-11-23T12:00:00Z", "version": "v1",
		"job": map[string]any{"job_id": "7", "name": "tether-pendingg", "state": "PENDING", "reason": "Resources", "time_left": "1:00:00"}}
	running := goodRecord()
	running.ID, running.JobID, running.Node, running.Addr, running.TLS = "runningg", "8", "n1", "10.0.0.5:41234", true
	running.CertSHA256 = strings.Repeat("ab", 32)
	running.URL = "https://10.0.0.5:41234/"
	running.State = wire.StateRunning
	badJob := map[string]any{"id": "badjobid", "state": "pending", "job_id": "7; rm", "started": "2026-11-23T12:00:00Z"}
	badURL := running
	badURL.ID, badURL.URL = "badurlxx", "https://evil.example:1/"
	raw, _ := json.Marshal([]any{pending, running, badJob, badURL})
	recs, err := decodeListing(raw)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]wire.Record{}
	for _, r := range recs {
		byID[r.ID] = r
	}
	if p := byID["pendingg"]; p.JobID != "7" || p.State != wire.StatePending || p.Job == nil || p.Job.Reason != "Resources" {
		t.Errorf("pending session: %+v", p)
	}
	if r := byID["runningg"]; r.Addr != "10.0.0.5:41234" || r.Node != "n1" || !eqSecret(r.Token, running.Token) {
		t.Errorf("running session: %+v", r)
	}
	if r, ok := byID["badjobid"]; ok && (r.JobID != "" || r.Job != nil) {
		t.Errorf("a record with a hostile job id kept it: %+v", r)
	}
	if r, ok := byID["badurlxx"]; ok && r.Token != "" {
		t.Errorf("a record whose URL is not its addr kept its token: %+v", r)
	}
	var buf bytes.Buffer
	s := testSession(&buf)
	got, _, err := pickSession([]wire.Record{byID["pendingg"]}, "", s)
	if err != nil || got.ID != "pendingg" {
		t.Errorf("attach with one pending session: %+v, %v", got, err)
	}
	ended := byID["pendingg"]
	ended.State = wire.StateEnded
	if _, _, err := pickSession([]wire.Record{ended}, "pendingg", s); err == nil || !strings.Contains(err.Error(), "has ended") {
		t.Errorf("attach to an ended session: %v", err)
	}
}

// The line while a job waits says for how long and when the scheduler expects it to
// start, in the scheduler's words, and never "PENDING on HOST" (which read as if the
// job waited on the login node).
func TestWaitingLine(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.Local)
	start := now.Add(25 * time.Minute).Format(time.RFC3339)
	tests := []struct {
		job    wire.JobStatus
		waited time.Duration
		coarse bool
		want   []string
	}{
		{wire.JobStatus{JobID: "7", State: "PENDING", Reason: "Resources", Start: start}, 65 * time.Second, false,
			[]string{"job 7 is PENDING (Resources), waiting 1m05s; Slurm expects it to start at 12:25 (in 25m) (Ctrl-C to stop waiting)"}},
		{wire.JobStatus{JobID: "7", State: "PENDING", Reason: "Priority"}, 3*time.Minute + 5*time.Second, true,
			[]string{"job 7 is PENDING (Priority), waiting 3m (Ctrl-C to stop waiting)"}},
		{wire.JobStatus{JobID: "8", State: "PENDING", Native: "qw"}, 5 * time.Second, false,
			[]string{"job 8 is PENDING (qw), waiting 5s (Ctrl-C"}},
		{wire.JobStatus{JobID: "8", State: "RUNNING", Node: "node17"}, 0, false,
			[]string{"job 8 is RUNNING on node17; starting tether serve there"}},
	}
	for _, tt := range tests {
		got := waitingLine(tt.job, "Slurm", tt.waited, now, tt.coarse)
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("for %+v, got %q; want %q", tt.job, got, w)
			}
		}
		if strings.Contains(got, " on hpc") || strings.Contains(got, "on login") {
			t.Errorf("for %+v, got %q: names the login node", tt.job, got)
		}
	}
}

// --via-node-ssh logs in to a node whose ssh_config names no User as the login host's
// User (the same account on the cluster), not as the laptop's user; a node block that
// names a User keeps it. The hint to come back says --via-node-ssh again.
func TestNodeConfigUserAndComeBack(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	os.WriteFile(cfg, []byte("Host hpc\n  HostName 127.0.0.1\n  User alice\nHost gpu*\n  User bob\nHost *\n  IdentityFile "+filepath.Join(dir, "key")+"\n"), 0o600)
	var buf bytes.Buffer
	s := testSession(&buf)
	s.o.ConfigFile = cfg
	for node, want := range map[string]string{"node17": "alice", "gpu3": "bob"} {
		c, err := s.nodeConfig(node)
		if err != nil || c.User != want {
			t.Errorf("for node %s, got %+v, %v; want user %s", node, c, err, want)
		}
	}
	if got := s.cmdline("attach", "abcdefgh"); strings.Contains(got, "--via-node-ssh") {
		t.Errorf("without --via-node-ssh: %q", got)
	}
	s.viaNode = true
	if got := s.cmdline("attach", "abcdefgh"); got != "tether attach -F "+cfg+" hpc --via-node-ssh abcdefgh" {
		t.Errorf("with --via-node-ssh: %q", got)
	}
}

// The hint to start a session anew names the real scheduler options (the record keeps
// them), not a literal "…".
func TestRelaunchLine(t *testing.T) {
	var buf bytes.Buffer
	s := testSession(&buf)
	tests := []struct {
		rec  wire.Record
		want string
	}{
		{wire.Record{JobID: "5", BatchOptions: []string{"-p", "gpu", "-t", "10"}, App: "jupyter"}, "tether launch hpc --slurm '-p gpu -t 10' jupyter"},
		{wire.Record{JobID: "5"}, "tether launch hpc --slurm ''"},
		{wire.Record{JobID: "5", Scheduler: "sge", BatchOptions: []string{"-q", "all.q", "-l", "h_rt=1:00:00"}, ViaNodeSSH: true}, "tether launch hpc --sge '-q all.q -l h_rt=1:00:00' --via-node-ssh"},
		{wire.Record{JobID: "5", Scheduler: "mysite", BatchOptions: []string{"--comment", "a b"}}, `tether launch hpc --batch 'mysite --comment '\''a b'\'''`},
		{wire.Record{}, "tether launch hpc"},
	}
	for _, tt := range tests {
		got := s.relaunchLine(tt.rec)
		if got != tt.want {
			t.Errorf("for %+v, got %q; want %q", tt.rec, got, tt.want)
		}
		if strings.Contains(got, "…") {
			t.Errorf("%q holds a literal …", got)
		}
	}
	// What the hint gives back splits into the same options.
	words, err := SplitOptions("mysite --comment 'a b'")
	if err != nil || len(words) != 3 || words[2] != "a b" {
		t.Errorf("split back: %q, %v", words, err)
	}
}
