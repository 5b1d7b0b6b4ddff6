package launcher

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"
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
