package launcher

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tether-dev/tether/internal/shquote"
	"github.com/tether-dev/tether/internal/termsafe"
	"github.com/tether-dev/tether/tunnel"
)

// Error is a failure told to the user: what went wrong and what to do next, one line.
// The root command prints it after "tether: " and exits with Code (1 when zero).
type Error struct {
	Msg  string
	Hint string // the next step; may be empty
	Code int
	Err  error // the cause, for errors.Is/As; not printed
}

func (e *Error) Error() string {
	if e.Hint == "" {
		return e.Msg
	}
	return e.Msg + "; " + e.Hint
}

func (e *Error) Unwrap() error { return e.Err }

// ExitCode is the process exit status for this error.
func (e *Error) ExitCode() int {
	if e.Code == 0 {
		return 1
	}
	return e.Code
}

func errorf(hint string, format string, args ...any) *Error {
	return &Error{Msg: fmt.Sprintf(format, args...), Hint: hint}
}

func usageError(format string, args ...any) *Error {
	return &Error{Msg: fmt.Sprintf(format, args...), Code: 2}
}

// ExitStatusError carries a remote command's exit status when the command already said
// what went wrong on stderr (ls, stop, logs passed through): nothing more is printed.
type ExitStatusError struct{ Status int }

func (e *ExitStatusError) Error() string {
	return fmt.Sprintf("remote command exited with status %d", e.Status)
}

// ExitCode is the remote status, or 1 when it is not a valid status of its own.
func (e *ExitStatusError) ExitCode() int {
	if e.Status <= 0 || e.Status > 125 {
		return 1
	}
	return e.Status
}

// Silent tells the root command not to print anything more.
func (e *ExitStatusError) Silent() bool { return true }

// connectError turns what tunnel.Resolve or tunnel.Dial returned into one line for the
// user with the next step.
func connectError(host string, err error) error {
	var own *Error
	if errors.As(err, &own) {
		return own
	}
	var (
		ossh    *tunnel.OpenSSHError
		changed *tunnel.HostKeyChangedError
		unknown *tunnel.HostKeyUnknownError
		revoked *tunnel.HostKeyRevokedError
		auth    *tunnel.AuthError
		dial    *tunnel.DialError
		cfgErr  *tunnel.ConfigError
	)
	switch {
	case errors.As(err, &ossh):
		return openSSHError(host, ossh)
	case errors.Is(err, tunnel.ErrOpenSSHUnsupported):
		return &Error{Msg: "--ssh openssh: this system's ssh has no ControlMaster (Windows), which tether's OpenSSH transport needs",
			Hint: "use --ssh native (the default here)", Code: 2, Err: err}
	case errors.As(err, &changed):
		// As OpenSSH's warning: the host, the key offered now, the key known and where,
		// and the command that removes the old one.
		var known []string
		for _, k := range changed.Expected {
			known = append(known, fmt.Sprintf("%s:%d holds %s", k.File, k.Line, k.Fingerprint))
		}
		msg := fmt.Sprintf("the host key of %s has CHANGED: it offers %s %s", host, changed.Type, changed.Offered)
		if len(known) > 0 {
			msg += " but " + strings.Join(known, ", ")
		}
		if changed.Host != host {
			msg += " (as " + changed.Host + ")"
		}
		msg += "; someone may be intercepting the connection (man-in-the-middle), or the host was reinstalled; nothing was started"
		hint := "if the change is expected, check the new fingerprint with the host's admin, then remove the old key"
		if len(changed.Expected) > 0 {
			k := changed.Expected[0]
			hint += fmt.Sprintf(": `ssh-keygen -R %s -f %s`", shquote.Quote(changed.Host), shquote.Quote(k.File))
		}
		return &Error{Msg: msg, Hint: hint, Err: err}
	case errors.As(err, &unknown) && unknown.Declined:
		return &Error{Msg: fmt.Sprintf("the host key of %s (%s %s) is not known and you did not accept it; nothing was started", host, unknown.Type, unknown.Fingerprint),
			Hint: fmt.Sprintf("if the fingerprint is right (the host's admin can tell), answer yes next time, or record it with `ssh %s`", host), Err: err}
	case errors.As(err, &unknown):
		reason := termsafe.OneLine(unknown.Reason)
		if reason == "" {
			reason = "not allowed to ask"
		}
		return &Error{Msg: fmt.Sprintf("the host key of %s is not known (%s %s) and tether may not ask (%s)", host, unknown.Type, unknown.Fingerprint, reason),
			Hint: fmt.Sprintf("run `ssh %s` once to verify the fingerprint and record it in known_hosts, then try again", host), Err: err}
	case errors.As(err, &revoked):
		return &Error{Msg: fmt.Sprintf("the host key of %s (%s) is marked @revoked in %s:%d; refusing to connect", host, revoked.Fingerprint, revoked.File, revoked.Line),
			Hint: "ask the host's admin for its current key", Err: err}
	case errors.As(err, &auth):
		return authError(host, auth, err)
	case errors.As(err, &dial):
		return &Error{Msg: fmt.Sprintf("cannot reach %s: %s", host, dial.Msg()),
			Hint: fmt.Sprintf("check the host name, your network or VPN, and that `ssh %s` works", host), Err: err}
	case errors.As(err, &cfgErr):
		return &Error{Msg: fmt.Sprintf("ssh config problem: %s", termsafe.OneLine(tunnel.Message(cfgErr))),
			Hint: "fix that line of your ssh config", Err: err}
	case errors.Is(err, tunnel.ErrInvalidName):
		return &Error{Msg: termsafe.OneLine(tunnel.Message(err)), Hint: "use a plain host name or ssh_config alias", Code: 2, Err: err}
	}
	return &Error{Msg: fmt.Sprintf("cannot connect to %s: %s", host, termsafe.OneLine(tunnel.Message(err))),
		Hint: fmt.Sprintf("check that `ssh %s` works", host), Err: err}
}

// openSSHError words a failure of the user's ssh: what ssh said, and the next step.
func openSSHError(host string, e *tunnel.OpenSSHError) error {
	said := termsafe.Clip(termsafe.OneLine(e.Msg()), 300)
	check := fmt.Sprintf("check that `ssh %s` works", host)
	switch e.Kind {
	case tunnel.SSHMissing:
		return &Error{Msg: "--ssh openssh: no ssh program found on PATH", Hint: "install OpenSSH's client, or use --ssh native", Err: e}
	case tunnel.SSHConfig:
		return &Error{Msg: "ssh config problem (ssh -G " + host + "): " + said, Hint: "fix that line of your ssh config", Err: e}
	case tunnel.SSHUnreachable:
		return &Error{Msg: fmt.Sprintf("cannot reach %s: ssh says: %s", host, said),
			Hint: fmt.Sprintf("check the host name, your network or VPN, and that `ssh %s` works", host), Err: e}
	case tunnel.SSHHostKey:
		return &Error{Msg: fmt.Sprintf("ssh refused the host key of %s: %s; nothing was started", host, strings.TrimRight(said, ".")),
			Hint: fmt.Sprintf("run `ssh %s` to see the key and fix known_hosts (if the key changed, ask the host's admin first)", host), Err: e}
	case tunnel.SSHAuth:
		return &Error{Msg: fmt.Sprintf("%s refused the login through ssh: %s", host, said), Hint: check + " (keys, agent, one-time code or Kerberos ticket)", Err: e}
	}
	return &Error{Msg: fmt.Sprintf("ssh to %s failed: %s", host, said), Hint: check, Err: e}
}

// authError words a refused login: what was tried and the next step. A server that
// takes only what the built-in client cannot do (Kerberos) is sent to OpenSSH's client;
// an encrypted key that could not be unlocked, to the agent.
func authError(host string, auth *tunnel.AuthError, err error) error {
	if auth.Unsupported() {
		what := strings.Join(auth.ServerMethods, ", ")
		if slices.Contains(auth.ServerMethods, "gssapi-with-mic") {
			what += " (Kerberos)"
		}
		return &Error{Msg: fmt.Sprintf("%s accepts only %s logins, which tether's built-in SSH client cannot make", host, what),
			Hint: fmt.Sprintf("use your OpenSSH client with `--ssh openssh` (check that `ssh %s` logs you in)", host), Err: err}
	}
	var parts []string
	if len(auth.Tried) > 0 {
		parts = append(parts, "tried "+strings.Join(auth.Tried, ", "))
	}
	if len(auth.Locked) > 0 {
		verb := "are"
		if len(auth.Locked) == 1 {
			verb = "is"
		}
		parts = append(parts, fmt.Sprintf("%s %s encrypted and tether cannot ask for the passphrase (BatchMode, or no terminal)",
			strings.Join(auth.Locked, ", "), verb))
	}
	var skipped []string // not unlocked, and not said already by auth.Err
	var pe *tunnel.PassphraseError
	for _, f := range auth.NotUnlocked {
		if !errors.As(auth.Err, &pe) || pe.File != f {
			skipped = append(skipped, f)
		}
	}
	if len(skipped) > 0 {
		parts = append(parts, strings.Join(skipped, ", ")+" not unlocked (no passphrase given, or a wrong one)")
	}
	if len(parts) == 0 {
		parts = append(parts, "no key was found (no agent, no IdentityFile)")
	}
	msg := fmt.Sprintf("%s refused to let %s in (%s)", host, auth.User, strings.Join(parts, "; "))
	switch {
	case auth.Err != nil && errors.Is(auth.Err, tunnel.ErrNoPrompt):
		if len(auth.Locked) == 0 {
			msg += "; a password or one-time code was asked for but tether cannot ask (BatchMode, or no terminal)"
		}
	case auth.Err != nil:
		msg += ": " + termsafe.OneLine(tunnel.Message(auth.Err))
	}
	hint := fmt.Sprintf("check that `ssh %s` logs you in without a password (ssh-agent, IdentityFile in ~/.ssh/config)", host)
	if keys := append(slices.Clone(auth.Locked), auth.NotUnlocked...); len(keys) > 0 {
		var quoted []string
		for _, f := range keys {
			quoted = append(quoted, shquote.Quote(f))
		}
		hint = fmt.Sprintf("load the key into your ssh agent with `ssh-add %s` (it asks for the passphrase once) and try again", strings.Join(quoted, " "))
		if len(auth.NotUnlocked) == 0 {
			hint += ", or run tether from a terminal to be asked"
		}
	}
	return &Error{Msg: msg, Hint: hint, Err: err}
}
