package host

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/ssh"

	"github.com/tether-dev/tether/relay"
)

// syncBuffer is the host's stderr, read while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// relayKeys is a relay's signing key and tokens it minted.
type relayKeys struct{ key ed25519.PrivateKey }

func newRelay(t *testing.T) relayKeys {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return relayKeys{k}
}

func (r relayKeys) mint(t *testing.T, role relay.Role, portal, name string, ttl time.Duration) string {
	t.Helper()
	if ttl < 0 {
		return r.expired(t, role, portal, name, -ttl)
	}
	tok, err := relay.Mint(r.key, role, portal, name, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// expired is a token of the relay's format and key that expired ago (relay.Mint makes
// none): signed as relay signs, so only its expiry is wrong.
func (r relayKeys) expired(t *testing.T, role relay.Role, portal, name string, ago time.Duration) string {
	t.Helper()
	now := time.Now()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
		"sub": name, "role": string(role), "portal": portal, "jti": "expired-test",
		"iat": now.Add(-ago - time.Hour).Unix(), "nbf": now.Add(-ago - time.Hour).Unix(), "exp": now.Add(-ago).Unix(),
		"rk": base64.RawURLEncoding.EncodeToString(r.key.Public().(ed25519.PublicKey)),
	}).SignedString(r.key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type runningHost struct {
	addr   string
	stderr *syncBuffer
	o      Options
}

// startHost runs Run on a loopback TCP listener (relay.Listen's stand-in) until the
// test ends.
func startHost(t *testing.T, o Options) *runningHost {
	t.Helper()
	h := &runningHost{stderr: &syncBuffer{}}
	if o.HostKeyFile == "" {
		o.HostKeyFile = filepath.Join(t.TempDir(), "cfg", "tether", HostKeyName)
	}
	o.Stderr = h.stderr
	addrs := make(chan string, 1)
	o.listen = func(context.Context) (net.Listener, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err == nil {
			addrs <- ln.Addr().String()
		}
		return ln, err
	}
	h.o = o
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, o) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case h.addr = <-addrs:
	case err := <-done:
		done <- err
		t.Fatalf("Run ended before listening: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not listen within 10 s")
	}
	return h
}

// run logs in with methods as SSH user "someone-else" and runs command.
func (h *runningHost) run(methods []ssh.AuthMethod, command string) (string, error) {
	c, err := dialSSH(h.addr, &ssh.ClientConfig{
		User: "someone-else", Auth: methods, Timeout: 10 * time.Second,
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), // the pin is the launcher's (launcher18); here: auth
	})
	if err != nil {
		return "", err
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	out, err := s.CombinedOutput(command)
	return string(out), err
}

func newKey(t *testing.T) ssh.Signer {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func writeAuthorizedKeys(t *testing.T, keys ...ssh.PublicKey) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# who may connect\n\n")
	for _, k := range keys {
		b.Write(ssh.MarshalAuthorizedKey(k))
	}
	p := filepath.Join(t.TempDir(), "authorized_keys")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestHostAuthMatrix: who logs in to a host offered as portal "lab", with and
// without --authorized-keys, over a real x/crypto SSH client.
func TestHostAuthMatrix(t *testing.T) {
	r, other := newRelay(t), newRelay(t)
	hostToken := r.mint(t, relay.RoleHost, "lab", "lab-host", time.Hour)
	client := r.mint(t, relay.RoleClient, "lab", "ann", time.Hour)
	listed, unlisted := newKey(t), newKey(t)
	tampered := []byte(client)
	tampered[strings.IndexByte(client, '.')+10] ^= 1 // a bit of the payload
	algNone, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "ann", "role": "client", "portal": "lab",
		"iat": time.Now().Unix(), "nbf": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(), "jti": "x",
		"rk": base64.RawURLEncoding.EncodeToString(r.key.Public().(ed25519.PublicKey))}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}

	tokenOnly := startHost(t, Options{RelayURL: "test://relay", Token: hostToken})
	withKeys := startHost(t, Options{RelayURL: "test://relay", Token: hostToken, AuthorizedKeysFile: writeAuthorizedKeys(t, listed.PublicKey())})

	pw, key := ssh.Password, ssh.PublicKeys
	tests := []struct {
		name    string
		h       *runningHost
		methods []ssh.AuthMethod
		ok      bool
	}{
		{"token alone", tokenOnly, []ssh.AuthMethod{pw(client)}, true},
		{"a key, no token", tokenOnly, []ssh.AuthMethod{key(listed)}, false},
		{"token for another portal", tokenOnly, []ssh.AuthMethod{pw(r.mint(t, relay.RoleClient, "other", "ann", time.Hour))}, false},
		{"the host token as a client token", tokenOnly, []ssh.AuthMethod{pw(hostToken)}, false},
		{"expired client token", tokenOnly, []ssh.AuthMethod{pw(r.mint(t, relay.RoleClient, "lab", "ann", -10*time.Minute))}, false},
		{"tampered client token", tokenOnly, []ssh.AuthMethod{pw(string(tampered))}, false},
		{"alg: none", tokenOnly, []ssh.AuthMethod{pw(algNone)}, false},
		{"client token of another relay key", tokenOnly, []ssh.AuthMethod{pw(other.mint(t, relay.RoleClient, "lab", "ann", time.Hour))}, false},
		{"empty password", tokenOnly, []ssh.AuthMethod{pw("")}, false},
		{"keys: token and key", withKeys, []ssh.AuthMethod{pw(client), key(listed)}, true},
		{"keys: key and token", withKeys, []ssh.AuthMethod{key(listed), pw(client)}, true},
		{"keys: token alone", withKeys, []ssh.AuthMethod{pw(client)}, false},
		{"keys: key alone", withKeys, []ssh.AuthMethod{key(listed)}, false},
		{"keys: unlisted key and token", withKeys, []ssh.AuthMethod{key(unlisted), pw(client)}, false},
		{"keys: key and the host token", withKeys, []ssh.AuthMethod{key(listed), pw(hostToken)}, false},
		{"keys: key and an expired token", withKeys, []ssh.AuthMethod{key(listed), pw(r.mint(t, relay.RoleClient, "lab", "ann", -10*time.Minute))}, false},
	}
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		out, err := tt.h.run(tt.methods, "id -un")
		if (err == nil) != tt.ok {
			t.Errorf("for %q, got err %v; want ok=%v", tt.name, err, tt.ok)
			continue
		}
		if tt.ok && strings.TrimSpace(out) != me.Username {
			t.Errorf("for %q, SSH user someone-else ran as %q; want %q", tt.name, strings.TrimSpace(out), me.Username)
		}
	}
	for _, h := range []*runningHost{tokenOnly, withKeys} {
		logs := h.stderr.String()
		for _, secret := range []string{hostToken, client, string(tampered)} {
			if strings.Contains(logs, secret) {
				t.Errorf("a token is in the host's output:\n%s", logs)
			}
		}
	}
	logs := tokenOnly.stderr.String()
	for _, want := range []string{`client token "ann" accepted`, `login as ` + me.Username + ` (SSH user "someone-else", password)`,
		"not a client token", "for another portal", "has expired", "signature is not this relay's", "it is unsigned (alg none)"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the host's log lacks %q:\n%s", want, logs)
		}
	}
}

// TestHostEndsAtTokenExpiry: a client token ends access when it expires (as VS Code
// tunnels' and Matic's do): the host closes the SSH connection at the token's exp,
// with a command still running in it, and says so; the same token cannot log in again,
// though Verify's 30 s of leeway for clock skew would let it.
func TestHostEndsAtTokenExpiry(t *testing.T) {
	r := newRelay(t)
	h := startHost(t, Options{RelayURL: "test://relay", Token: r.mint(t, relay.RoleHost, "lab", "lab-host", time.Hour)})
	client := r.mint(t, relay.RoleClient, "lab", "ann", 3*time.Second)
	exp := time.Now().Truncate(time.Second).Add(3 * time.Second) // Mint's exp, to the second
	c, err := dialSSH(h.addr, &ssh.ClientConfig{User: "ann", Auth: []ssh.AuthMethod{ssh.Password(client)}, Timeout: 10 * time.Second,
		HostKeyCallback: ssh.InsecureIgnoreHostKey()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("sleep 60"); err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() { c.Wait(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatalf("the connection outlived its client token (expired at %s) by 30 s; host log:\n%s", exp.Format(time.TimeOnly), h.stderr.String())
	}
	if at := time.Now(); at.Before(exp.Add(-100 * time.Millisecond)) {
		t.Errorf("closed at %s, before the token expired at %s", at.Format(time.StampMilli), exp.Format(time.StampMilli))
	}
	t.Logf("closed %v after the token's exp", time.Since(exp).Round(time.Millisecond))
	if _, err := h.run([]ssh.AuthMethod{ssh.Password(client)}, "true"); err == nil {
		t.Errorf("the expired token logged in again")
	}
	logs := h.stderr.String()
	for _, want := range []string{`client token expired at `, `: closed its connection (SSH user "ann")`, `client token "ann" expired at`} {
		if !strings.Contains(logs, want) {
			t.Errorf("the host's log lacks %q:\n%s", want, logs)
		}
	}
}

// dialSSH is ssh.Dial with a deadline on the whole handshake (ssh.Dial's Timeout covers
// only the TCP connect): a server that never answers fails the test instead of hanging it.
func dialSSH(addr string, cfg *ssh.ClientConfig) (*ssh.Client, error) {
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	c, chans, reqs, err := ssh.NewClientConn(nc, addr, cfg)
	if err != nil {
		nc.Close()
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	return ssh.NewClient(c, chans, reqs), nil
}
