package relay

import (
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestRefusedTokensLimited: a source whose tokens keep being refused gets 429 with
// Retry-After once its burst is spent, logged once rather than per request; a good
// token from the same source still passes, and tokens for another role or portal
// (genuine ones) do not count.
func TestRefusedTokensLimited(t *testing.T) {
	r := newRelay(t, Limits{})
	r.listen(t, "lab")
	other := &testRelay{key: testKey(t, "o")}
	bad := other.token(t, RoleClient, "lab", "eve")
	try := func(tok string) (int, string, http.Header) {
		t.Helper()
		h := http.Header{}
		if tok != "" {
			h.Set("Authorization", "Bearer "+tok)
		}
		ws, resp, err := websocket.DefaultDialer.Dial(r.url+"/v1/connect?portal=lab", h)
		if err == nil {
			ws.Close()
			return 101, "", nil
		}
		if resp == nil {
			t.Fatalf("dial: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	wrongRole := r.token(t, RoleHost, "lab", "box")
	for i := 0; i < 3; i++ {
		if st, _, _ := try(wrongRole); st != 403 {
			t.Fatalf("a host token as client: %d; want 403", st)
		}
	}
	for i := 0; i < failBurst; i++ {
		tok := bad
		if i%2 == 1 {
			tok = "" // no token counts as a refusal too
		}
		if st, body, _ := try(tok); st != 401 {
			t.Fatalf("refusal %d: %d %q; want 401 (the burst is %d)", i+1, st, body, failBurst)
		}
	}
	st, body, h := try(bad)
	secs, _ := strconv.Atoi(h.Get("Retry-After"))
	if st != 429 || secs < 1 || secs > int(failEvery/time.Second) || !strings.Contains(body, "too many refused tokens from your address") {
		t.Errorf("refusal %d: %d %q Retry-After %q; want 429 and 1..%d s", failBurst+1, st, body, h.Get("Retry-After"), int(failEvery/time.Second))
	}
	// A good token from the same source still pairs.
	if st, body, _ := try(r.token(t, RoleClient, "lab", "alice")); st != 101 {
		t.Errorf("a good token while the source is limited: %d %q; want it through", st, body)
	}
	logs := r.logs.text()
	if n := strings.Count(logs, "tokens refused from 127.0.0.1 in a short time"); n != 1 {
		t.Errorf("the flood was logged %d times; want once:\n%s", n, logs)
	}
	if n := strings.Count(logs, "signature is not this relay's"); n != failBurst/2 {
		t.Errorf("%d refusals logged one by one; want the %d before the limit:\n%s", n, failBurst/2, logs)
	}
}

// TestFailLimits: the buckets themselves, on a clock of the test's.
func TestFailLimits(t *testing.T) {
	var l failLimits
	now := time.Unix(1e9, 0)
	a := sourceOf("192.0.2.1:1234")
	b := sourceOf("[2001:db8::1]:1")
	if b != sourceOf("[2001:db8::ffff]:2") || a == sourceOf("192.0.2.2:1") {
		t.Fatalf("sources: an IPv6 /64 is one, IPv4 addresses are each their own")
	}
	for i := 1; i <= failBurst; i++ {
		limited, first, _ := l.fail(a, now)
		if limited || first != (i == failBurst) {
			t.Fatalf("failure %d: limited %v, first %v", i, limited, first)
		}
	}
	if limited, _, retry := l.fail(a, now); !limited || retry != failEvery {
		t.Errorf("past the burst: limited %v retry %v; want true, %v", limited, retry, failEvery)
	}
	if limited, _, _ := l.fail(b, now); limited {
		t.Errorf("another source was limited")
	}
	// One unit back after failEvery; none when the clock goes back.
	if limited, _, _ := l.fail(a, now.Add(-time.Hour)); !limited {
		t.Errorf("a clock going back refilled the bucket")
	}
	if limited, first, _ := l.fail(a, now.Add(failEvery)); limited || !first {
		t.Errorf("after %v: limited %v first %v; want one more refusal allowed", failEvery, limited, first)
	}
	// The map is bounded: beyond maxSources busy sources, new ones share one bucket.
	for i := 0; len(l.m) < maxSources; i++ {
		l.fail(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32), now)
	}
	l.fail(sourceOf("198.51.100.7:1"), now)
	if len(l.m) != maxSources || l.overflow.last.IsZero() {
		t.Errorf("%d buckets, overflow used %v; want %d and the overflow", len(l.m), !l.overflow.last.IsZero(), maxSources)
	}
	// Rested buckets make room.
	l.fail(sourceOf("198.51.100.8:1"), now.Add(time.Duration(failBurst)*failEvery))
	if _, ok := l.m[sourceOf("198.51.100.8:1")]; !ok {
		t.Errorf("a new source got no bucket of its own once the others rested")
	}
}
