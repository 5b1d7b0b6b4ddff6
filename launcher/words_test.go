package launcher

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tether-dev/tether/remote"
	"github.com/tether-dev/tether/tunnel"
)

// TestWords: what the remote tether says for someone at that machine is relayed in
// the laptop's words: the host as typed, and each command as it runs from here.
func TestWords(t *testing.T) {
	s := &session{host: "gpu-box", o: Options{Host: "gpu-box", ConfigFile: "/home/me/cfg"}}
	tests := []struct{ remote, want string }{
		{(&remote.NoSessionError{Ref: "x", Host: "gpu7.cluster"}).Error(),
			"no session \"x\" on gpu-box; run `tether ls -F /home/me/cfg gpu-box` to see yours"},
		{"tether: " + (&remote.NoSessionError{Ref: "x", Host: "gpu7"}).Error(),
			"tether: no session \"x\" on gpu-box; run `tether ls -F /home/me/cfg gpu-box` to see yours"},
		{"rstudio is not installed on this machine: none of rserver was found on PATH (/usr/bin); install it (x), or run `tether apps HOST` to see which apps HOST has",
			"rstudio is not installed on gpu-box: none of rserver was found on PATH (/usr/bin); install it (x), or run `tether apps -F /home/me/cfg gpu-box` to see which apps gpu-box has"},
		{"the app exited with status 1 (last output: \"boom\"); `tether logs ab12cd34` shows its output, `tether ls --prune` clears the session",
			"the app exited with status 1 (last output: \"boom\"); `tether logs -F /home/me/cfg gpu-box ab12cd34` shows its output, `tether stop -F /home/me/cfg gpu-box ab12cd34` clears the session"},
		{"a session named \"nb\" is already running (ab12cd34); stop it with `tether stop nb` or pick another --name",
			"a session named \"nb\" is already running (ab12cd34); stop it with `tether stop -F /home/me/cfg gpu-box nb` or pick another --name"},
		{"2 more sessions on other hosts sharing this state directory (n1, n2): run `tether ls` there",
			"2 more sessions on other hosts sharing this state directory (n1, n2): run `tether ls HOST` with each of them as HOST"},
		{"nothing listens on port 5432 on this machine's loopback (127.0.0.1 or ::1)",
			"nothing listens on port 5432 on gpu-box's loopback (127.0.0.1 or ::1)"},
		{"warning: the app listens on 0.0.0.0:8000, where anyone who can reach this machine gets to it without the token (--allow-exposed)",
			"warning: the app listens on 0.0.0.0:8000, where anyone who can reach gpu-box gets to it without the token (--allow-exposed)"},
		{"plain words stay", "plain words stay"},
	}
	for _, tt := range tests {
		if got := s.words(tt.remote); got != tt.want {
			t.Errorf("for %q,\n got %q;\nwant %q", tt.remote, got, tt.want)
		}
	}
}

func TestCommandFailed(t *testing.T) {
	for msg, want := range map[string]bool{
		"the app exited with status 1 before it was ready; check the command and try again": true,
		"rstudio is not installed on this machine: ...":                                     false,
		"a session named \"x\" is already running (ab); stop it with `tether stop x`":       false,
	} {
		if commandFailed(msg) != want {
			t.Errorf("for %q, got %v; want %v", msg, !want, want)
		}
	}
}

// TestSuggestHost: a host that does not resolve gets the ssh_config hosts nearest to
// it, from tether's own client (DNS) or from ssh's words; an alias that does not
// resolve, or a name near none, gets nothing more.
func TestSuggestHost(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config")
	os.WriteFile(cfg, []byte("Host gpu-box cluster\n  HostName nowhere.invalid\nHost *\n  User me\n"), 0o600)
	dnsErr := &tunnel.DialError{Addr: "gpubox:22", Err: &net.DNSError{Name: "gpubox", Err: "no such host", IsNotFound: true}}
	sshErr := &tunnel.OpenSSHError{Host: "gpubox", Kind: tunnel.SSHUnreachable, Lines: []string{"ssh: Could not resolve hostname gpubox: Name or service not known"}}
	for _, cause := range []error{dnsErr, sshErr} {
		err := suggestHost(Options{Host: "gpubox", ConfigFile: cfg}, cause, connectError("gpubox", cause))
		if !strings.Contains(err.Error(), "did you mean gpu-box? (a Host in "+cfg+")") {
			t.Errorf("for %T: got %q", cause, err)
		}
	}
	for _, host := range []string{"gpu-box", "elsewhere"} {
		err := suggestHost(Options{Host: host, ConfigFile: cfg}, dnsErr, connectError(host, dnsErr))
		if strings.Contains(err.Error(), "did you mean") {
			t.Errorf("for %s: got %q", host, err)
		}
	}
	refused := &tunnel.DialError{Addr: "gpubox:22", Err: errors.New("connection refused")}
	if err := suggestHost(Options{Host: "gpubox", ConfigFile: cfg}, refused, connectError("gpubox", refused)); strings.Contains(err.Error(), "did you mean") {
		t.Errorf("refused: got %q", err)
	}
}

// TestLookedFor: `tether apps HOST` names what it looked for once each ("looked for
// rserver, rserver" before: a fixed path shown by its base name).
func TestLookedFor(t *testing.T) {
	tests := []struct {
		execs []string
		want  string
	}{
		{[]string{"rserver", "/usr/lib/rstudio-server/bin/rserver"}, "rserver on PATH and /usr/lib/rstudio-server/bin/rserver"},
		{[]string{"jupyter-lab", "jupyter-notebook", "jupyter-server"}, "jupyter-lab, jupyter-notebook, jupyter-server"},
		{[]string{"code-server"}, "code-server"},
		{[]string{"/opt/a/x", "/opt/b/x"}, "/opt/a/x and /opt/b/x"},
	}
	for _, tt := range tests {
		if got := lookedFor(tt.execs); got != tt.want {
			t.Errorf("for %q, got %q; want %q", tt.execs, got, tt.want)
		}
	}
	for _, p := range remote.Presets() {
		if execs := p.Execs(); len(execs) > 1 {
			got := lookedFor(execs)
			for i, a := range execs {
				for _, b := range execs[i+1:] {
					if a == b {
						t.Errorf("%s looks for %q twice", p.Name, a)
					}
				}
			}
			if strings.Count(got, "rserver, rserver") > 0 {
				t.Errorf("%s: %q", p.Name, got)
			}
		}
	}
}
