package host

// STAND-IN for package relay (branch relay18), deleted when relay lands on main: the
// same names and shapes as relay's Role, Claims, Mint, Verify, SelfKey, Listen and
// Options, with a token format of its own (base64url JSON claims "." signature) and a
// Listen that serves tcp://127.0.0.1:PORT. Wiring the real one is: delete this file,
// import relay, s/relay\([A-Z]\)/relay.\1/.

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

type relayRole string

const (
	relayRoleHost   relayRole = "host"
	relayRoleClient relayRole = "client"
)

type relayClaims struct {
	Name, Portal                 string
	Role                         relayRole
	IssuedAt, NotBefore, Expires time.Time
	ID                           string
	RelayKey                     ed25519.PublicKey
}

type relayOptions struct {
	TLS  *tls.Config
	Logf func(format string, args ...any)
}

var errRelayBadToken = errors.New("relay: token not valid")

func relayMint(key ed25519.PrivateKey, role relayRole, portal, name string, ttl time.Duration) (string, error) {
	now := time.Now()
	var id [12]byte
	rand.Read(id[:])
	c := relayClaims{Name: name, Portal: portal, Role: role, IssuedAt: now, NotBefore: now, Expires: now.Add(ttl),
		ID: base64.RawURLEncoding.EncodeToString(id[:]), RelayKey: key.Public().(ed25519.PublicKey)}
	b, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	p := base64.RawURLEncoding.EncodeToString(b)
	return p + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(key, []byte(p))), nil
}

func relayVerify(pub ed25519.PublicKey, token string, role relayRole, portal string) (*relayClaims, error) {
	p, sig, ok := strings.Cut(token, ".")
	s, err := base64.RawURLEncoding.DecodeString(sig)
	if !ok || err != nil || len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, []byte(p), s) {
		return nil, fmt.Errorf("%w: its signature is not this relay's", errRelayBadToken)
	}
	b, _ := base64.RawURLEncoding.DecodeString(p)
	var c relayClaims
	if json.Unmarshal(b, &c) != nil {
		return nil, fmt.Errorf("%w: it is malformed (copied whole?)", errRelayBadToken)
	}
	if time.Now().After(c.Expires) {
		return nil, fmt.Errorf("%w: it has expired; ask for a new one (tether relay token)", errRelayBadToken)
	}
	if c.Role != role {
		return nil, fmt.Errorf("relay: token is for another role: it is a %s token, not a %s token", c.Role, role)
	}
	if portal != "" && c.Portal != portal {
		return nil, fmt.Errorf("relay: token is for another portal: it is for portal %s, not %s", c.Portal, portal)
	}
	return &c, nil
}

func relaySelfKey(token string) (ed25519.PublicKey, *relayClaims, error) {
	p, _, _ := strings.Cut(token, ".")
	b, _ := base64.RawURLEncoding.DecodeString(p)
	var c relayClaims
	if json.Unmarshal(b, &c) != nil || len(c.RelayKey) != ed25519.PublicKeySize {
		return nil, nil, fmt.Errorf("%w: it names no relay key (rk)", errRelayBadToken)
	}
	v, err := relayVerify(c.RelayKey, token, relayRoleHost, "")
	if err != nil {
		return nil, nil, err
	}
	return v.RelayKey, v, nil
}

func relayListen(ctx context.Context, url, token string, o *relayOptions) (net.Listener, error) {
	addr, ok := strings.CutPrefix(url, "tcp://")
	if ap, err := netip.ParseAddrPort(addr); !ok || err != nil || !ap.Addr().IsLoopback() {
		return nil, fmt.Errorf("stand-in relay: %s is not tcp://LOOPBACK:PORT", url)
	}
	ln, err := net.Listen("tcp", addr)
	if err == nil && o != nil && o.Logf != nil {
		o.Logf("stand-in relay: listening on %s", ln.Addr())
	}
	return ln, err
}
