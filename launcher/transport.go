package launcher

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/tether-dev/tether/internal/termsafe"
	"github.com/tether-dev/tether/tunnel"
)

// The SSH transports (--ssh, TETHER_SSH).
const (
	// SSHNative is tether's own SSH client (golang.org/x/crypto/ssh).
	SSHNative = "native"
	// SSHOpenSSH runs the user's own ssh for everything, through a ControlMaster: the
	// user's when their config names one that runs, tether's own otherwise.
	SSHOpenSSH = "openssh"
	// SSHAuto picks OpenSSH where the host's config asks for what the native client
	// lacks (tunnel.Config.OpenSSHReasons) and ssh is there; native otherwise.
	SSHAuto = "auto"
)

// chooseTransport decides between the native client and OpenSSH for o. For native it
// returns the resolved host. Under auto, tether's own resolver reads the config (it
// runs no Match exec) and says whether anything in it needs ssh; the choice of OpenSSH
// is said in one line. The native resolver's warnings (a Match exec it skips) are shown
// only when native is used.
func chooseTransport(o Options) (*tunnel.Config, bool, error) {
	mode, err := sshMode(o.SSHMode)
	if err != nil {
		return nil, false, err
	}
	if o.SSH != nil {
		return o.SSH, false, nil // a host resolved already (demo, tests)
	}
	if isPortal(o.Host) {
		_, err := checkRelay(o) // portal:ID without --relay
		return nil, false, err
	}
	if mode == SSHOpenSSH {
		return nil, true, nil
	}
	var warnings bytes.Buffer
	warn := prefixWriter{o.Stderr}
	opts := tunnel.ResolveOptions{ConfigFile: o.ConfigFile, Warn: warn}
	if mode == SSHAuto {
		opts.Warn = &warnings
	}
	cfg, err := tunnel.Resolve(o.Host, opts)
	if err != nil {
		warn.Write(warnings.Bytes())
		return nil, false, connectError(o.Host, err)
	}
	if mode == SSHAuto {
		if reasons := cfg.OpenSSHReasons(); len(reasons) > 0 {
			if _, ok := tunnel.OpenSSHAvailable(); ok {
				fmt.Fprintf(o.Stderr, "tether: using OpenSSH's ssh for %s (your config %s)\n", o.Host, joinReasons(reasons))
				return nil, true, nil
			}
		}
		warn.Write(warnings.Bytes())
	}
	return cfg, false, nil
}

// sshMode is the transport asked for: --ssh, else $TETHER_SSH, else auto. A value
// that is none of SSHModes is a usage error naming them.
func sshMode(flag string) (string, error) {
	mode, from := flag, "--ssh"
	if mode == "" {
		mode, from = os.Getenv("TETHER_SSH"), "TETHER_SSH"
	}
	switch mode {
	case "":
		return SSHAuto, nil
	case SSHNative, SSHOpenSSH, SSHAuto:
		return mode, nil
	}
	if from == "--ssh" {
		return "", usageError("--ssh %s: choose native, openssh or auto", termsafe.OneLine(mode))
	}
	return "", usageError("TETHER_SSH=%s: choose native, openssh or auto", termsafe.OneLine(mode))
}

// joinReasons makes one phrase of OpenSSHReasons: "sets ControlMaster and
// ControlPath", at most three of them.
func joinReasons(rs []string) string {
	more := len(rs) > 3
	if more {
		rs = rs[:3]
	}
	var parts []string
	verb := ""
	for _, r := range rs {
		v, rest, _ := strings.Cut(r, " ")
		if v == verb {
			r = rest
		}
		verb = v
		parts = append(parts, r)
	}
	if more {
		parts = append(parts, "more")
	}
	switch len(parts) {
	case 1:
		return parts[0]
	case 2:
		return parts[0] + " and " + parts[1]
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}

// controlPersist is o's ControlPersist, else $TETHER_SSH_PERSIST, else tunnel's default.
func controlPersist(o Options) (time.Duration, error) {
	if o.ControlPersist > 0 {
		return o.ControlPersist, nil
	}
	v := os.Getenv("TETHER_SSH_PERSIST")
	if v == "" {
		return tunnel.DefaultControlPersist, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Second {
		return 0, usageError("TETHER_SSH_PERSIST=%q is not a duration of a second or more (e.g. 10m)", v)
	}
	return d, nil
}

// dialOpenSSH connects through the user's ssh. While ssh logs in, the status output is
// held (ssh may prompt on the terminal, on a line of its own) and what ssh prints goes
// to stderr as it comes, filtered like remote text on a terminal.
func (s *session) dialOpenSSH(ctx context.Context, u use, onEvent func(tunnel.Event)) (Conn, error) {
	persist, err := controlPersist(s.o)
	if err != nil {
		return nil, err
	}
	if u == forwarding {
		s.status.step("connecting to %s (OpenSSH)", s.host)
	}
	if u == forwarding {
		// The loss is told as it happens, before ssh may ask on the terminal for a
		// new login (the session's event owner, pump or serving loop, may be busy).
		forward := onEvent
		onEvent = func(e tunnel.Event) {
			if e.State == tunnel.Lost {
				s.tellLost(e)
				return
			}
			forward(e)
		}
	}
	c, err := tunnel.DialOpenSSH(ctx, s.o.Host, tunnel.OpenSSHOptions{
		ConfigFile:  s.o.ConfigFile,
		Persist:     persist,
		OnEvent:     onEvent,
		Warn:        prefixWriter{s.o.Stderr},
		Terminal:    s.status.hold,
		LoginOutput: termsafe.Writer(s.o.Stderr),
		NoDelayExec: u == forwarding,
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}
