package launcher

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tether-dev/tether/tunnel"
)

// A changed host key is told as OpenSSH tells it: the host, the key offered now, the
// key known and the known_hosts FILE:LINE holding it, and the command that removes it
// (quoted for a shell: [host]:port would glob).
func TestConnectErrorChangedHostKey(t *testing.T) {
	cause := &tunnel.HostKeyChangedError{Host: "[127.0.0.1]:2222", Type: "ssh-ed25519", Offered: "SHA256:newnewnew",
		Expected: []tunnel.KnownKey{{File: "/home/u/.ssh/known hosts", Line: 7, Type: "ssh-ed25519", Fingerprint: "SHA256:oldoldold"}}}
	err := connectError("gpu-box", fmt.Errorf("dialing: %w", cause))
	msg := err.Error()
	for _, want := range []string{
		"host key of gpu-box has CHANGED",
		"offers ssh-ed25519 SHA256:newnewnew",
		"/home/u/.ssh/known hosts:7 holds SHA256:oldoldold",
		"(as [127.0.0.1]:2222)",
		"man-in-the-middle",
		"nothing was started",
		"`ssh-keygen -R '[127.0.0.1]:2222' -f '/home/u/.ssh/known hosts'`",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("message is not one line:\n%s", msg)
	}
	if e, ok := err.(*Error); !ok || e.ExitCode() != 1 {
		t.Errorf("error %T; want *Error with exit 1", err)
	}
}

// A refused login says what was tried and the next step in the user's terms: an
// encrypted key that could not be unlocked goes to the agent (ssh-add FILE), a server
// that takes only Kerberos goes to OpenSSH's client, and a passphrase given up is said.
func TestConnectErrorAuth(t *testing.T) {
	tests := []struct {
		name string
		auth *tunnel.AuthError
		want []string
		not  []string
	}{
		{"encrypted key, no terminal",
			&tunnel.AuthError{User: "ana", Host: "gpu", Locked: []string{"/home/ana/.ssh/id_ed25519"}, ServerMethods: []string{"publickey"}},
			[]string{"gpu-box refused to let ana in", "/home/ana/.ssh/id_ed25519 is encrypted and tether cannot ask for the passphrase", "`ssh-add /home/ana/.ssh/id_ed25519`"},
			[]string{"no key was found", "IdentityFile in"}},
		{"agent keys refused and an encrypted key",
			&tunnel.AuthError{User: "ana", Host: "gpu", Tried: []string{"agent key SHA256:abc"}, Locked: []string{"/home/ana/my keys/id"}},
			[]string{"tried agent key SHA256:abc; /home/ana/my keys/id is encrypted", "`ssh-add '/home/ana/my keys/id'`"},
			nil},
		{"Kerberos only",
			&tunnel.AuthError{User: "ana", Host: "gpu", ServerMethods: []string{"gssapi-with-mic"}},
			[]string{"gpu-box accepts only gssapi-with-mic (Kerberos) logins", "built-in SSH client cannot", "--ssh openssh", "`ssh gpu-box`"},
			[]string{"refused"}},
		{"nothing at all",
			&tunnel.AuthError{User: "ana", Host: "gpu", ServerMethods: []string{"publickey", "keyboard-interactive"}},
			[]string{"no key was found (no agent, no IdentityFile)", "check that `ssh gpu-box` logs you in"},
			[]string{"ssh-add", "--ssh"}},
		{"wrong passphrase three times",
			&tunnel.AuthError{User: "ana", Host: "gpu", Tried: []string{"key /k"}, Err: fmt.Errorf("tunnel: wrong passphrase for /k")},
			[]string{"(tried key /k): wrong passphrase for /k"},
			[]string{"tunnel:"}},
		{"wrong passphrase three times: to the agent",
			&tunnel.AuthError{User: "ana", Host: "gpu", Tried: []string{"key /k"}, NotUnlocked: []string{"/k"}, Err: &tunnel.PassphraseError{File: "/k", Wrong: true}},
			[]string{"(tried key /k): wrong passphrase for /k", "`ssh-add /k`"},
			[]string{"IdentityFile", "no key was found"}},
		{"encrypted key not unlocked (Enter at the prompt, no public half): no 'no IdentityFile'",
			&tunnel.AuthError{User: "ana", Host: "gpu", NotUnlocked: []string{"/home/ana/.ssh/id_rsa"}},
			[]string{"gpu-box refused to let ana in (/home/ana/.ssh/id_rsa not unlocked (no passphrase given, or a wrong one))", "`ssh-add /home/ana/.ssh/id_rsa`"},
			[]string{"IdentityFile", "no key was found", "from a terminal"}},
		{"a code needed, no terminal",
			&tunnel.AuthError{User: "ana", Host: "gpu", Tried: []string{"key /k"}, Err: fmt.Errorf("x: %w", tunnel.ErrNoPrompt)},
			[]string{"a password or one-time code was asked for but tether cannot ask (BatchMode, or no terminal)"},
			nil},
	}
	for _, tt := range tests {
		msg := connectError("gpu-box", fmt.Errorf("dialing: %w", tt.auth)).Error()
		for _, w := range tt.want {
			if !strings.Contains(msg, w) {
				t.Errorf("for %s, got %q; want it to contain %q", tt.name, msg, w)
			}
		}
		for _, n := range tt.not {
			if strings.Contains(msg, n) {
				t.Errorf("for %s, got %q; want no %q", tt.name, msg, n)
			}
		}
		if strings.Contains(msg, "\n") {
			t.Errorf("for %s, got more than one line: %q", tt.name, msg)
		}
	}
}

// TestConnectErrorHostKeyDeclined: answering no to the host key question is said as
// that, not as "tether may not ask (not confirmed)".
func TestConnectErrorHostKeyDeclined(t *testing.T) {
	msg := connectError("gpu-box", &tunnel.HostKeyUnknownError{Host: "gpu", Type: "ssh-ed25519", Fingerprint: "SHA256:abc", Reason: "not confirmed", Declined: true}).Error()
	want := "the host key of gpu-box (ssh-ed25519 SHA256:abc) is not known and you did not accept it; nothing was started; if the fingerprint is right"
	if !strings.HasPrefix(msg, want) || strings.Contains(msg, "may not ask") {
		t.Errorf("got %q; want it to start %q", msg, want)
	}
	msg = connectError("gpu-box", &tunnel.OpenSSHError{Host: "gpu-box", Kind: tunnel.SSHHostKey, Lines: []string{"Host key verification failed."}}).Error()
	if !strings.Contains(msg, "Host key verification failed; nothing was started") {
		t.Errorf("openssh: got %q", msg)
	}
}
