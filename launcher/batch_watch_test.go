package launcher

import (
	"bufio"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tether-dev/tether/batch"
	"github.com/tether-dev/tether/wire"
)

// The launcher's side of a batch job's watch, on synctest's fake clock: a run cut off
// (a lost connection) is run again after 1, 2, 3, 4, then 5 s; a run that sent events
// starts the count again; after 20 retries without an event it gives up with the last
// run's reason; a refusal ends it at once; stop ends the pause at once.
func TestSlurmWatchRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var runs []time.Duration
		w := &slurmWatch{}
		lost := func(why string) error { return errors.New("lost track: " + why) }
		err := w.follow(context.Background(), func(ctx context.Context) watchRun {
			runs = append(runs, time.Since(start))
			return watchRun{lost: "connection reset"}
		}, lost)
		if err == nil || err.Error() != "lost track: connection reset" {
			t.Errorf("gave up with %v; want the last run's reason", err)
		}
		if len(runs) != watchRetries+1 {
			t.Fatalf("%d runs; want %d", len(runs), watchRetries+1)
		}
		want := time.Duration(0)
		for i, at := range runs {
			if at != want {
				t.Fatalf("run %d at %v; want %v (runs at %v)", i+1, at, want, runs)
			}
			want += time.Duration(min(i+1, 5)) * time.Second
		}
		if took := time.Since(start); took != 90*time.Second {
			t.Errorf("gave up after %v; want 90 s (1+2+3+4 s, then 16 × 5 s)", took)
		}

		// Events reset the count: a run that sent some is followed by a 1 s pause.
		start, runs = time.Now(), nil
		n := 0
		w.follow(context.Background(), func(ctx context.Context) watchRun {
			runs = append(runs, time.Since(start))
			n++
			switch n {
			case 3:
				return watchRun{got: true, lost: "cut"}
			case 5:
				return watchRun{got: true, ended: true}
			}
			return watchRun{lost: "cut"}
		}, lost)
		if want := []time.Duration{0, time.Second, 3 * time.Second, 4 * time.Second, 6 * time.Second}; !equalDurations(runs, want) {
			t.Errorf("runs at %v; want %v", runs, want)
		}

		// A refusal (the remote's words) ends the watch at once.
		refused := errors.New("watching the batch job on hpc failed: no batch session")
		n = 0
		if err := w.follow(context.Background(), func(ctx context.Context) watchRun { n++; return watchRun{err: refused} }, lost); err != refused || n != 1 {
			t.Errorf("refused: %v after %d runs", err, n)
		}

		// stop during a pause: follow returns at once.
		ctx, cancel := context.WithCancel(context.Background())
		var mu sync.Mutex
		paused := false
		done := make(chan error, 1)
		go func() {
			done <- w.follow(ctx, func(ctx context.Context) watchRun {
				mu.Lock()
				paused = true
				mu.Unlock()
				return watchRun{lost: "cut"}
			}, lost)
		}()
		time.Sleep(500 * time.Millisecond)
		synctest.Wait()
		stopped := time.Now()
		cancel()
		if err := <-done; err != nil || time.Since(stopped) != 0 {
			t.Errorf("stopped in a pause: %v after %v", err, time.Since(stopped))
		}
		mu.Lock()
		defer mu.Unlock()
		if !paused {
			t.Error("never ran")
		}
	})
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// batch submit's command line: the scheduler, each submit option and each serve
// argument its own argument, the setup script on stdin; and its answer read past a
// login shell's chatter: the job, the failure, or a bad line.
func TestBatchSubmitArgsAndAnswer(t *testing.T) {
	o := LaunchOptions{Name: "nb", Setup: "module load cuda", Command: []string{"jupyter", "lab", "--port={port}"}}
	o.Batch.ViaNodeSSH = true
	args, input := batchSubmitArgs(o, batch.SGE{}, []string{"-l", "h_rt=1:00:00"}, true)
	want := []string{"batch", "submit", "--scheduler=sge", "--reuse", "--setup-stdin", "--name=nb", "--option=-l", "--option=h_rt=1:00:00", "--via-node-ssh"}
	if len(args) < len(want) || strings.Join(args[:len(want)], " ") != strings.Join(want, " ") {
		t.Errorf("args %q; want them to start %q", args, want)
	}
	if rest := strings.Join(args[len(want):], " "); !strings.Contains(rest, "--serve=jupyter --serve=lab --serve=--port={port}") || strings.Contains(rest, "--serve=--name") {
		t.Errorf("serve's arguments %q: want the command, each its own --serve=, and no --name", rest)
	}
	if string(input) != string(wire.SetupFrame(o.Setup)) {
		t.Errorf("stdin %q; want the setup frame", input)
	}

	sub := `{"id":"abcdefgh","job_id":"42","output":"/home/u/.local/state/tether/batch/abcdefgh/job.out"}`
	failed := string(wire.Fail(wire.FailBatchRefused, wire.Plain("qsub refused the job"), nil).Line())
	for _, tc := range []struct {
		name, out        string
		sub, failed, bad bool
	}{
		{"broken line first", "Welcome\n{not json\n" + sub + "\n", false, false, true},
		{"queued after chatter", "Welcome\n\n" + sub + "\n", true, false, false},
		{"refused", "Welcome\n" + failed, false, true, false},
		{"bad", `{"id":"../x","job_id":"42","output":"/x"}` + "\n", false, false, true},
		{"nothing", "Welcome\n", false, false, false},
	} {
		ans := readSubmitAnswer(bufio.NewReader(strings.NewReader(tc.out)), "hpc")
		if (ans.sub != nil) != tc.sub || (ans.failed != nil) != tc.failed || (ans.bad != nil) != tc.bad {
			t.Errorf("%s: %+v", tc.name, ans)
		}
		if ans.sub != nil && ans.sub.JobID != "42" {
			t.Errorf("%s: job %q", tc.name, ans.sub.JobID)
		}
	}
}

// stampedLines notes when each line was written, since start.
type stampedLines struct {
	mu    sync.Mutex
	start time.Time
	lines []string
}

func (w *stampedLines) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.lines = append(w.lines, time.Since(w.start).String()+" "+l)
	}
	return len(p), nil
}

func (w *stampedLines) warnings() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var ws []string
	for _, l := range w.lines {
		if strings.Contains(l, "reaches its time limit") {
			ws = append(ws, l)
		}
	}
	return ws
}

// The walltime warnings of a served batch session, on synctest's fake clock: the job's
// time left comes with the watch's job events (once a minute), the warnings from the
// session's walltime ticker; each comes once, within one tick of its point, and a time
// limit extended past a warning's point re-arms it. The loop below is serveLocal's two
// batch arms (serveLocal itself waits on a real listener and SSH: not in a bubble).
func TestWalltimeWarningsOnTheClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		out := &stampedLines{start: time.Now()}
		s := &session{host: "hpc", o: Options{Host: "hpc", Stderr: out, Stdout: out}, status: newStatus(out),
			slurm: &slurmState{id: "abcdefgh", jobID: "42", sched: batch.Slurm{}, tick: time.NewTicker(walltimeTick)}}
		defer s.slurm.tick.Stop()
		rec := wire.Record{ID: "abcdefgh"}
		events := make(chan wire.Event)
		ctx, cancel := context.WithCancel(context.Background())
		served := make(chan struct{})
		go func() {
			defer close(served)
			for {
				select {
				case ev := <-events:
					s.onBatchEvent(ev, rec)
				case <-s.slurmTick():
					s.checkWalltime()
				case <-ctx.Done():
					return
				}
			}
		}()
		defer func() { cancel(); <-served }()
		job := func(left string) {
			events <- wire.Event{Kind: wire.EventJob, Job: wire.JobStatus{JobID: "42", State: "RUNNING", Node: "n1", TimeLeft: left, TimeLimit: "1:00:00"}}
		}
		// 12:03 left at 0; the watch's refreshes each minute agree with the clock.
		job("12:03")
		for m := 1; m <= 9; m++ {
			time.Sleep(time.Minute)
			job(batch.FormatTimeLeft(12*time.Minute + 3*time.Second - time.Duration(m)*time.Minute))
		}
		synctest.Wait()
		// 10 minutes left at 2m03s: the first tick after it is 2m05s. 2 minutes left at
		// 10m03s: not yet (9 minutes have passed).
		if w := out.warnings(); len(w) != 1 || !strings.HasPrefix(w[0], "2m5s ") || !strings.Contains(w[0], "job 42 reaches its time limit in about 10 minutes") {
			t.Fatalf("after 9 minutes, warnings:\n%s", strings.Join(w, "\n"))
		}
		time.Sleep(time.Minute + 5*time.Second)
		synctest.Wait()
		if w := out.warnings(); len(w) != 2 || !strings.HasPrefix(w[1], "10m5s ") || !strings.Contains(w[1], "in about 2 minutes") {
			t.Fatalf("after 10m05s, warnings:\n%s", strings.Join(w, "\n"))
		}

		// scontrol update: an hour more. Both warnings again, at their points, once each.
		job("1:01:55") // at 10m05s: the end is now 1h12m00s
		time.Sleep(time.Hour + 5*time.Minute)
		synctest.Wait()
		w := out.warnings()
		if len(w) != 4 || !strings.HasPrefix(w[2], "1h2m0s ") || !strings.HasPrefix(w[3], "1h10m0s ") {
			t.Errorf("after the extension, warnings:\n%s", strings.Join(w, "\n"))
		}
	})
}
