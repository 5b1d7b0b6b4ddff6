package launcher

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tether-dev/tether/tunnel"
	"github.com/tether-dev/tether/wire"
)

// TestWords: what the remote tether says for someone at that machine crosses as data
// (wire.Text) and is said in the laptop's words: the host as typed, and each command as
// it runs from here.
func TestWords(t *testing.T) {
	s := &session{host: "gpu-box", o: Options{Host: "gpu-box", ConfigFile: "/home/me/cfg"}}
	tests := []struct {
		said wire.Text
		want string
	}{
		{wire.Textf("no session %q on %v; run %v to see yours", "x", wire.Machine("gpu7.cluster"), wire.Tether("ls")),
			"no session \"x\" on gpu-box; run `tether ls -F /home/me/cfg gpu-box` to see yours"},
		{wire.Textf("rstudio is not installed on %v: none of rserver was found on PATH (/usr/bin); install it (x), or run %v to see which apps %v has", wire.ThisMachine, wire.TetherHost("apps"), wire.ThisMachine),
			"rstudio is not installed on gpu-box: none of rserver was found on PATH (/usr/bin); install it (x), or run `tether apps -F /home/me/cfg gpu-box` to see which apps gpu-box has"},
		{wire.Textf("the app exited with status 1 (last output: %q); %v shows its output, %v clears the session", "boom", wire.Tether("logs", "ab12cd34"), wire.Tether("stop", "ab12cd34")),
			"the app exited with status 1 (last output: \"boom\"); `tether logs -F /home/me/cfg gpu-box ab12cd34` shows its output, `tether stop -F /home/me/cfg gpu-box ab12cd34` clears the session"},
		{wire.Textf("a session named %q is already running (ab12cd34); stop it with %v or pick another --name", "nb", wire.Tether("stop", "nb")),
			"a session named \"nb\" is already running (ab12cd34); stop it with `tether stop -F /home/me/cfg gpu-box nb` or pick another --name"},
		{wire.Textf("nothing listens on port 5432 on %v's loopback (127.0.0.1 or ::1)", wire.ThisMachine),
			"nothing listens on port 5432 on gpu-box's loopback (127.0.0.1 or ::1)"},
		{wire.Textf("2 of these sessions are over; %v removes them (and their logs)", wire.Tether("ls", "--prune")),
			"2 of these sessions are over; `tether ls -F /home/me/cfg gpu-box --prune` removes them (and their logs)"},
		// Plain words stay, and carry nothing that drives a terminal; a command's
		// arguments are quoted.
		{wire.Plain("plain words stay \x1b]0;title\x07"), "plain words stay "},
		{wire.Textf("stop it with %v", wire.Tether("stop", "it's")), "stop it with `tether stop -F /home/me/cfg gpu-box 'it'\\''s'`"},
	}
	for _, tt := range tests {
		if got := s.say(tt.said); got != tt.want {
			t.Errorf("for %q,\n got %q;\nwant %q", tt.said, got, tt.want)
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
	for _, p := range wire.Presets() {
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
