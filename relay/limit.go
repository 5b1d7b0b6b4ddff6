package relay

import (
	"net/netip"
	"sync"
	"time"
)

// Refused tokens are limited per source: each source (an IPv4 address, an IPv6 /64)
// has a bucket of failBurst refusals that refills by one every failEvery. While a
// source's bucket is empty, its requests whose token is refused get 429 with
// Retry-After instead of 401, and the router logs the start of the flood once instead
// of a line per request. A valid token is still checked and passes: an Ed25519
// signature cannot be guessed, so the limit is there to quiet a flood and tell a
// misconfigured end to back off, never to lock out the holder of a good token behind
// the same NAT (or behind a TLS proxy on loopback, where every source is the proxy).
//
// The shape is tokenserver's failureLimiter (ratelimit.go), cut to what the router
// needs (no take/refund, no loopback-wide bucket): relay imports none of our packages.
const (
	failBurst  = 10
	failEvery  = 6 * time.Second // 10 a minute once the burst is spent
	maxSources = 4096            // buckets kept; beyond, new sources share one
)

type bucket struct {
	units float64
	last  time.Time
}

type failLimits struct {
	mu       sync.Mutex
	m        map[netip.Prefix]*bucket
	overflow bucket
}

// refill brings b up to now; a clock going backwards refills nothing.
func (b *bucket) refill(now time.Time) {
	if b.last.IsZero() {
		b.units, b.last = failBurst, now
	}
	if now.After(b.last) {
		b.units = min(failBurst, b.units+float64(now.Sub(b.last))/float64(failEvery))
		b.last = now
	}
}

// get is src's bucket, refilled to now; l.mu held.
func (l *failLimits) get(src netip.Prefix, now time.Time) *bucket {
	if l.m == nil {
		l.m = map[netip.Prefix]*bucket{}
	}
	b := l.m[src]
	if b == nil {
		if len(l.m) >= maxSources {
			for k, v := range l.m { // drop the rested ones: they hold nothing
				if v.refill(now); v.units >= failBurst {
					delete(l.m, k)
				}
			}
		}
		if len(l.m) >= maxSources {
			b = &l.overflow
		} else {
			b = &bucket{}
			l.m[src] = b
		}
	}
	b.refill(now)
	return b
}

// fail records a refused token from src. limited: its bucket was empty already (answer
// 429, wait retry); first: this refusal emptied it (log the flood's start once).
func (l *failLimits) fail(src netip.Prefix, now time.Time) (limited, first bool, retry time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.get(src, now)
	if b.units < 1 {
		return true, false, time.Duration((1 - b.units) * float64(failEvery))
	}
	b.units--
	return false, b.units < 1, 0
}

// sourceOf is the source a request's RemoteAddr counts against: its IPv4 address, or
// its IPv6 /64 (one host's usual share).
func sourceOf(remoteAddr string) netip.Prefix {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.Prefix{}
	}
	ip := ap.Addr().Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p
	}
	return netip.PrefixFrom(ip, 32)
}
