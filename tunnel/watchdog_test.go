package tunnel

import (
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// The connect timeout counts running time only: time at a prompt (pause … resume) does
// not count, a resume leaves at least a second, and stop means it never fires. On
// synctest's fake clock: exact instants, no sleeping.
func TestWatchdogCountsRunningTimeOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var fired atomic.Int64 // when, in ns since start
		start := time.Now()
		w := newWatchdog(15*time.Second, func() { fired.Store(int64(time.Since(start))) })
		time.Sleep(10 * time.Second)
		w.pause()
		time.Sleep(time.Hour) // the user reads the host key question
		w.resume()
		time.Sleep(4 * time.Second)
		synctest.Wait()
		if f := fired.Load(); f != 0 {
			t.Fatalf("fired at %v, with 1 s of running time left", time.Duration(f))
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got, want := time.Duration(fired.Load()), time.Hour+15*time.Second; got != want {
			t.Fatalf("fired at %v; want %v (15 s running + 1 h paused)", got, want)
		}

		// Nested pauses; a resume with less than a second left gets a second.
		fired.Store(0)
		start = time.Now()
		w = newWatchdog(3*time.Second, func() { fired.Store(int64(time.Since(start))) })
		time.Sleep(2900 * time.Millisecond)
		w.pause()
		w.pause()
		time.Sleep(time.Minute)
		w.resume()
		time.Sleep(time.Minute) // still paused once
		synctest.Wait()
		if fired.Load() != 0 {
			t.Fatal("fired while still paused")
		}
		w.resume()
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got, want := time.Duration(fired.Load()), 2900*time.Millisecond+2*time.Minute+time.Second; got != want {
			t.Fatalf("fired at %v; want %v (a resume leaves at least 1 s)", got, want)
		}

		// stop: never fires.
		fired.Store(0)
		w = newWatchdog(time.Second, func() { fired.Store(1) })
		w.stop()
		time.Sleep(time.Minute)
		synctest.Wait()
		if fired.Load() != 0 {
			t.Fatal("fired after stop")
		}
	})
}
