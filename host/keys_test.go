package host

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/tether-dev/tether/relay"
)

// TestHostKeyPersistent: the first run makes the key (0600, in a 0700 directory it
// made, OpenSSH format); the second run serves the same key; a key others may read
// is refused with the chmod that fixes it.
func TestHostKeyPersistent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cfg", "tether", HostKeyName)
	s1, made, err := loadHostKey(path)
	if err != nil || !made {
		t.Fatalf("first load: made=%v, %v", made, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v; want mode 0600", fi.Mode(), err)
	}
	if di, _ := os.Stat(filepath.Dir(path)); di.Mode().Perm() != 0o700 {
		t.Errorf("key directory mode %v; want 0700", di.Mode())
	}
	data, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(data), "-----BEGIN OPENSSH PRIVATE KEY-----") {
		t.Errorf("key file is not in OpenSSH format:\n%.60s", data)
	}
	s2, made, err := loadHostKey(path)
	if err != nil || made {
		t.Fatalf("second load: made=%v, %v", made, err)
	}
	if ssh.FingerprintSHA256(s1.PublicKey()) != ssh.FingerprintSHA256(s2.PublicKey()) {
		t.Error("the second run has another host key")
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o644} {
		os.Chmod(path, mode)
		_, _, err := loadHostKey(path)
		if err == nil || !strings.Contains(err.Error(), "chmod 600 "+path) {
			t.Errorf("for mode %04o, got %v; want a refusal naming chmod 600", mode, err)
		}
	}
	os.Chmod(path, 0o600)
	os.WriteFile(path, []byte("not a key"), 0o600)
	if _, _, err := loadHostKey(path); err == nil || !strings.Contains(err.Error(), "not an SSH private key") {
		t.Errorf("garbage key: %v", err)
	}
}

func TestAuthorizedKeysFile(t *testing.T) {
	k := newKey(t).PublicKey()
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o600)
		os.Chmod(p, mode)
		return p
	}
	keys, err := loadAuthorizedKeys(write("good", "# c\n"+line+" ann@laptop\n\n"+line+"\n", 0o644))
	if err != nil || len(keys) != 2 {
		t.Fatalf("good file: %d keys, %v", len(keys), err)
	}
	tests := []struct {
		name, content, want string
		mode                os.FileMode
	}{
		{"options", `from="10.0.0.0/8" ` + line + "\n", "has options (from=", 0o600},
		{"command", `command="true" ` + line + "\n", "has options", 0o600},
		{"garbage", "ssh-ed25519 AAAAnotbase64\n", "line 1 of", 0o600},
		{"empty", "# nobody\n", "has no keys", 0o600},
		{"writable", line + "\n", "chmod go-w", 0o666},
	}
	for _, tt := range tests {
		_, err := loadAuthorizedKeys(write(tt.name, tt.content, tt.mode))
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("for %q, got %v; want one line with %q", tt.name, err, tt.want)
		}
	}
	if _, err := loadAuthorizedKeys(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "cannot read the authorized keys file") {
		t.Errorf("missing file: %v", err)
	}
}

// TestHostTokenRefused: no token, a client token, an expired or tampered host token
// stop tether host before it offers anything, in one line that says what to do.
func TestHostTokenRefused(t *testing.T) {
	r := newRelay(t)
	good := r.mint(t, relay.RoleHost, "lab", "lab-host", time.Hour)
	tampered := []byte(good)
	tampered[strings.IndexByte(good, '.')+12] ^= 1
	tests := []struct{ name, token, want string }{
		{"unset", "", "TETHER_PORTAL_TOKEN is not set; set it to this machine's host token"},
		{"client token", r.mint(t, relay.RoleClient, "lab", "ann", time.Hour), "not a host token"},
		{"expired", r.mint(t, relay.RoleHost, "lab", "lab-host", -10*time.Minute), "expired; ask for a new one"},
		{"tampered", string(tampered), "not valid"},
		{"garbage", "hello", "not valid"},
	}
	for _, tt := range tests {
		_, err := prepare(Options{Token: tt.token, HostKeyFile: filepath.Join(t.TempDir(), "k")})
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") ||
			tt.token != "" && strings.Contains(err.Error(), tt.token) {
			t.Errorf("for %q, got %v; want one line with %q and no token", tt.name, err, tt.want)
		}
	}
}

// TestHostCommandEnvironment: a client's command runs in a login environment, so the
// host token in tether host's own environment never reaches it.
func TestHostCommandEnvironment(t *testing.T) {
	r := newRelay(t)
	hostToken := r.mint(t, relay.RoleHost, "lab", "lab-host", time.Hour)
	t.Setenv(TokenEnv, hostToken)
	h := startHost(t, Options{RelayURL: "test://relay", Token: hostToken})
	out, err := h.run([]ssh.AuthMethod{ssh.Password(r.mint(t, relay.RoleClient, "lab", "ann", time.Hour))}, "env")
	if err != nil {
		t.Fatalf("env: %v\n%s", err, out)
	}
	if strings.Contains(out, hostToken) || strings.Contains(out, TokenEnv) {
		t.Errorf("the host token reached a client's command:\n%s", out)
	}
	if !strings.Contains(out, "HOME=") || !strings.Contains(out, "LOGNAME=") {
		t.Errorf("no login environment:\n%s", out)
	}
}
