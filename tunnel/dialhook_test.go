package tunnel

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// TestConfigDial: Config.Dial makes the stream for the first connection and for the
// reconnect after a drop (HostName and Port lead nowhere: TCP is never tried), and
// Config.Password logs in on its own, without a key.
func TestConfigDial(t *testing.T) {
	ts := startServer(t, func(s *Server) {
		s.Password = "relay-token-for-the-test"
		s.AuthorizedKey = nil // the password alone logs in
	})
	var dials atomic.Int32
	cfg := ts.config()
	cfg.Signers = nil
	cfg.HostName, cfg.Port = "nowhere.invalid", 1
	cfg.HostKeyCallback = ssh.FixedHostKey(ts.HostKey.PublicKey())
	cfg.Password = func() (string, error) { return "relay-token-for-the-test", nil }
	cfg.Dial = func(ctx context.Context) (net.Conn, error) {
		dials.Add(1)
		return (&net.Dialer{}).DialContext(ctx, "tcp", ts.Addr)
	}
	ev := newEvents()
	c := ts.dial(t, cfg, Options{OnEvent: ev.on})
	run := func() {
		t.Helper()
		var out bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if st, err := c.Run(ctx, "echo over-the-hook", nil, &out, nil); err != nil || st != 0 || out.String() != "over-the-hook\n" {
			t.Fatalf("Run: status %d, err %v, out %q", st, err, out.String())
		}
	}
	run()
	if n := dials.Load(); n != 1 {
		t.Fatalf("Dial called %d times for the first connection; want 1", n)
	}
	if n := ts.CloseConnections(); n == 0 {
		t.Fatal("no connection to drop")
	}
	ev.waitFor(t, Back, 20*time.Second)
	run()
	if n := dials.Load(); n != 2 {
		t.Errorf("Dial called %d times after one reconnect; want 2", n)
	}
}

// TestConfigPasswordRefused: a wrong Config.Password is an AuthError naming the
// password, tried once, and no prompt is shown for another.
func TestConfigPasswordRefused(t *testing.T) {
	ts := startServer(t, func(s *Server) { s.Password, s.AuthorizedKey = "the-right-one", nil })
	cfg := ts.config()
	cfg.Signers = nil
	cfg.BatchMode = false
	var asked atomic.Int32
	cfg.Password = func() (string, error) { asked.Add(1); return "a-wrong-one", nil }
	p := &fakePrompter{}
	_, err := Dial(context.Background(), cfg, Options{Prompter: p})
	var ae *AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("Dial: %v; want an AuthError", err)
	}
	if !strings.Contains(err.Error(), "tried password") {
		t.Errorf("error %q does not say the password was tried", err)
	}
	if n := asked.Load(); n != 1 {
		t.Errorf("Config.Password called %d times; want 1", n)
	}
	if got := p.all(); got != "" {
		t.Errorf("the user was asked for a password after Config.Password was refused: %q", got)
	}
}

// TestConfigDialError: the hook's error comes back from Dial, wrapped (errors.As
// finds it), in its own words: they name where they were connecting (a reconnect
// warning quotes them once, without "connecting to portal:x: cannot reach portal:x").
func TestConfigDialError(t *testing.T) {
	cfg := &Config{Alias: "portal:x", HostName: "portal:x", Port: 22, User: "u", IdentityAgent: "none",
		BatchMode: true, ConnectTimeout: 5 * time.Second}
	want := errors.New("cannot reach portal:x through the relay: no host is connected for portal x")
	cfg.Dial = func(context.Context) (net.Conn, error) { return nil, want }
	_, err := Dial(context.Background(), cfg, Options{})
	if !errors.Is(err, want) || Message(err) != want.Error() {
		t.Fatalf("Dial: %v; want the hook's error in its own words", err)
	}
}

// refusal is a Config.Dial error that says retrying cannot help.
type refusal struct{}

func (refusal) Error() string   { return "relay: token not valid (HTTP 401)" }
func (refusal) Permanent() bool { return true }

// TestConfigDialPermanent: a reconnect whose Dial fails with a Permanent error stops
// at once (Failed, that error) instead of retrying.
func TestConfigDialPermanent(t *testing.T) {
	ts := startServer(t, nil)
	var dials atomic.Int32
	cfg := ts.config()
	cfg.Dial = func(ctx context.Context) (net.Conn, error) {
		if dials.Add(1) > 1 {
			return nil, refusal{}
		}
		return (&net.Dialer{}).DialContext(ctx, "tcp", ts.Addr)
	}
	ev := newEvents()
	ts.dial(t, cfg, Options{OnEvent: ev.on})
	ts.CloseConnections()
	failed := ev.waitFor(t, Failed, 20*time.Second)
	if !errors.As(failed.Err, new(refusal)) {
		t.Errorf("Failed with %v; want the refusal", failed.Err)
	}
	time.Sleep(300 * time.Millisecond) // a retry would come after 250 ms or so
	if n := dials.Load(); n != 2 {
		t.Errorf("Dial called %d times; want 2 (the first, one reconnect)", n)
	}
}
