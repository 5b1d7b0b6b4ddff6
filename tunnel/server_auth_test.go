package tunnel

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// authServer serves with AuthorizedKeys and/or CheckPassword (the password "right"),
// the single-factor AuthorizedKey cleared, and records what AuthLog saw.
type authServer struct {
	*testServer
	mu      sync.Mutex
	log     []string
	until   time.Time // what CheckPassword returns with "right"
	expired []string  // what OnExpire saw
}

func startAuthServer(t *testing.T, keys []ssh.PublicKey, password bool) *authServer {
	t.Helper()
	return startAuthServerUntil(t, keys, password, time.Time{})
}

func startAuthServerUntil(t *testing.T, keys []ssh.PublicKey, password bool, until time.Time) *authServer {
	t.Helper()
	as := &authServer{until: until}
	as.testServer = startServer(t, func(s *Server) {
		s.AuthorizedKey = nil // serveOn's single-factor key: not mixed in
		s.AuthorizedKeys = keys
		if password {
			s.CheckPassword = func(_ string, p []byte) (time.Time, error) {
				if subtle.ConstantTimeCompare(p, []byte("right")) == 1 {
					return as.until, nil
				}
				return time.Time{}, errors.New("not a client token for this portal")
			}
			s.OnExpire = func(_ net.Addr, user string, until time.Time) {
				as.mu.Lock()
				as.expired = append(as.expired, user)
				as.mu.Unlock()
			}
		}
		s.AuthLog = func(_ net.Addr, user, method string, err error) {
			as.mu.Lock()
			as.log = append(as.log, fmt.Sprintf("%s %s %v", user, method, err))
			as.mu.Unlock()
		}
	})
	return as
}

// login dials with these client auth methods, in this order, and runs `echo ok`.
func (as *authServer) login(user string, methods ...ssh.AuthMethod) error {
	c, err := dialSSH(as.Addr, &ssh.ClientConfig{
		User: user, Auth: methods, Timeout: 10 * time.Second,
		HostKeyCallback: ssh.FixedHostKey(as.HostKey.PublicKey()),
	})
	if err != nil {
		return err
	}
	defer c.Close()
	sess, err := c.NewSession()
	if err != nil {
		return err
	}
	defer sess.Close()
	out, err := sess.Output("echo ok")
	if err != nil {
		return err
	}
	if string(out) != "ok\n" {
		return fmt.Errorf("echo ok printed %q", out)
	}
	return nil
}

// TestServerAuthMatrix: with AuthorizedKeys and CheckPassword both set a client needs
// a listed key and the password, in either order; either alone, a wrong one of either,
// or one factor twice is refused. With only one set, that one alone logs in.
func TestServerAuthMatrix(t *testing.T) {
	good, other := newEd25519(t), newEd25519(t)
	key := func(s ssh.Signer) ssh.AuthMethod { return ssh.PublicKeys(s) }
	pw := ssh.Password
	both := startAuthServer(t, []ssh.PublicKey{other.PublicKey(), good.PublicKey()}, true)
	tokenOnly := startAuthServer(t, nil, true)
	keysOnly := startAuthServer(t, []ssh.PublicKey{good.PublicKey()}, false)
	tests := []struct {
		name    string
		srv     *authServer
		methods []ssh.AuthMethod
		ok      bool
	}{
		{"both: key then password", both, []ssh.AuthMethod{key(good), pw("right")}, true},
		{"both: password then key", both, []ssh.AuthMethod{pw("right"), key(good)}, true},
		{"both: second listed key", both, []ssh.AuthMethod{key(other), pw("right")}, true},
		{"both: key alone", both, []ssh.AuthMethod{key(good)}, false},
		{"both: password alone", both, []ssh.AuthMethod{pw("right")}, false},
		{"both: unlisted key and password", both, []ssh.AuthMethod{key(newEd25519(t)), pw("right")}, false},
		{"both: key and wrong password", both, []ssh.AuthMethod{key(good), pw("wrong")}, false},
		{"both: wrong password then key", both, []ssh.AuthMethod{pw("wrong"), key(good)}, false},
		{"both: password twice", both, []ssh.AuthMethod{pw("right"), pw("right")}, false},
		{"both: key twice", both, []ssh.AuthMethod{key(good), key(other)}, false},
		{"token only: password", tokenOnly, []ssh.AuthMethod{pw("right")}, true},
		{"token only: wrong password", tokenOnly, []ssh.AuthMethod{pw("wrong")}, false},
		{"token only: a key", tokenOnly, []ssh.AuthMethod{key(good)}, false},
		{"keys only: key", keysOnly, []ssh.AuthMethod{key(good)}, true},
		{"keys only: unlisted key", keysOnly, []ssh.AuthMethod{key(other)}, false},
		{"keys only: password", keysOnly, []ssh.AuthMethod{pw("right")}, false},
	}
	for _, tt := range tests {
		err := tt.srv.login("anyone", tt.methods...)
		if (err == nil) != tt.ok {
			t.Errorf("for %q, got err %v; want ok=%v", tt.name, err, tt.ok)
		}
	}
	// The log names methods and outcomes, never the password.
	both.mu.Lock()
	defer both.mu.Unlock()
	joined := strings.Join(both.log, "\n")
	if !strings.Contains(joined, "anyone password ssh: authenticated with partial success") || strings.Contains(joined, "right") {
		t.Errorf("AuthLog saw:\n%s", joined)
	}
}

// TestServerAuthNoMix: single-factor fields and the new ones together are refused
// rather than letting AuthorizedKey alone in past a required password.
func TestServerAuthNoMix(t *testing.T) {
	s := &Server{HostKey: newEd25519(t), AuthorizedKey: newEd25519(t).PublicKey(),
		CheckPassword: func(string, []byte) (time.Time, error) { return time.Time{}, nil }}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := s.Serve(ln); err == nil || !strings.Contains(err.Error(), "cannot be mixed") {
		t.Fatalf("Serve with a mix: %v", err)
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

// TestServerClosesAtUntil: a login whose password carries an end (a client token's
// expiry) is closed then, with a command still running in it, whether the password
// came alone, before the key or after it; OnExpire is told. A login without one
// stays.
func TestServerClosesAtUntil(t *testing.T) {
	clientKey := newEd25519(t)
	keys := []ssh.PublicKey{clientKey.PublicKey()}
	for _, tt := range []struct {
		name    string
		keys    []ssh.PublicKey
		methods []ssh.AuthMethod
	}{
		{"password alone", nil, []ssh.AuthMethod{ssh.Password("right")}},
		{"password then key", keys, []ssh.AuthMethod{ssh.Password("right"), ssh.PublicKeys(clientKey)}},
		{"key then password", keys, []ssh.AuthMethod{ssh.PublicKeys(clientKey), ssh.Password("right")}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			as := startAuthServerUntil(t, tt.keys, true, time.Now().Add(time.Second))
			c, err := dialSSH(as.Addr, &ssh.ClientConfig{User: "ann", Auth: tt.methods, Timeout: 10 * time.Second,
				HostKeyCallback: ssh.FixedHostKey(as.HostKey.PublicKey())})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			sess, err := c.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			if err := sess.Start("sleep 60"); err != nil {
				t.Fatal(err)
			}
			closed := make(chan struct{})
			go func() { c.Wait(); close(closed) }()
			start := time.Now()
			select {
			case <-closed:
			case <-time.After(20 * time.Second):
				t.Fatal("the connection outlived its login's end by 20 s")
			}
			if took := time.Since(start); took < 500*time.Millisecond {
				t.Errorf("closed after %v; want about a second (not before its end)", took)
			}
			as.mu.Lock()
			defer as.mu.Unlock()
			if len(as.expired) != 1 || as.expired[0] != "ann" {
				t.Errorf("OnExpire saw %q; want [ann]", as.expired)
			}
		})
	}
	t.Run("no end", func(t *testing.T) {
		as := startAuthServer(t, nil, true)
		c, err := dialSSH(as.Addr, &ssh.ClientConfig{User: "ann", Auth: []ssh.AuthMethod{ssh.Password("right")}, Timeout: 10 * time.Second,
			HostKeyCallback: ssh.FixedHostKey(as.HostKey.PublicKey())})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		closed := make(chan struct{})
		go func() { c.Wait(); close(closed) }()
		select {
		case <-closed:
			t.Error("a login without an end was closed")
		case <-time.After(1500 * time.Millisecond):
		}
	})
}
