package relay

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func testKey(tb testing.TB, seed string) ed25519.PrivateKey {
	tb.Helper()
	return KeyFromSecret([]byte(strings.Repeat(seed, 32)))
}

// signed signs arbitrary claims with key (EdDSA), for tokens Mint would not make.
func signed(tb testing.TB, key ed25519.PrivateKey, c tokenClaims) string {
	tb.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c).SignedString(key)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func claimsAt(key ed25519.PrivateKey, role Role, portal string, iat, nbf, exp time.Time) tokenClaims {
	return tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject: "alice", ID: "x",
			IssuedAt: jwt.NewNumericDate(iat), NotBefore: jwt.NewNumericDate(nbf), ExpiresAt: jwt.NewNumericDate(exp),
		},
		Role: role, Portal: portal,
		RelayKey: base64.RawURLEncoding.EncodeToString(key.Public().(ed25519.PublicKey)),
	}
}

func TestMintVerify(t *testing.T) {
	key := testKey(t, "a")
	pub := key.Public().(ed25519.PublicKey)
	tok, err := Mint(key, RoleClient, "lab-1", "alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Verify(pub, tok, RoleClient, "lab-1")
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if c.Name != "alice" || c.Portal != "lab-1" || c.Role != RoleClient || !c.RelayKey.Equal(pub) || len(c.ID) != 22 {
		t.Errorf("claims = %+v", c)
	}
	if d := c.Expires.Sub(c.IssuedAt); d != time.Hour {
		t.Errorf("lifetime %v, want 1h", d)
	}
	if _, err := Verify(pub, tok, RoleClient, ""); err != nil {
		t.Errorf(`Verify with portal "": %v`, err)
	}
	tok2, _ := Mint(key, RoleClient, "lab-1", "alice", time.Hour)
	c2, _ := Verify(pub, tok2, RoleClient, "lab-1")
	if c2.ID == c.ID {
		t.Errorf("two tokens share jti %s", c.ID)
	}
	for _, bad := range []struct {
		role         Role
		portal, name string
		ttl          time.Duration
	}{
		{"admin", "lab-1", "a", time.Hour}, {RoleHost, "", "a", time.Hour}, {RoleHost, "a b", "a", time.Hour},
		{RoleHost, "lab", "", time.Hour}, {RoleHost, "lab", "a\nb", time.Hour}, {RoleHost, "lab", "a", 0},
		{RoleHost, "lab", "a", MaxTTL + time.Hour},
	} {
		if _, err := Mint(key, bad.role, bad.portal, bad.name, bad.ttl); err == nil {
			t.Errorf("Mint(%q, %q, %q, %v) succeeded", bad.role, bad.portal, bad.name, bad.ttl)
		}
	}
}

// TestVerifyRefuses is the token misuse list: each must be refused, with the error
// Verify's callers turn into 401 or 403.
func TestVerifyRefuses(t *testing.T) {
	key := testKey(t, "a")
	pub := key.Public().(ed25519.PublicKey)
	other := testKey(t, "b")
	now := time.Now()
	good, err := Mint(key, RoleClient, "lab-1", "alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")

	// alg none, with the same claims.
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, claimsAt(key, RoleClient, "lab-1", now, now, now.Add(time.Hour))).
		SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	// Algorithm confusion: HS256 keyed with the public key's bytes (what a verifier
	// that trusts the header's alg would accept).
	hs, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claimsAt(key, RoleClient, "lab-1", now, now, now.Add(time.Hour))).
		SignedString([]byte(pub))
	if err != nil {
		t.Fatal(err)
	}
	hsB64, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claimsAt(key, RoleClient, "lab-1", now, now, now.Add(time.Hour))).
		SignedString([]byte(base64.RawURLEncoding.EncodeToString(pub)))
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rs, _ := jwt.NewWithClaims(jwt.SigningMethodRS256, claimsAt(key, RoleClient, "lab-1", now, now, now.Add(time.Hour))).SignedString(rsaKey)
	// A tampered payload: the portal changed, the signature kept.
	var payload map[string]any
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	json.Unmarshal(raw, &payload)
	payload["portal"] = "lab-2"
	raw, _ = json.Marshal(payload)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(raw) + "." + parts[2]
	// Another relay's key, naming itself in rk, and naming ours in rk.
	otherTok, _ := Mint(other, RoleClient, "lab-1", "alice", time.Hour)
	otherClaimsOurRK := signed(t, other, claimsAt(key, RoleClient, "lab-1", now, now, now.Add(time.Hour)))
	expired := signed(t, key, claimsAt(key, RoleClient, "lab-1", now.Add(-2*time.Hour), now.Add(-2*time.Hour), now.Add(-time.Hour)))
	notYet := signed(t, key, claimsAt(key, RoleClient, "lab-1", now, now.Add(time.Hour), now.Add(2*time.Hour)))
	noExp := claimsAt(key, RoleClient, "lab-1", now, now, now)
	noExp.ExpiresAt = nil
	noNbf := claimsAt(key, RoleClient, "lab-1", now, now, now.Add(time.Hour))
	noNbf.NotBefore = nil
	hostTok, _ := Mint(key, RoleHost, "lab-1", "box", time.Hour)
	otherPortal, _ := Mint(key, RoleClient, "lab-2", "alice", time.Hour)

	tests := []struct {
		name, token string
		want        error
		says        string // what the error says is wrong, when the test pins it
	}{
		{"alg none", none, ErrBadToken, "token not valid: it is unsigned (alg none); the relay takes only tokens signed with its key"},
		{"HS256 keyed with the public key", hs, ErrBadToken, `token not valid: it is signed with "HS256", not EdDSA as the relay's tokens are`},
		{"HS256 keyed with the public key in base64", hsB64, ErrBadToken, ""},
		{"RS256", rs, ErrBadToken, `token not valid: it is signed with "RS256", not EdDSA as the relay's tokens are`},
		{"tampered payload", tampered, ErrBadToken, "token not valid: its signature is not this relay's"},
		{"signature cut", parts[0] + "." + parts[1] + ".", ErrBadToken, ""},
		{"another relay's key", otherTok, ErrBadToken, "token not valid: its signature is not this relay's"},
		{"another relay's key naming ours", otherClaimsOurRK, ErrBadToken, ""},
		{"expired", expired, ErrBadToken, "token not valid: it has expired; ask for a new one (tether relay token)"},
		{"not yet valid", notYet, ErrBadToken, ""},
		{"no exp", signed(t, key, noExp), ErrBadToken, ""},
		{"no nbf", signed(t, key, noNbf), ErrBadToken, ""},
		{"garbage", "not.a.token", ErrBadToken, ""},
		{"empty", "", ErrBadToken, ""},
		{"wrong role", hostTok, ErrWrongRole, ""},
		{"wrong portal", otherPortal, ErrWrongPortal, ""},
	}
	for _, tt := range tests {
		_, err := Verify(pub, tt.token, RoleClient, "lab-1")
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: Verify = %v; want %v", tt.name, err, tt.want)
			continue
		}
		if tt.token != "" && strings.Contains(err.Error(), tt.token) || strings.Contains(err.Error(), parts[2]) {
			t.Errorf("%s: the error quotes the token: %v", tt.name, err)
		}
		if tt.says != "" && err.Error() != "relay: "+tt.says {
			t.Errorf("%s: Verify = %q; want %q", tt.name, err, "relay: "+tt.says)
		}
	}
	if _, err := Verify(pub, good, RoleClient, "lab-1"); err != nil {
		t.Errorf("the good token: %v", err)
	}
}

func TestSelfKey(t *testing.T) {
	key := testKey(t, "a")
	host, _ := Mint(key, RoleHost, "lab-1", "box", time.Hour)
	pub, c, err := SelfKey(host)
	if err != nil || !pub.Equal(key.Public()) || c.Portal != "lab-1" {
		t.Fatalf("SelfKey = %v, %+v, %v", pub, c, err)
	}
	client, _ := Mint(key, RoleClient, "lab-1", "alice", time.Hour)
	if _, _, err := SelfKey(client); !errors.Is(err, ErrWrongRole) {
		t.Errorf("SelfKey(client token) = %v; want ErrWrongRole", err)
	}
	// rk names one key, another signed it.
	now := time.Now()
	forged := signed(t, testKey(t, "b"), claimsAt(key, RoleHost, "lab-1", now, now, now.Add(time.Hour)))
	if _, _, err := SelfKey(forged); !errors.Is(err, ErrBadToken) {
		t.Errorf("SelfKey(forged) = %v; want ErrBadToken", err)
	}
}

func TestReadSecret(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	good := write("good", make([]byte, 32), 0o600)
	if b, err := ReadSecret(good); err != nil || len(b) != 32 {
		t.Errorf("ReadSecret(0600, 32 bytes) = %d bytes, %v", len(b), err)
	}
	tests := []struct{ path, want string }{
		{write("open", make([]byte, 32), 0o644), "chmod 600 " + filepath.Join(dir, "open")},
		{write("group", make([]byte, 32), 0o640), "chmod 600"},
		{write("short", make([]byte, 31), 0o600), "head -c 32 /dev/urandom >"},
		{filepath.Join(dir, "missing"), "head -c 32 /dev/urandom > " + filepath.Join(dir, "missing")},
		{dir, "not a regular file"},
	}
	for _, tt := range tests {
		_, err := ReadSecret(tt.path)
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("ReadSecret(%s) = %v; want one line containing %q", tt.path, err, tt.want)
		}
	}
	// One secret, one key; another secret, another key.
	a, b := KeyFromSecret([]byte(strings.Repeat("s", 32))), KeyFromSecret([]byte(strings.Repeat("t", 32)))
	if !a.Equal(KeyFromSecret([]byte(strings.Repeat("s", 32)))) || a.Equal(b) {
		t.Error("KeyFromSecret is not a function of the secret")
	}
}
