package tokenserver

import (
	"bufio"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Generated tokens.
func TestNewTokenFormat(t *testing.T) {
	re := regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)
	seen := make(map[string]bool, 1000)
	for range 1000 {
		tok, err := NewToken()
		if err != nil {
			t.Fatal(err)
		}
		if !re.MatchString(tok) {
			t.Fatalf("token %q does not match %s", tok, re)
		}
		if b, err := base64.RawURLEncoding.DecodeString(tok); err != nil || len(b) != 32 {
			t.Fatalf("token does not decode to 32 bytes: %d, %v", len(b), err)
		}
		if seen[tok] {
			t.Fatal("NewToken repeated a token")
		}
		seen[tok] = true
		if err := ValidateToken(tok); err != nil {
			t.Fatalf("a generated token fails ValidateToken: %v", err)
		}
	}
}

// User-supplied tokens (TETHER_TOKEN, --token-file).
func TestValidateToken(t *testing.T) {
	tests := []struct {
		tok     string
		ok      bool
		errHint string // part of the error text that says what is wrong
	}{
		{"abcdefghijklmnop", true, ""},
		{"0123456789abcdef-._~ABC", true, ""},
		{strings.Repeat("a", 512), true, ""},
		{"", false, "empty"},
		{"short", false, "5 characters"},
		{"abcdefghijklmno", false, "15 characters"},
		{strings.Repeat("a", 513), false, "between 16 and 512"},
		{"abcdefghijklmnop q", false, "space"},
		{"abcdefghijklmnop\n", false, "line break"},
		{"abcdefghijklmnop\x00", false, "control"},
		{"abcdefghijklmnopé", false, "non-ASCII"},
		{"abcdefghijklmnop/", false, "position 17"},
		{"abcdefghijklmnop+", false, "URL-safe"},
		{"abcdefghijklmnop%41", false, "URL-safe"},
		{"abcdefghijklmnop=", false, "URL-safe"},
		{"abcdefghijklmnop&x", false, "URL-safe"},
	}
	for _, tt := range tests {
		err := ValidateToken(tt.tok)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateToken(%q) = %v; want ok=%v", tt.tok, err, tt.ok)
			continue
		}
		if err == nil {
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, tt.errHint) {
			t.Errorf("ValidateToken(%q) = %q; want it to mention %q", tt.tok, msg, tt.errHint)
		}
		if !strings.Contains(msg, "16") {
			t.Errorf("ValidateToken(%q) = %q; want it to say how to fix it", tt.tok, msg)
		}
		if len(tt.tok) >= 8 && strings.Contains(msg, tt.tok[:8]) {
			t.Errorf("ValidateToken(%q): the error repeats the token", tt.tok)
		}
	}
	// New refuses a bad user token too.
	if _, err := New(Options{Token: "short", App: http.NotFoundHandler()}); err == nil {
		t.Error("New accepted a 5-character token")
	}
}

// TokensEqual: equal tokens match, anything else does not, and empty never matches.
func TestTokensEqual(t *testing.T) {
	a, _ := NewToken()
	b, _ := NewToken()
	if !TokensEqual(a, strings.Clone(a)) {
		t.Error("equal tokens differ")
	}
	for _, other := range []string{b, a[:42], a + "x", "", " " + a, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"} {
		if TokensEqual(a, other) {
			t.Errorf("TokensEqual matched a different value (len %d)", len(other))
		}
	}
	if TokensEqual("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz") {
		t.Error("TokensEqual ignores case")
	}
	if TokensEqual("", "") {
		t.Error("two empty tokens match")
	}
}

// An unauthenticated client that sends its header slowly is dropped by
// ReadHeaderTimeout, and the app never hears of it.
func TestSlowHeaderDropped(t *testing.T) {
	g := newGate(t, nil)
	g.s.srv.ReadHeaderTimeout = 200 * time.Millisecond
	base := g.served()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	// Keep dribbling, as a slowloris does; the server must still hang up.
	go func() {
		for range 20 {
			time.Sleep(50 * time.Millisecond)
			if _, err := io.WriteString(conn, "a"); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 1024)
	n, err := conn.Read(buf)
	elapsed := time.Since(start)
	if err == nil && !strings.Contains(string(buf[:n]), "408") {
		t.Fatalf("the server answered %q instead of hanging up", buf[:n])
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the server kept the slow connection open for %v", elapsed)
	}
	if elapsed > 2*time.Second {
		t.Errorf("the slow client was dropped after %v; want about 200ms", elapsed)
	}
	if g.app.count() != 0 {
		t.Error("the app saw the slow request")
	}
}

// An oversized header gets 431.
func TestOversizedHeader(t *testing.T) {
	g := newGate(t, nil)
	base := g.served()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	go func() {
		io.WriteString(conn, "GET / HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer "+g.token+"\r\nX-Big: "+strings.Repeat("a", maxHeaderBytes+8192)+"\r\n\r\n")
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("got %d; want 431", resp.StatusCode)
	}
	if g.app.count() != 0 {
		t.Error("the app saw the oversized request")
	}
	// Just under the limit passes (Jupyter's cookies can be large).
	r, _ := http.NewRequest("GET", base+"/x", nil)
	r.Header.Set("Authorization", "Bearer "+g.token)
	r.Header.Set("X-Big", strings.Repeat("a", maxHeaderBytes-4096))
	if resp, _ := get(t, client(t), r); resp.StatusCode != 200 {
		t.Errorf("a header under the limit: got %d; want 200", resp.StatusCode)
	}
}
