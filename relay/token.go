// Package relay reaches machines that accept no inbound connection (after Matic
// Portal): a router both ends dial out to over WebSocket, signed tokens that say who
// may be a portal's host or client, and the two stream ends (Dial for a client,
// Listen for a host) that the SSH connection rides on. The router pairs streams and
// copies their bytes; what it carries is SSH, which it can neither read nor alter.
package relay

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Role is what a token lets its holder be for its portal.
type Role string

const (
	// RoleHost offers a machine: it holds the portal's control connection and
	// accepts its streams.
	RoleHost Role = "host"
	// RoleClient reaches the portal's host (and, inside SSH, logs in with the token).
	RoleClient Role = "client"
)

// Claims are a verified token's contents.
type Claims struct {
	Name      string // sub: who the token was made for (logged)
	Portal    string
	Role      Role
	IssuedAt  time.Time
	NotBefore time.Time
	Expires   time.Time
	ID        string            // jti: random, unique per token
	RelayKey  ed25519.PublicKey // rk: the key that signed it
}

// Token lifetimes: a host token sits on a machine that offers itself for weeks; a
// client token is handed to a person for a session. MaxTTL bounds what Mint makes.
const (
	DefaultHostTTL   = 30 * 24 * time.Hour
	DefaultClientTTL = 24 * time.Hour
	MaxTTL           = 366 * 24 * time.Hour
	// leeway is the clock skew tolerated on exp and nbf.
	leeway = 30 * time.Second
	// MinSecret is the shortest secret file ReadSecret accepts.
	MinSecret = 32
	maxSecret = 64 << 10
)

// namePattern is the session-name rule (wire.CheckName's pattern; relay imports no
// package of ours): portal ids and token names are logged and typed on command lines.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// CheckPortal says whether id may name a portal: 1 to 64 letters, digits, '.', '_'
// or '-', starting with a letter or digit.
func CheckPortal(id string) error {
	if !namePattern.MatchString(id) {
		return fmt.Errorf("portal id %q is not valid: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", id)
	}
	return nil
}

// CheckName says whether n may name a token's holder (the same rule as a portal id).
func CheckName(n string) error {
	if !namePattern.MatchString(n) {
		return fmt.Errorf("token name %q is not valid: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", n)
	}
	return nil
}

// Errors of Verify, for the router's status codes: ErrBadToken is 401, the others 403.
var (
	ErrBadToken    = errors.New("relay: token not valid")
	ErrWrongRole   = errors.New("relay: token is for another role")
	ErrWrongPortal = errors.New("relay: token is for another portal")
)

// tokenClaims is the JWT payload.
type tokenClaims struct {
	jwt.RegisteredClaims
	Role     Role   `json:"role"`
	Portal   string `json:"portal"`
	RelayKey string `json:"rk"`
}

// KeyFromSecret derives the relay's signing key from its secret: the Ed25519 seed is
// SHA-256("tether relay key v1" || secret), so one secret file is one key, and the
// file never needs a format of its own.
func KeyFromSecret(secret []byte) ed25519.PrivateKey {
	h := sha256.New()
	h.Write([]byte("tether relay key v1"))
	h.Write(secret)
	return ed25519.NewKeyFromSeed(h.Sum(nil))
}

// ReadSecret reads the relay's secret file: mode 0600 (no access for group or
// others), at least MinSecret bytes. Its errors are one line saying how to fix it.
func ReadSecret(path string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no secret file %s; make one with: (umask 077; head -c 32 /dev/urandom > %s)", path, path)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the secret file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading the secret file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("secret file %s is not a regular file", path)
	}
	// Windows has no such mode bits: the file's ACL is the user's business there.
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("secret file %s may be read by others (mode %04o); chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecret+1))
	if err != nil {
		return nil, fmt.Errorf("reading the secret file: %w", err)
	}
	switch {
	case len(b) > maxSecret:
		return nil, fmt.Errorf("secret file %s is larger than %d bytes; is it the right file?", path, maxSecret)
	case len(b) < MinSecret:
		return nil, fmt.Errorf("secret file %s holds %d bytes, fewer than %d; make a new one with: (umask 077; head -c 32 /dev/urandom > %s)", path, len(b), MinSecret, path)
	}
	return b, nil
}

// Mint signs a token for role on portal, naming its holder name, valid from now for
// ttl (at most MaxTTL).
func Mint(key ed25519.PrivateKey, role Role, portal, name string, ttl time.Duration) (string, error) {
	if role != RoleHost && role != RoleClient {
		return "", fmt.Errorf("role %q is not valid: use host or client", role)
	}
	if err := CheckPortal(portal); err != nil {
		return "", err
	}
	if err := CheckName(name); err != nil {
		return "", err
	}
	if ttl <= 0 || ttl > MaxTTL {
		return "", fmt.Errorf("a token lives between a second and %d days, not %v", int(MaxTTL/(24*time.Hour)), ttl)
	}
	var jti [16]byte
	rand.Read(jti[:])
	now := time.Now().Truncate(time.Second)
	c := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   name,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			ID:        base64.RawURLEncoding.EncodeToString(jti[:]),
		},
		Role:     role,
		Portal:   portal,
		RelayKey: base64.RawURLEncoding.EncodeToString(key.Public().(ed25519.PublicKey)),
	}
	return jwt.NewWithClaims(jwt.SigningMethodEdDSA, c).SignedString(key)
}

// Verify checks token: signed by pub with EdDSA (alg none, HMAC keyed with the public
// key, RSA and ECDSA are all refused), not expired, already valid, for role and, unless
// portal is "", for portal. Its errors wrap ErrBadToken, ErrWrongRole or
// ErrWrongPortal, and never contain the token.
func Verify(pub ed25519.PublicKey, token string, role Role, portal string) (*Claims, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: no relay key to check it with", ErrBadToken)
	}
	var tc tokenClaims
	jt, err := jwt.ParseWithClaims(token, &tc, func(*jwt.Token) (any, error) { return pub, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithLeeway(leeway),
		jwt.WithExpirationRequired(),
		jwt.WithNotBeforeRequired(),
		jwt.WithIssuedAt(),
		jwt.WithStrictDecoding(),
	)
	if err != nil {
		if why := algProblem(jt); why != "" {
			return nil, fmt.Errorf("%w: %s", ErrBadToken, why)
		}
		return nil, fmt.Errorf("%w: %s", ErrBadToken, tokenProblem(err))
	}
	c, err := claimsOf(&tc)
	if err != nil {
		return nil, err
	}
	if !c.RelayKey.Equal(pub) {
		return nil, fmt.Errorf("%w: it names another relay's key", ErrBadToken)
	}
	if c.Role != role {
		return nil, fmt.Errorf("%w: it is a %s token, not a %s token", ErrWrongRole, c.Role, role)
	}
	if portal != "" && c.Portal != portal {
		return nil, fmt.Errorf("%w: it is for portal %s, not %s", ErrWrongPortal, c.Portal, portal)
	}
	return c, nil
}

// SelfKey reads a host's own token: the relay key it names (rk), checked by verifying
// the token with that key as a host token. The key is only as trustworthy as the way
// the token came (out of band, from whoever ran `tether relay token`); the host then
// checks client tokens against it.
func SelfKey(token string) (ed25519.PublicKey, *Claims, error) {
	var tc tokenClaims
	if _, _, err := jwt.NewParser().ParseUnverified(token, &tc); err != nil {
		return nil, nil, fmt.Errorf("%w: %s", ErrBadToken, tokenProblem(err))
	}
	pub, err := base64.RawURLEncoding.DecodeString(tc.RelayKey)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return nil, nil, fmt.Errorf("%w: it names no relay key (rk)", ErrBadToken)
	}
	c, err := Verify(ed25519.PublicKey(pub), token, RoleHost, "")
	if err != nil {
		return nil, nil, err
	}
	return c.RelayKey, c, nil
}

// Expiry is when token says it expires, read without verifying it (zero if it says
// nothing readable): a client tells the user that its own token expired, which only
// the relay and the host decide.
func Expiry(token string) time.Time {
	var tc tokenClaims
	if _, _, err := jwt.NewParser().ParseUnverified(token, &tc); err != nil || tc.ExpiresAt == nil {
		return time.Time{}
	}
	return tc.ExpiresAt.Time
}

// claimsOf checks and converts the payload's fields.
func claimsOf(tc *tokenClaims) (*Claims, error) {
	pub, err := base64.RawURLEncoding.DecodeString(tc.RelayKey)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: it names no relay key (rk)", ErrBadToken)
	}
	if tc.Role != RoleHost && tc.Role != RoleClient {
		return nil, fmt.Errorf("%w: it has no valid role", ErrBadToken)
	}
	if CheckPortal(tc.Portal) != nil || CheckName(tc.Subject) != nil || tc.IssuedAt == nil {
		return nil, fmt.Errorf("%w: its portal, name or issue time is missing or malformed", ErrBadToken)
	}
	return &Claims{
		Name: tc.Subject, Portal: tc.Portal, Role: tc.Role,
		IssuedAt: tc.IssuedAt.Time, NotBefore: tc.NotBefore.Time, Expires: tc.ExpiresAt.Time,
		ID: tc.ID, RelayKey: ed25519.PublicKey(pub),
	}, nil
}

// algProblem says what is wrong with a token's algorithm, if that is what is wrong:
// unsigned (alg none), or signed another way than the relay signs (HS256 keyed with
// the public key, RS256...). "" when its header is unreadable or names EdDSA.
func algProblem(t *jwt.Token) string {
	if t == nil {
		return ""
	}
	alg, _ := t.Header["alg"].(string)
	switch {
	case strings.EqualFold(alg, "none"):
		return "it is unsigned (alg none); the relay takes only tokens signed with its key"
	case alg == "":
		return "its header names no algorithm"
	case alg != jwt.SigningMethodEdDSA.Alg():
		return fmt.Sprintf("it is signed with %.16q, not EdDSA as the relay's tokens are", alg)
	}
	return ""
}

// tokenProblem says in a few words what is wrong with a token (jwt's own errors may
// quote parts of it).
func tokenProblem(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "it has expired; ask for a new one (tether relay token)"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "it is not valid yet (is this machine's clock right?)"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return "its signature is not this relay's"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "it is malformed (copied whole?)"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "it lacks a required claim"
	}
	return "it is not a relay token"
}
