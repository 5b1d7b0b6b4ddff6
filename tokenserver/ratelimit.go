package tokenserver

import (
	"sync"
	"time"
)

// failureLimiter is a token bucket of allowed failed attempts, global because all
// tunnel traffic arrives from 127.0.0.1 and per-address limits would mean nothing.
// Each failure spends one unit; units come back at a steady rate up to the burst.
//
// While the bucket is empty, a request whose credential is wrong gets 429 with
// Retry-After instead of 401. Every presented credential (token, login code, cookie)
// is still checked in constant time, and a valid one passes: a guesser on the same
// host (all tunnel traffic arrives from 127.0.0.1) can never lock the owner out. The
// limit slows a flood and marks it in the log; what stops guessing is the token's 256
// bits (at least 16 URL-safe characters for a custom one).
type failureLimiter struct {
	mu     sync.Mutex
	burst  float64
	every  time.Duration // one unit comes back per `every`
	units  float64
	last   time.Time
	warned bool
}

func newFailureLimiter(burst int, every time.Duration) *failureLimiter {
	return &failureLimiter{burst: float64(burst), every: every, units: float64(burst)}
}

func (l *failureLimiter) refill(now time.Time) {
	switch {
	case l.last.IsZero():
		l.last = now
	case now.After(l.last):
		l.units += float64(now.Sub(l.last)) / float64(l.every)
		if l.units > l.burst {
			l.units = l.burst
		}
		l.last = now
	}
	// A clock that goes backwards refills nothing and moves nothing.
}

// allow reports whether the bucket has room: failures are not being limited now.
func (l *failureLimiter) allow(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refill(now)
	return l.units >= 1
}

// fail records a failed attempt. It reports true the first time the bucket runs dry
// since it last had room, so the caller can log the start of a flood once.
func (l *failureLimiter) fail(now time.Time) (nowLimited bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refill(now)
	if l.units >= 1 {
		l.units--
	}
	if l.units < 1 {
		if !l.warned {
			l.warned = true
			return true
		}
		return false
	}
	l.warned = false
	return false
}

// retryAfter is how long until one more attempt is allowed, in whole seconds (>= 1).
func (l *failureLimiter) retryAfter(now time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refill(now)
	need := 1 - l.units
	if need <= 0 {
		return 1
	}
	secs := int((time.Duration(need*float64(l.every)) + time.Second - 1) / time.Second)
	return max(secs, 1)
}
