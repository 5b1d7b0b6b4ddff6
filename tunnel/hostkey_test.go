package tunnel

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func line(hosts string, k ssh.PublicKey) string {
	return hosts + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

func dialErr(cfg *Config, p Prompter) error {
	c, err := Dial(context.Background(), cfg, Options{Prompter: p})
	if err == nil {
		c.Close()
	}
	return err
}

func TestHostKeyUnknown(t *testing.T) {
	ts := startServer(t, nil)
	fp := ssh.FingerprintSHA256(ts.HostKey.PublicKey())
	tests := []struct {
		mode     string
		batch    bool
		prompter *fakePrompter
		wantOK   bool
		recorded bool
	}{
		{mode: "yes"},
		{mode: "yes", prompter: &fakePrompter{confirm: true}},
		{mode: "accept-new", wantOK: true, recorded: true},
		{mode: "accept-new", batch: true, wantOK: true, recorded: true},
		{mode: "no", wantOK: true, recorded: true},
		{mode: "ask"},
		{mode: "ask", batch: true, prompter: &fakePrompter{confirm: true}},
		{mode: "ask", prompter: &fakePrompter{confirm: false}},
		{mode: "ask", prompter: &fakePrompter{confirm: true}, wantOK: true, recorded: true},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%s/batch=%v/prompter=%v", tt.mode, tt.batch, tt.prompter != nil)
		t.Run(name, func(t *testing.T) {
			cfg := ts.config()
			cfg.UserKnownHostsFiles = []string{t.TempDir() + "/sub/known_hosts"}
			cfg.StrictHostKeyChecking, cfg.BatchMode = tt.mode, tt.batch
			var p Prompter
			if tt.prompter != nil {
				p = tt.prompter
			}
			err := dialErr(cfg, p)
			if tt.wantOK != (err == nil) {
				t.Fatalf("for %s, got %v; want ok=%v", name, err, tt.wantOK)
			}
			var ue *HostKeyUnknownError
			if !tt.wantOK && !errors.As(err, &ue) {
				t.Fatalf("for %s, got %v; want HostKeyUnknownError", name, err)
			}
			if declined := tt.mode == "ask" && !tt.batch && tt.prompter != nil && !tt.prompter.confirm; !tt.wantOK && ue.Declined != declined {
				t.Errorf("for %s, Declined is %v; want %v", name, ue.Declined, declined)
			}
			if !tt.wantOK && !strings.Contains(err.Error(), fp) {
				t.Errorf("error lacks the fingerprint: %v", err)
			}
			b, _ := os.ReadFile(cfg.UserKnownHostsFiles[0])
			if tt.recorded != strings.Contains(string(b), strings.Fields(line("x", ts.HostKey.PublicKey()))[2]) {
				t.Errorf("for %s, known_hosts is %q; recorded should be %v", name, b, tt.recorded)
			}
			if tt.prompter != nil && tt.mode == "ask" && !tt.batch && !strings.Contains(tt.prompter.all(), fp) {
				t.Errorf("the question lacks the fingerprint: %q", tt.prompter.all())
			}
			if tt.recorded {
				// Now known: a strict dial passes.
				cfg.StrictHostKeyChecking = "yes"
				if err := dialErr(cfg, nil); err != nil {
					t.Errorf("after recording: %v", err)
				}
			}
		})
	}
}

func TestHostKeyAcceptNewHashed(t *testing.T) {
	ts := startServer(t, nil)
	cfg := ts.config()
	cfg.UserKnownHostsFiles = []string{t.TempDir() + "/known_hosts"}
	cfg.StrictHostKeyChecking, cfg.HashKnownHosts = "accept-new", true
	if err := dialErr(cfg, nil); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(cfg.UserKnownHostsFiles[0])
	if !strings.HasPrefix(string(b), "|1|") || strings.Contains(string(b), "127.0.0.1") {
		t.Fatalf("known_hosts not hashed: %q", b)
	}
	if fi, _ := os.Stat(cfg.UserKnownHostsFiles[0]); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	cfg.StrictHostKeyChecking = "yes"
	if err := dialErr(cfg, nil); err != nil {
		t.Fatalf("hashed entry does not match: %v", err)
	}
}

func TestHostKeyChanged(t *testing.T) {
	ts := startServer(t, nil)
	other := newEd25519(t).PublicKey()
	for _, mode := range []string{"yes", "accept-new", "ask", "no"} {
		cfg := ts.config()
		cfg.StrictHostKeyChecking, cfg.BatchMode = mode, false
		writeFile(t, cfg.UserKnownHostsFiles[0], "# first line\n"+line("["+"127.0.0.1"+fmt.Sprintf("]:%d", ts.Port), other)+"\n")
		err := dialErr(cfg, &fakePrompter{confirm: true})
		var ce *HostKeyChangedError
		if !errors.As(err, &ce) {
			t.Fatalf("for %s, got %v; want HostKeyChangedError", mode, err)
		}
		msg := err.Error()
		for _, want := range []string{ssh.FingerprintSHA256(other), ssh.FingerprintSHA256(ts.HostKey.PublicKey()), "line 2 of " + cfg.UserKnownHostsFiles[0], "HAS CHANGED"} {
			if !strings.Contains(msg, want) {
				t.Errorf("for %s, message lacks %q: %s", mode, want, msg)
			}
		}
		b, _ := os.ReadFile(cfg.UserKnownHostsFiles[0])
		if strings.Count(string(b), "\n") != 2 {
			t.Errorf("for %s, known_hosts was changed: %q", mode, b)
		}
	}
}

func TestHostKeyEntries(t *testing.T) {
	ts := startServer(t, nil)
	key := ts.HostKey.PublicKey()
	addr := fmt.Sprintf("[127.0.0.1]:%d", ts.Port)
	tests := []struct {
		name, known string
		alias       string
		want        string // "" ok, else the error type
	}{
		{"plain [host]:port", line(addr, key), "", ""},
		{"hashed", line(knownhosts.HashHostname(addr), key), "", ""},
		{"wildcard", line(fmt.Sprintf("[127.0.0.*]:%d", ts.Port), key), "", ""},
		{"negated", line(fmt.Sprintf("[127.0.0.*]:%d,!", ts.Port)+addr, key), "", "unknown"},
		{"other port only", line(fmt.Sprintf("[127.0.0.1]:%d", ts.Port+1), key), "", "unknown"},
		{"bare host means port 22", line("127.0.0.1", key), "", "unknown"},
		{"revoked", line(addr, key) + "\n@revoked * " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))), "", "revoked"},
		{"HostKeyAlias", line("gpu-alias", key), "gpu-alias", ""},
		{"HostKeyAlias ignores the address", line(addr, key), "gpu-alias", "unknown"},
	}
	for _, tt := range tests {
		cfg := ts.config()
		cfg.HostKeyAlias = tt.alias
		writeFile(t, cfg.UserKnownHostsFiles[0], tt.known+"\n")
		err := dialErr(cfg, nil)
		var ue *HostKeyUnknownError
		var re *HostKeyRevokedError
		switch tt.want {
		case "":
			if err != nil {
				t.Errorf("for %s, got %v; want ok", tt.name, err)
			}
		case "unknown":
			if !errors.As(err, &ue) {
				t.Errorf("for %s, got %v; want unknown", tt.name, err)
			}
		case "revoked":
			if !errors.As(err, &re) {
				t.Errorf("for %s, got %v; want revoked", tt.name, err)
			}
		}
	}
}

// TestHostKeyManyTypes: the server offers RSA, ECDSA and Ed25519, known_hosts holds only
// one of them: no false mismatch (golang/go#29286).
func TestHostKeyManyTypes(t *testing.T) {
	rsaK, ecK, edK := newRSA(t), newECDSA(t), newEd25519(t)
	ts := startServer(t, func(s *Server) {
		s.HostKey = rsaK
		s.ExtraHostKeys = []ssh.Signer{ecK, edK}
	})
	addr := fmt.Sprintf("[127.0.0.1]:%d", ts.Port)
	for _, k := range []ssh.Signer{edK, ecK, rsaK} {
		cfg := ts.config()
		writeFile(t, cfg.UserKnownHostsFiles[0], line(addr, k.PublicKey())+"\n")
		if err := dialErr(cfg, nil); err != nil {
			t.Errorf("only %s known: %v", k.PublicKey().Type(), err)
		}
	}
	// A different key of the known type is still a change.
	cfg := ts.config()
	writeFile(t, cfg.UserKnownHostsFiles[0], line(addr, newEd25519(t).PublicKey())+"\n")
	var ce *HostKeyChangedError
	if err := dialErr(cfg, nil); !errors.As(err, &ce) {
		t.Errorf("changed ed25519 among many: %v", err)
	}
}

// TestHostKeyCertAuthority: a host certificate signed by an @cert-authority key is
// accepted; the same certificate with the CA not trusted for this host is not.
func TestHostKeyCertAuthority(t *testing.T) {
	ca := newEd25519(t)
	hostKey := newEd25519(t)
	cert := &ssh.Certificate{
		Key: hostKey.PublicKey(), CertType: ssh.HostCert, KeyId: "test-host",
		ValidPrincipals: []string{"127.0.0.1"},
		ValidAfter:      uint64(time.Now().Add(-time.Hour).Unix()),
		ValidBefore:     uint64(time.Now().Add(time.Hour).Unix()),
	}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	certSigner, err := ssh.NewCertSigner(cert, hostKey)
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, func(s *Server) { s.HostKey = certSigner })
	caLine := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(ca.PublicKey())))
	tests := []struct {
		name, known string
		ok          bool
	}{
		{"CA for the host", "@cert-authority [127.0.0.*]:* " + caLine, true},
		{"CA for all", "@cert-authority * " + caLine, true},
		{"CA for another host", "@cert-authority other.example " + caLine, false},
		{"revoked CA", "@cert-authority * " + caLine + "\n@revoked * " + caLine, false},
		{"revoked host key", "@cert-authority * " + caLine + "\n@revoked * " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(hostKey.PublicKey()))), false},
	}
	for _, tt := range tests {
		cfg := ts.config()
		writeFile(t, cfg.UserKnownHostsFiles[0], tt.known+"\n")
		err := dialErr(cfg, nil)
		if tt.ok != (err == nil) {
			t.Errorf("for %s, got %v; want ok=%v", tt.name, err, tt.ok)
		}
	}
}

// TestHostKeyOtherTypeKnown: known_hosts knows the host only by a key type the server
// does not offer. It failed with "no common algorithm"; now the handshake gets to the
// key, and it is a changed key as OpenSSH judges it (HOST_CHANGED, "Offending ED25519
// key"): refused in every mode, never asked about nor added, naming the known entry.
func TestHostKeyOtherTypeKnown(t *testing.T) {
	ecK := newECDSA(t)
	ts := startServer(t, func(s *Server) { s.HostKey = ecK })
	addr := fmt.Sprintf("[127.0.0.1]:%d", ts.Port)
	edPub := newEd25519(t).PublicKey()
	edLine := line(addr, edPub)
	for _, mode := range []string{"ask", "accept-new", "no", "yes"} {
		t.Run(mode, func(t *testing.T) {
			cfg := ts.config()
			kh := cfg.UserKnownHostsFiles[0]
			writeFile(t, kh, edLine+"\n")
			cfg.StrictHostKeyChecking, cfg.BatchMode = mode, false
			p := &fakePrompter{confirm: true}
			err := dialErr(cfg, p)
			var ce *HostKeyChangedError
			if !errors.As(err, &ce) {
				t.Fatalf("got %v; want HostKeyChangedError", err)
			}
			want := KnownKey{File: kh, Line: 1, Type: ssh.KeyAlgoED25519, Fingerprint: ssh.FingerprintSHA256(edPub)}
			if ce.Host != addr || ce.Type != ssh.KeyAlgoECDSA256 || ce.Offered != ssh.FingerprintSHA256(ecK.PublicKey()) ||
				len(ce.Expected) != 1 || ce.Expected[0] != want {
				t.Errorf("got %+v; want the ECDSA key offered and %+v expected", ce, want)
			}
			msg := err.Error()
			for _, w := range []string{"REMOTE HOST IDENTIFICATION HAS CHANGED", "known_hosts holds no ecdsa-sha2-nistp256 key for it, only keys of other types",
				"expected ssh-ed25519 " + want.Fingerprint + " (" + kh + ":1)", "ssh-keygen -R"} {
				if !strings.Contains(msg, w) {
					t.Errorf("%q lacks %q", msg, w)
				}
			}
			if strings.Contains(msg, "no common algorithm") {
				t.Errorf("still %q", msg)
			}
			if q := p.all(); q != "" {
				t.Errorf("asked about a changed key: %q", q)
			}
			if b, _ := os.ReadFile(kh); string(b) != edLine+"\n" {
				t.Errorf("known_hosts changed: %q", b)
			}
		})
	}
}

// TestHostKeyKnownTypePreferred: the server has the known type and another; known_hosts
// holds a different key of the known type. The known type is negotiated first, so this
// is a changed key (refused even under accept-new), never a new key of the other type.
func TestHostKeyKnownTypePreferred(t *testing.T) {
	edK, ecK := newEd25519(t), newECDSA(t)
	ts := startServer(t, func(s *Server) {
		s.HostKey = ecK
		s.ExtraHostKeys = []ssh.Signer{edK}
	})
	addr := fmt.Sprintf("[127.0.0.1]:%d", ts.Port)
	cfg := ts.config()
	writeFile(t, cfg.UserKnownHostsFiles[0], line(addr, newEd25519(t).PublicKey())+"\n")
	for _, mode := range []string{"accept-new", "ask", "yes"} {
		cfg.StrictHostKeyChecking = mode
		var ce *HostKeyChangedError
		if err := dialErr(cfg, &fakePrompter{confirm: true}); !errors.As(err, &ce) || ce.Type != ssh.KeyAlgoED25519 {
			t.Errorf("%s: got %v; want the Ed25519 key reported changed", mode, err)
		}
	}
	if b, _ := os.ReadFile(cfg.UserKnownHostsFiles[0]); strings.Count(string(b), "\n") != 1 {
		t.Errorf("known_hosts grew: %q", b)
	}
}

func TestAlgorithmsFor(t *testing.T) {
	ed := knownhosts.KnownKey{Key: newEd25519(t).PublicKey()}
	rsaK := knownhosts.KnownKey{Key: newRSA(t).PublicKey()}
	got := strings.Join(algorithmsFor([]knownhosts.KnownKey{rsaK}, false), ",")
	want := "rsa-sha2-512,rsa-sha2-256,ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521"
	if got != want {
		t.Errorf("RSA known: %s; want %s", got, want)
	}
	got = strings.Join(algorithmsFor([]knownhosts.KnownKey{ed}, true), ",")
	if !strings.HasPrefix(got, ssh.CertAlgoED25519v01+",") || !strings.Contains(got, ","+ssh.CertAlgoRSASHA256v01+",ssh-ed25519,ecdsa-sha2-nistp256,") || strings.Contains(got, "ssh-rsa,") {
		t.Errorf("Ed25519 and a CA known: %s", got)
	}
}
