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
