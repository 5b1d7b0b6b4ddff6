package launcher

import (
	"errors"
	"net"
	"regexp"
	"strconv"
	"strings"

	"github.com/tether-dev/tether/internal/didyoumean"
	"github.com/tether-dev/tether/tunnel"
)

// The remote tether words its messages for someone at that machine: "no session "x"
// on gpu7; run `tether ls`", "not installed on this machine", "`tether apps HOST`".
// Relayed to the laptop as they are, they send the user to the wrong machine (a bare
// `tether ls` here lists the laptop's sessions) and name the host as the remote calls
// itself. words rewrites a relayed line for the laptop: the host as the user typed
// it, and each tether command as it runs from here (`tether ls -F cfg gpu-box`).
// (DESIGN.md's structured failures will carry the data; this is what a person reads.)

var (
	// noSessionRe is remote.resolve's "no session "x" on HOSTNAME; run `tether ls` to
	// see yours".
	noSessionRe = regexp.MustCompile("^(tether: )?no session (\".*\") on \\S+; run `tether ls` to see yours$")
	// tetherCmdRe is a tether command quoted in the remote's prose.
	tetherCmdRe = regexp.MustCompile("`tether (ls|stop|logs|apps|attach)((?: [^`]*)?)`")
	// pruneRe is serve's advice for an app that exited: logs, then ls --prune (which
	// works only there); from here, stop removes the session.
	pruneRe = regexp.MustCompile("`tether logs (\\S+)` shows its output, `tether ls --prune` clears the session")
	// othersRe is ls's note on sessions of other hosts sharing the state directory.
	othersRe = regexp.MustCompile("\\): run `tether ls` there$")
)

// words rewrites one line the remote tether said, for the user at the laptop.
func (s *session) words(line string) string {
	if m := noSessionRe.FindStringSubmatch(line); m != nil {
		return m[1] + "no session " + m[2] + " on " + s.host + "; run `" + s.cmdline("ls") + "` to see yours"
	}
	// Whole phrases first, held aside so that the commands they hold are not
	// rewritten again below.
	var held []string
	hold := func(text string) string {
		held = append(held, text)
		return "\x00" + strconv.Itoa(len(held)-1) + "\x00"
	}
	line = pruneRe.ReplaceAllStringFunc(line, func(m string) string {
		id := pruneRe.FindStringSubmatch(m)[1]
		return hold("`" + s.cmdline("logs", id) + "` shows its output, `" + s.cmdline("stop", id) + "` clears the session")
	})
	line = othersRe.ReplaceAllStringFunc(line, func(string) string { return hold("): run `tether ls HOST` with each of them as HOST") })
	line = strings.ReplaceAll(line, "run `tether serve` without --detach to see why", hold("on "+s.host+", `tether serve -- COMMAND` in the foreground shows why"))
	line = strings.ReplaceAll(line, "which apps HOST has", "which apps "+s.host+" has")
	line = tetherCmdRe.ReplaceAllStringFunc(line, func(m string) string {
		sub := tetherCmdRe.FindStringSubmatch(m)
		var args []string
		for _, a := range strings.Fields(sub[2]) {
			if a != "HOST" {
				args = append(args, a)
			}
		}
		return "`" + s.cmdline(append([]string{sub[1]}, args...)...) + "`"
	})
	line = strings.ReplaceAll(line, "this machine", s.host)
	for i, h := range held {
		line = strings.Replace(line, "\x00"+strconv.Itoa(i)+"\x00", h, 1)
	}
	return line
}

// commandFailed says whether serve's start failure is the app's own (it exited: the
// command is wrong), which serve words as "...; check the command and try again". Other
// failures (not installed, a name taken, the port or the state directory) say their
// own fix.
func commandFailed(msg string) bool {
	return strings.HasSuffix(strings.TrimSuffix(msg, "."), "; check the command and try again")
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
