package tokenserver

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// tokenBytes is the entropy of a generated token: 32 bytes, 43 base64url characters.
const tokenBytes = 32

// User-supplied tokens (TETHER_TOKEN, --token-file) must be at least minTokenLen
// characters; maxTokenLen bounds what we hash and store.
const (
	minTokenLen = 16
	maxTokenLen = 512
)

// NewToken returns a fresh access token: 32 bytes from crypto/rand, base64url without
// padding (43 characters of [A-Za-z0-9_-]).
func NewToken() (string, error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("tokenserver: generating a token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// ValidateToken checks a token the user chose (TETHER_TOKEN, --token-file): at least 16
// characters, at most 512, all from RFC 3986's unreserved set (A-Z a-z 0-9 - . _ ~), so
// it survives URLs, headers, cookies and subprotocol names unchanged. The error says
// what is wrong and how to fix it; it never repeats the token or any of its characters.
func ValidateToken(s string) error {
	const fix = "use at least 16 characters from A-Z a-z 0-9 - . _ ~ (for example the output of `openssl rand -hex 32`)"
	switch {
	case s == "":
		return errors.New("tokenserver: the token is empty; " + fix)
	case len(s) < minTokenLen:
		return fmt.Errorf("tokenserver: the token is %d characters long, too short to resist guessing; %s", len(s), fix)
	case len(s) > maxTokenLen:
		return fmt.Errorf("tokenserver: the token is %d characters long; use between %d and %d", len(s), minTokenLen, maxTokenLen)
	}
	for i := 0; i < len(s); i++ {
		if !isUnreserved(s[i]) {
			what := "a character"
			switch c := s[i]; {
			case c == ' ' || c == '\t':
				what = "a space or tab"
			case c == '\n' || c == '\r':
				what = "a line break (a file should hold the token on one line)"
			case c < 0x20 || c == 0x7f:
				what = "a control character"
			case c >= 0x80:
				what = "a non-ASCII character"
			}
			return fmt.Errorf("tokenserver: the token contains %s at position %d, which is not URL-safe; %s", what, i+1, fix)
		}
	}
	return nil
}

// isUnreserved reports whether c is in RFC 3986's unreserved set.
func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// TokensEqual reports whether a and b are the same non-empty token. It compares SHA-256
// digests with subtle.ConstantTimeCompare, so neither the time taken nor an early exit
// on length reveals how much of a guess was right.
func TokensEqual(a, b string) bool {
	ha := sha256.Sum256([]byte(a))
	hb := sha256.Sum256([]byte(b))
	same := subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
	return same && len(a) > 0 && len(b) > 0
}

// Every key that derives from the token is domain-separated, so an answer obtained from
// one mechanism (a challenge response, a login code, a cookie) is useless for another.
const (
	labelChallenge  = "tether/v1/challenge"
	labelLoginCode  = "tether/v1/login-code"
	labelCookie     = "tether/v1/cookie"
	labelOwnerHint  = "tether/v1/owner-hint"
	labelOwnerProof = "tether/v1/owner-proof"
)

// deriveKey returns HMAC-SHA256(secret, label): a key for one purpose.
func deriveKey(secret []byte, label string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(label))
	return m.Sum(nil)
}

// ChallengeResponse is the answer a genuine server gives to
// GET {BaseURL}_tether/challenge?nonce=N: hex HMAC-SHA256 of the nonce under a key
// derived from the token for this purpose only. The launcher sends a fresh nonce and
// compares the answer with hmac.Equal before it sends the token anywhere, so an impostor
// listening where the server should be is caught.
func ChallengeResponse(token, nonce string) string {
	m := hmac.New(sha256.New, deriveKey([]byte(token), labelChallenge))
	m.Write([]byte(labelChallenge))
	m.Write([]byte{0})
	m.Write([]byte(nonce))
	return hex.EncodeToString(m.Sum(nil))
}

// OwnerProof is what the launcher sends with its challenge (in OwnerProofHeader) to
// learn, in the same exchange, that the server takes its token: hex HMAC-SHA256 of the
// nonce under a key derived from the token for this purpose only. It is not the token
// and lets no one in (it is no credential of the gate's), and it is bound to the
// launcher's fresh nonce, so whatever reads it (an impostor on the socket, before the
// launcher has checked the challenge's answer) learns nothing it can use: the token
// itself is sent only after the answer proved the server holds it.
func OwnerProof(token, nonce string) string {
	m := hmac.New(sha256.New, deriveKey([]byte(token), labelOwnerProof))
	m.Write([]byte(labelOwnerProof))
	m.Write([]byte{0})
	m.Write([]byte(nonce))
	return hex.EncodeToString(m.Sum(nil))
}

// OwnerProofHeader carries OwnerProof on a challenge request; the answer then says in
// OwnerAcceptedHeader whether the proof matched this server's token: OwnerAccepted, or
// OwnerRefused. A server without it (an older tether) answers neither, and the launcher
// asks again with the token once the challenge's answer has proved the server.
const (
	OwnerProofHeader    = "Tether-Owner-Proof"
	OwnerAcceptedHeader = "Tether-Owner"
	OwnerAccepted       = "accepted"
	OwnerRefused        = "refused"
)

// OwnerHint is the TLS application protocol (ALPN) name that tether's launcher offers,
// besides http/1.1, on its connections to a session's server: the server sees it in
// the ClientHello, at once, and keeps that connection through a flood of others that
// have not signed in (connguard.go), though it proves nothing else: the request on it
// must still carry the token. It is derived from the token for this purpose only and
// tells nothing of it; whoever could read it off the network could only claim the same
// priority.
func OwnerHint(token string) string {
	return ownerHintPrefix + base64.RawURLEncoding.EncodeToString(deriveKey([]byte(token), labelOwnerHint)[:16])
}

const ownerHintPrefix = "tether-owner-"

// Challenge nonces are 16 to 128 URL-safe characters.
const (
	minNonceLen = 16
	maxNonceLen = 128
)

func validNonce(n string) bool {
	if len(n) < minNonceLen || len(n) > maxNonceLen {
		return false
	}
	for i := 0; i < len(n); i++ {
		if !isUnreserved(n[i]) {
			return false
		}
	}
	return true
}

// Login codes: "tc1." + base64url(nonce[16] | expiry[8, Unix seconds, big endian] |
// HMAC-SHA256[32]). The prefix lets the gate tell our codes from an app's own `code`
// parameter (an OAuth callback, say), which it leaves alone.
const (
	loginCodePrefix = "tc1."
	codeNonceLen    = 16
	codeBodyLen     = codeNonceLen + 8 + sha256.Size
	// MaxLoginCodeTTL bounds how long a login code may live.
	MaxLoginCodeTTL = 10 * time.Minute
)

// MintLoginCode returns a one-time code that lets a browser in once: the gate accepts
// `?code=C` on a navigation to any path under BaseURL exactly once while it is
// unexpired, sets the session cookie and redirects to the same URL without the code.
// The launcher mints it from the token it read over SSH, so the browser's URL carries a
// short-lived single-use code instead of the token. ttl must be in (0, MaxLoginCodeTTL].
func MintLoginCode(token string, ttl time.Duration) (string, error) {
	if err := ValidateToken(token); err != nil {
		return "", err
	}
	if ttl <= 0 || ttl > MaxLoginCodeTTL {
		return "", fmt.Errorf("tokenserver: login code lifetime %v is outside (0, %v]", ttl, MaxLoginCodeTTL)
	}
	var body [codeBodyLen]byte
	if _, err := rand.Read(body[:codeNonceLen]); err != nil {
		return "", fmt.Errorf("tokenserver: generating a login code: %w", err)
	}
	exp := time.Now().Add(ttl).Unix()
	binary.BigEndian.PutUint64(body[codeNonceLen:], uint64(exp))
	copy(body[codeNonceLen+8:], loginCodeMAC(token, body[:codeNonceLen+8]))
	return loginCodePrefix + base64.RawURLEncoding.EncodeToString(body[:]), nil
}

func loginCodeMAC(token string, nonceAndExpiry []byte) []byte {
	m := hmac.New(sha256.New, deriveKey([]byte(token), labelLoginCode))
	m.Write([]byte(labelLoginCode))
	m.Write([]byte{0})
	m.Write(nonceAndExpiry)
	return m.Sum(nil)
}

// parsedCode is a login code whose MAC and expiry have been checked.
type parsedCode struct {
	nonce  [codeNonceLen]byte
	expiry time.Time
}

var errBadCode = errors.New("tokenserver: invalid login code")

// checkLoginCode verifies a code's form, MAC and expiry (not whether it was used).
func checkLoginCode(token, code string, now time.Time) (parsedCode, error) {
	var pc parsedCode
	rest, ok := strings.CutPrefix(code, loginCodePrefix)
	if !ok || len(rest) != base64.RawURLEncoding.EncodedLen(codeBodyLen) {
		return pc, errBadCode
	}
	body, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	if err != nil || len(body) != codeBodyLen {
		return pc, errBadCode
	}
	if !hmac.Equal(body[codeNonceLen+8:], loginCodeMAC(token, body[:codeNonceLen+8])) {
		return pc, errBadCode
	}
	exp := time.Unix(int64(binary.BigEndian.Uint64(body[codeNonceLen:])), 0)
	// A code may not outlive MaxLoginCodeTTL (plus a minute of clock skew) from now:
	// MintLoginCode never makes one, so such a code was not made by it.
	if !now.Before(exp) || exp.After(now.Add(MaxLoginCodeTTL+time.Minute)) {
		return pc, errBadCode
	}
	copy(pc.nonce[:], body[:codeNonceLen])
	pc.expiry = exp
	return pc, nil
}
