package tokenserver

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"
)

// After failureBurst bad attempts, later bad attempts get 429 with
// Retry-After; a valid cookie, login code or token (header, URL, subprotocol, login
// form) still gets in, so the owner is never locked out of a session; the limiter is global (every request here
// comes from the same address, as tunnel traffic does) and recovers with time.
func TestRateLimit(t *testing.T) {
	g := newGate(t, nil)
	g.s.limiter = newFailureLimiter(failureBurst, failureEvery) // the real one
	ck := g.cookie(testHost)
	wrong, _ := NewToken()
	bad := []func() *http.Request{
		func() *http.Request { return req("GET", "/x", "Authorization", "Bearer "+wrong) },
		func() *http.Request { return req("GET", "/x?token="+wrong, "Sec-Fetch-Mode", "navigate") },
		func() *http.Request { return postForm("/_tether/login", url.Values{"token": {wrong}}) },
		func() *http.Request {
			return wsReq("/ws", "Sec-WebSocket-Protocol", jupyterProtocol+", "+tokenEntry(wrong))
		},
		func() *http.Request { return req("GET", "/x?code=tc1.forged", "Sec-Fetch-Mode", "navigate") },
	}
	for i := range failureBurst {
		w := g.do(bad[i%len(bad)]())
		if w.Code != http.StatusUnauthorized && w.Code != http.StatusForbidden {
			t.Fatalf("bad attempt %d: got %d; want 401/403", i+1, w.Code)
		}
	}
	for i, mk := range bad {
		w := g.do(mk())
		if w.Code != http.StatusTooManyRequests {
			t.Errorf("bad attempt kind %d after the burst: got %d; want 429", i, w.Code)
		}
		if ra, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || ra < 1 {
			t.Errorf("bad attempt kind %d: Retry-After %q", i, w.Header().Get("Retry-After"))
		}
	}
	// The owner's browser session keeps working, page loads and WebSockets alike.
	if w := g.do(withCookie(req("GET", "/lab"), ck)); w.Code != 200 {
		t.Errorf("valid cookie while limited: got %d; want 200", w.Code)
	}
	if w := g.do(withCookie(wsReq("/ws", "Origin", "http://localhost:8888"), ck)); w.Code != 200 {
		t.Errorf("valid cookie WebSocket while limited: got %d; want 200", w.Code)
	}
	// So does a fresh login through the launcher's one-time code (a MAC, not a guess).
	code, err := MintLoginCode(g.token, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if w := g.do(req("GET", "/lab?code="+code, "Sec-Fetch-Mode", "navigate")); w.Code != http.StatusSeeOther {
		t.Errorf("valid login code while limited: got %d; want 303", w.Code)
	}
	// The token itself is always compared: the owner gets in by every route while
	// someone else's guesses keep the limiter dry, and a good request does not refill
	// the bucket for the guesser.
	good := []struct {
		name string
		r    *http.Request
		want int
	}{
		{"Authorization", req("GET", "/x", "Authorization", "Bearer "+g.token), 200},
		{"?token= navigation", req("GET", "/lab?token="+g.token, "Sec-Fetch-Mode", "navigate"), http.StatusSeeOther},
		{"subprotocol", wsReq("/ws", "Sec-WebSocket-Protocol", jupyterProtocol+", "+tokenEntry(g.token)), 200},
		{"login form", postForm("/_tether/login", url.Values{"token": {g.token}}), http.StatusSeeOther},
	}
	for _, c := range good {
		if w := g.do(c.r); w.Code != c.want {
			t.Errorf("valid token by %s while limited: got %d; want %d", c.name, w.Code, c.want)
		}
		if w := g.do(req("GET", "/x", "Authorization", "Bearer "+wrong)); w.Code != http.StatusTooManyRequests {
			t.Errorf("bad token right after a valid %s: got %d; want 429", c.name, w.Code)
		}
	}
	// A valid credential next to an invalid one is still refused (429 while limited).
	if w := g.do(req("GET", "/x?token="+wrong, "Authorization", "Bearer "+g.token)); w.Code != http.StatusTooManyRequests {
		t.Errorf("valid header with a bad ?token= while limited: got %d; want 429", w.Code)
	}
	// A request with no credential is not a failure and still gets the login page.
	if w := g.do(req("GET", "/lab", "Sec-Fetch-Mode", "navigate")); w.Code != http.StatusUnauthorized {
		t.Errorf("no credential while limited: got %d; want 401", w.Code)
	}
	// Time heals: one attempt per failureEvery.
	g.clock.Advance(failureEvery)
	if w := g.do(req("GET", "/x", "Authorization", "Bearer "+g.token)); w.Code != 200 {
		t.Errorf("valid token after the wait: got %d; want 200", w.Code)
	}
	if w := g.do(req("GET", "/x", "Authorization", "Bearer "+wrong)); w.Code != http.StatusUnauthorized {
		t.Errorf("bad token after the wait: got %d; want 401", w.Code)
	}
	if w := g.do(req("GET", "/x", "Authorization", "Bearer "+wrong)); w.Code != http.StatusTooManyRequests {
		t.Errorf("second bad token after one interval: got %d; want 429", w.Code)
	}
	g.clock.Advance(time.Duration(failureBurst) * failureEvery)
	for i := range failureBurst {
		if w := g.do(req("GET", "/x", "Authorization", "Bearer "+wrong)); w.Code != http.StatusUnauthorized {
			t.Fatalf("after a full refill, bad attempt %d: got %d; want 401", i+1, w.Code)
		}
	}
	if n := g.app.count(); n != 5 {
		t.Errorf("the app saw %d requests; want 5 (two cookie requests, header, subprotocol, header)", n)
	}
}

func TestFailureLimiterMath(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	l := newFailureLimiter(3, time.Second)
	for i := range 3 {
		if !l.allow(now) {
			t.Fatalf("attempt %d not allowed", i)
		}
		l.fail(now)
	}
	if l.allow(now) {
		t.Fatal("allowed after the burst")
	}
	if ra := l.retryAfter(now); ra != 1 {
		t.Errorf("retryAfter = %d; want 1", ra)
	}
	if l.allow(now.Add(-time.Hour)) {
		t.Error("a clock going backwards refilled the bucket")
	}
	if !l.allow(now.Add(time.Second)) {
		t.Error("not allowed after one interval")
	}
	l2 := newFailureLimiter(3, time.Second)
	l2.fail(now)
	if !l2.allow(now.Add(time.Hour)) || l2.units > 3 {
		t.Errorf("bucket overfilled: %v", l2.units)
	}
}

// An attacker on the same host floods the real server (over TCP, as tunnel traffic
// arrives) with hundreds of wrong tokens from many goroutines; the owner's token, sent
// in between and after, gets in every time, while the guesses stay throttled.
func TestRateLimitFloodNeverLocksOutTheOwner(t *testing.T) {
	g := newGate(t, nil)
	g.s.limiter = newFailureLimiter(failureBurst, failureEvery)
	srv := httptest.NewServer(g.s)
	defer srv.Close()
	get := func(tok string) (int, string) {
		r, err := http.NewRequest("GET", srv.URL+"/x", nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Host = testHost
		r.Header.Set("Authorization", "Bearer "+tok)
		resp, err := srv.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				wrong, _ := NewToken()
				code, _ := get(wrong)
				mu.Lock()
				codes[code]++
				mu.Unlock()
			}
		}()
	}
	for i := range 20 {
		if code, _ := get(g.token); code != 200 {
			t.Errorf("owner's request %d during the flood: got %d; want 200", i, code)
		}
	}
	wg.Wait()
	if code, _ := get(g.token); code != 200 {
		t.Errorf("owner's request after the flood: got %d; want 200", code)
	}
	code, ra := get("not-the-token-but-long-enough")
	if code != http.StatusTooManyRequests || ra == "" {
		t.Errorf("a guess after the flood: got %d Retry-After %q; want 429 with Retry-After", code, ra)
	}
	if codes[http.StatusUnauthorized] != failureBurst || codes[http.StatusTooManyRequests] != 400-failureBurst {
		t.Errorf("flood answers %v; want %d×401 then 429s", codes, failureBurst)
	}
}
