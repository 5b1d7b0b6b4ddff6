package tokenserver

import (
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// failureLimiter is a token bucket of allowed failed attempts: one global bucket for
// loopback listeners, because all tunnel traffic arrives from 127.0.0.1 and
// per-address limits would mean nothing there; one per source address beyond
// loopback (sourceLimits).
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

// take spends a unit if the bucket has one, before an expensive check (an access key's
// argon2id): only then may the check run. A caller whose check succeeds gives the unit
// back with refund. Spending first keeps concurrent attempts from running more checks
// than the bucket holds. nowLimited is fail's: this unit was the last one since the
// bucket last had room (the caller logs the start of a flood if the check fails).
func (l *failureLimiter) take(now time.Time) (ok, nowLimited bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refill(now)
	if l.units < 1 {
		return false, false
	}
	l.units--
	if l.units >= 1 {
		l.warned = false
		return true, false
	}
	if !l.warned {
		l.warned = true
		return true, true
	}
	return true, false
}

// refund gives back a unit spent by take on a check that succeeded.
func (l *failureLimiter) refund() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.units = min(l.units+1, l.burst)
}

// rested reports whether the bucket is full again: it holds nothing worth keeping.
func (l *failureLimiter) rested(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refill(now)
	return l.units >= l.burst
}

// sourceLimits are the failure buckets of a listener beyond loopback, one per source
// address (an IPv6 /64 counts as one, as in connguard.go): there addresses mean
// something, and one address's flood must not slow another's sign-in. At most
// maxSources buckets are kept; those that have rested full are dropped first, and if
// every one is busy, new sources share one overflow bucket.
type sourceLimits struct {
	burst    int
	every    time.Duration
	mu       sync.Mutex
	m        map[netip.Prefix]*failureLimiter
	overflow *failureLimiter
}

const maxSources = 4096

func newSourceLimits(burst int, every time.Duration) *sourceLimits {
	return &sourceLimits{burst: burst, every: every, m: map[netip.Prefix]*failureLimiter{},
		overflow: newFailureLimiter(burst, every)}
}

func (s *sourceLimits) get(src netip.Prefix, now time.Time) *failureLimiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.m[src]; ok {
		return l
	}
	if len(s.m) >= maxSources {
		for k, l := range s.m {
			if l.rested(now) {
				delete(s.m, k)
			}
		}
		if len(s.m) >= maxSources {
			return s.overflow
		}
	}
	l := newFailureLimiter(s.burst, s.every)
	s.m[src] = l
	return l
}

// limiterFor is the failure bucket a request counts against: its source address's on
// a connection that reached a listener beyond loopback, else the one global bucket
// (behind SSH every request comes from 127.0.0.1, and a local attacker could pick
// any address of 127.0.0.0/8, so per-address buckets would mean nothing there).
func (s *Server) limiterFor(r *http.Request) *failureLimiter {
	la, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	tcp, ok := la.(*net.TCPAddr)
	if !ok || tcp.IP.IsLoopback() {
		return s.limiter
	}
	src := sourceOfHostPort(r.RemoteAddr)
	if !src.IsValid() || src.Addr().IsLoopback() {
		return s.limiter
	}
	return s.sources.get(src, s.now())
}
