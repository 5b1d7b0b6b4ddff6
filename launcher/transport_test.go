package launcher

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tether-dev/tether/tunnel"
)

// TestSSHMode: --ssh wins over TETHER_SSH, auto is the default, and anything else is
// a usage error naming the choices and where the bad value came from.
func TestSSHMode(t *testing.T) {
	tests := []struct {
		flag, env, want, err string
	}{
		{"", "", SSHAuto, ""},
		{"native", "openssh", SSHNative, ""},
		{"", "openssh", SSHOpenSSH, ""},
		{"openssh", "", SSHOpenSSH, ""},
		{"ssh", "", "", "--ssh ssh: choose native, openssh or auto"},
		{"", "OpenSSH", "", "TETHER_SSH=OpenSSH: choose native, openssh or auto"},
	}
	for _, tt := range tests {
		t.Setenv("TETHER_SSH", tt.env)
		got, err := sshMode(tt.flag)
		var le *Error
		switch {
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("for --ssh %q TETHER_SSH %q, got %q, %v; want %q", tt.flag, tt.env, got, err, tt.want)
		case tt.err != "" && (err == nil || err.Error() != tt.err || !errors.As(err, &le) || le.ExitCode() != 2):
			t.Errorf("for --ssh %q TETHER_SSH %q, got error %v; want usage error %q", tt.flag, tt.env, err, tt.err)
		}
	}
}

// TestJoinReasons: one phrase after "your config".
func TestJoinReasons(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{[]string{"sets ControlMaster"}, "sets ControlMaster"},
		{[]string{"sets ControlMaster", "sets ControlPath"}, "sets ControlMaster and ControlPath"},
		{[]string{"sets ControlMaster", "has Match exec", "sets PKCS11Provider"}, "sets ControlMaster, has Match exec and sets PKCS11Provider"},
		{[]string{"sets A", "sets B", "sets C", "sets D"}, "sets A, B, C and more"},
	}
	for _, tt := range tests {
		if got := joinReasons(tt.in); got != tt.want {
			t.Errorf("for %q, got %q; want %q", tt.in, got, tt.want)
		}
	}
}

// TestChooseTransport: auto runs OpenSSH for a host whose config sets ControlMaster
// (saying so once) when ssh is installed, and tether's own client for a plain one;
// native and openssh are taken as said.
func TestChooseTransport(t *testing.T) {
	t.Setenv("TETHER_SSH", "")
	cfg := filepath.Join(t.TempDir(), "config")
	os.WriteFile(cfg, []byte("Host shared\n  ControlMaster auto\n  ControlPath /tmp/cm-%C\nHost plain\n  Port 2222\n"), 0o600)
	_, haveSSH := tunnel.OpenSSHAvailable()
	for _, tt := range []struct {
		host, mode string
		openssh    bool
	}{
		{"shared", "", haveSSH},
		{"shared", SSHNative, false},
		{"plain", "", false},
		{"plain", SSHOpenSSH, true},
	} {
		var stderr bytes.Buffer
		c, openssh, err := chooseTransport(Options{Host: tt.host, ConfigFile: cfg, SSHMode: tt.mode, Stderr: &stderr})
		if err != nil || openssh != tt.openssh || (!openssh && c == nil) {
			t.Errorf("for %s --ssh %q, got openssh %v, %v; want %v", tt.host, tt.mode, openssh, err, tt.openssh)
		}
		said := strings.Contains(stderr.String(), "tether: using OpenSSH's ssh for shared (your config sets ControlMaster and ControlPath)\n")
		if said != (tt.openssh && tt.mode == "") || strings.Count(stderr.String(), "\n") > 1 {
			t.Errorf("for %s --ssh %q, stderr %q", tt.host, tt.mode, stderr.String())
		}
	}
}
