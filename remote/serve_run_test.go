//go:build unix

package remote

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// awaitEndAsync runs awaitEnd in the bubble and reports what ended it and when.
type endResult struct {
	end ending
	err error
	at  time.Duration // since start
}

func awaitEndAsync(ctx context.Context, gateFailed <-chan error, appDone <-chan struct{}, act *activity, idle time.Duration) <-chan endResult {
	start := time.Now()
	got := make(chan endResult, 1)
	go func() {
		end, err := awaitEnd(ctx, gateFailed, appDone, act, idle)
		got <- endResult{end, err, time.Since(start)}
	}()
	return got
}

// The idle timeout counts from the last activity, checked every quarter of the timeout
// (at most every second): traffic keeps the session, and it ends at the first check at
// least the timeout after the last touch. On synctest's fake clock: exact instants.
func TestAwaitEndIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		act := newActivity()
		got := awaitEndAsync(t.Context(), nil, nil, act, 2*time.Second) // checks every 501 ms
		for range 8 {
			time.Sleep(300 * time.Millisecond)
			act.touch()
		}
		// Last touch at 2.4 s: idle from 4.4 s, seen at the check at 9 × 501 ms.
		time.Sleep(2*time.Second - time.Millisecond)
		synctest.Wait()
		select {
		case r := <-got:
			t.Fatalf("ended at %v, before 2 s without activity", r.at)
		default:
		}
		time.Sleep(time.Second)
		synctest.Wait()
		select {
		case r := <-got:
			if r.end != endIdle || r.err != nil {
				t.Fatalf("ended by %v (%v), want the idle timeout", r.end, r.err)
			}
			if want := 9 * 501 * time.Millisecond; r.at != want {
				t.Fatalf("ended at %v, want %v (the first check 2 s after the last touch at 2.4 s)", r.at, want)
			}
		default:
			t.Fatal("still waiting 3 s after the last activity, with a 2 s idle timeout")
		}

		// A long timeout is checked every second: it ends exactly on time.
		act = newActivity()
		got = awaitEndAsync(t.Context(), nil, nil, act, time.Hour)
		time.Sleep(time.Hour + time.Second)
		synctest.Wait()
		select {
		case r := <-got:
			if r.end != endIdle || r.at != time.Hour {
				t.Fatalf("ended by %v at %v, want idle at 1h0m0s", r.end, r.at)
			}
		default:
			t.Fatal("a 1 h idle timeout did not end the session after 1 h")
		}
	})
}

// Without an idle timeout nothing but the other causes ends the session, each reported
// as itself.
func TestAwaitEndCauses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		got := awaitEndAsync(ctx, nil, nil, newActivity(), 0)
		time.Sleep(1000 * time.Hour)
		synctest.Wait()
		select {
		case r := <-got:
			t.Fatalf("ended by %v without an idle timeout", r.end)
		default:
		}
		cancel()
		if r := <-got; r.end != endSignal {
			t.Fatalf("a cancelled ctx ended it as %v", r.end)
		}

		appDone := make(chan struct{})
		got = awaitEndAsync(t.Context(), nil, appDone, newActivity(), time.Minute)
		time.Sleep(30 * time.Second)
		close(appDone)
		if r := <-got; r.end != endAppExited || r.at != 30*time.Second {
			t.Fatalf("the app's exit ended it as %v at %v", r.end, r.at)
		}

		failed := make(chan error, 1)
		got = awaitEndAsync(t.Context(), failed, nil, newActivity(), 0)
		boom := errors.New("accept: too many open files")
		failed <- boom
		if r := <-got; r.end != endGateFailed || r.err != boom {
			t.Fatalf("a listener's failure ended it as %v (%v)", r.end, r.err)
		}
	})
}
