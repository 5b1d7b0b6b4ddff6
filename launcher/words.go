package launcher

import (
	"errors"
	"net"
	"strings"

	"github.com/tether-dev/tether/internal/didyoumean"
	"github.com/tether-dev/tether/tunnel"
	"github.com/tether-dev/tether/wire"
)

// The remote tether words its messages for someone at that machine: "no session "x"
// on gpu7; run `tether ls`", "not installed on this machine", "`tether apps HOST`".
// Relayed as they are, they would send the user to the wrong machine (a bare `tether
// ls` here lists the laptop's sessions) and name the host as the remote calls itself.
// So they cross as data (wire.Text: the machine and each tether command held apart
// from the plain words), and the launcher says them its own way: the host as the user
// typed it, each command as it runs from here (`tether ls -F cfg gpu-box`). Its
// decisions (which advice to give) go by wire.Failure's Kind, never by the words.

// wording is how this session says wire.Text's references.
func (s *session) wording() wire.Wording {
	return wire.Wording{
		Machine: func(string) string { return s.host },
		Command: func(args []string, _ bool) string { return s.cmdline(args...) },
	}
}

// say is t in the laptop's words.
func (s *session) say(t wire.Text) string { return t.Say(s.wording()) }

// sayFailure is a remote's failure in the laptop's words: what went wrong, then its
// advice.
func (s *session) sayFailure(f *wire.Failure) string {
	msg := s.say(f.Said)
	if a := s.say(f.Advice); a != "" {
		msg += "; " + a
	}
	return msg
}

// suggestHost adds, to the error of a host name that does not resolve, the ssh_config
// hosts it is nearest to (gpubox → gpu-box), as git suggests commands.
func suggestHost(o Options, cause, err error) error {
	var le *Error
	if !errors.As(err, &le) || !unresolved(cause) || o.Host == "" {
		return err
	}
	aliases := tunnel.HostAliases(tunnel.ResolveOptions{ConfigFile: o.ConfigFile})
	for _, a := range aliases {
		if a == o.Host {
			return err // an alias whose HostName does not resolve: nothing to suggest
		}
	}
	near := didyoumean.Closest(o.Host, aliases)
	if len(near) == 0 {
		return err
	}
	where := "your ssh config"
	if o.ConfigFile != "" {
		where = o.ConfigFile
	}
	le.Hint = didyoumean.Phrase(near) + " (a Host in " + where + "); otherwise " + le.Hint
	return le
}

// unresolved says whether err is a host name that does not resolve (DNS: no such
// name), from tether's own client or from ssh's words.
func unresolved(err error) bool {
	var dns *net.DNSError
	if errors.As(err, &dns) && dns.IsNotFound {
		return true
	}
	var oe *tunnel.OpenSSHError
	return errors.As(err, &oe) && oe.Kind == tunnel.SSHUnreachable && strings.Contains(strings.Join(oe.Lines, "\n"), "Could not resolve hostname")
}
