package launcher

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/tether-dev/tether/internal/shquote"
	"github.com/tether-dev/tether/internal/termsafe"
	"github.com/tether-dev/tether/tunnel"
)

// Hosts behind a relay (issue 18). `--relay URL portal:ID` reaches the machine that
// runs `tether host` for portal ID through the relay at URL: the relay pairs this
// launcher's stream with that host's, and tether's own SSH runs inside it end to end
// (the relay sees ciphertext). Everything else (install, serve, forwards, exec,
// reconnect) is the same as over TCP: only the stream differs (tunnel.Config.Dial).
//
// The client token (TETHER_PORTAL_TOKEN; never on the command line) goes to the relay,
// which lets the stream through only for its portal, and to the host as the SSH
// password, which checks it again (the relay alone cannot log in). The user's keys
// and agent are offered too, for a host that also requires a key. The SSH user name is
// the local user's (the host maps any name to the user running `tether host`). The
// host key is pinned on first use in tether's own known_hosts (pin.go).

// PortalTokenEnv holds the client token for --relay.
const PortalTokenEnv = "TETHER_PORTAL_TOKEN"

// portalPrefix starts a HOST reached through a relay.
const portalPrefix = "portal:"

// portalPattern is the relay's rule for portal ids (the session-name rule).
var portalPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// RelayDialer opens a stream to portal's host through the relay at relayURL
// (relay.Dial).
type RelayDialer func(ctx context.Context, relayURL, token, portal string) (net.Conn, error)

// isPortal says whether host is written as a portal (portal:ID, or user@portal:ID).
func isPortal(host string) bool {
	if i := strings.LastIndexByte(host, '@'); i >= 0 {
		host = host[i+1:]
	}
	return strings.HasPrefix(host, portalPrefix)
}

// checkRelay says what is wrong with o's --relay, its HOST and its token, in the
// user's terms, and returns the portal id.
func checkRelay(o Options) (string, error) {
	host := termsafe.OneLine(o.Host)
	if o.Relay == "" {
		if isPortal(o.Host) {
			return "", usageError("%s names a portal behind a relay: add --relay URL (the relay's address), with your client token in %s", host, PortalTokenEnv)
		}
		return "", nil
	}
	if !strings.HasPrefix(o.Host, portalPrefix) {
		if isPortal(o.Host) {
			return "", usageError("%s: drop the user name and give portal:ID; a portal's host logs you in as the user it runs as", host)
		}
		return "", usageError("--relay reaches a portal: give the host as portal:ID (e.g. `tether launch --relay %s portal:lab-box`); for %s over SSH, leave --relay out",
			shquote.Quote(redactURL(o.Relay)), host)
	}
	id := strings.TrimPrefix(o.Host, portalPrefix)
	if !portalPattern.MatchString(id) {
		return "", usageError("%s: a portal id is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", host)
	}
	u, err := url.Parse(o.Relay)
	switch {
	case err != nil || u.Host == "" || u.Opaque != "":
		return "", usageError("--relay %s is not a URL: give the relay's address, e.g. wss://relay.example.org", termsafe.OneLine(redactURL(o.Relay)))
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		// A token pasted into the URL would be in argv, shell history and logs.
		return "", usageError("--relay takes the relay's address only (scheme, host, port, path): put the token in %s, never in the URL", PortalTokenEnv)
	}
	if o.ConfigFile != "" {
		return "", usageError("-F reads ssh_config, which a portal behind a relay does not use; drop -F")
	}
	if o.SSHMode == SSHOpenSSH {
		// OpenSSH could ride the relay through a ProxyCommand helper, but tether's own
		// client already pins the portal's key in tether's known_hosts and sends the
		// token as the password without a prompt; OpenSSH would need both done again.
		return "", usageError("--ssh openssh cannot go through a relay: tether's own SSH client does (it pins the portal's host key and logs in with your token); drop --ssh openssh")
	}
	if o.RelayToken == "" {
		return "", usageError("--relay needs your client token for %s in %s (never on the command line): set it to the token the relay's operator gave you", host, PortalTokenEnv)
	}
	if o.RelayKnownHosts == "" {
		return "", errorf("set XDG_CONFIG_HOME to a directory of yours", "no place for tether's known_hosts, where a portal's host key is pinned")
	}
	if o.RelayDial == nil {
		return "", errorf("", "this tether cannot reach a relay (built without one)")
	}
	return id, nil
}

// redactURL is u without what must not be echoed (userinfo, query, fragment).
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(not a URL)"
	}
	u.User, u.RawQuery, u.Fragment, u.ForceQuery = nil, "", "", false
	return u.String()
}

// relayConfig is the tunnel configuration that reaches o.Host through o.Relay (after
// checkRelay): no ssh_config is read but for OpenSSH's defaults (default identity
// files, the agent, the local user name); the stream is the relay's, the password is
// the token, and the host key is checked against tether's known_hosts. note is told of
// a newly pinned key.
func relayConfig(o Options, portal string, note func(string)) (*tunnel.Config, error) {
	cfg, err := tunnel.Resolve(o.Host, tunnel.ResolveOptions{ConfigFile: "none"})
	if err != nil {
		return nil, connectError(o.Host, err)
	}
	relayURL, token, dial := o.Relay, o.RelayToken, o.RelayDial
	cfg.Dial = func(ctx context.Context) (net.Conn, error) {
		c, err := dial(ctx, relayURL, token, portal)
		if err != nil {
			return nil, briefError{relayDialError(o, ctx, err)}
		}
		return c, nil
	}
	cfg.Password = func() (string, error) { return token, nil }
	pin := &hostPin{file: o.RelayKnownHosts, host: o.Host, note: note}
	cfg.HostKeyCallback = pin.check
	cfg.StrictHostKeyChecking = "yes"
	cfg.UserKnownHostsFiles, cfg.GlobalKnownHostsFiles = nil, nil
	cfg.OpenSSHNeeds = nil
	cfg.ConnectTimeout = relayConnectTimeout
	return cfg, nil
}

// briefError is an *Error that reads as its message alone: what a reconnect warning
// says each time the failure changes (tunnel words it), while the command's own end
// (connectError finds the *Error inside) says the hint too, once.
type briefError struct{ e *Error }

func (b briefError) Error() string { return b.e.Msg }
func (b briefError) Unwrap() error { return b.e }

// relayDialError words a failure to get a stream through the relay.
func relayDialError(o Options, ctx context.Context, err error) *Error {
	what := termsafe.Clip(termsafe.OneLine(err.Error()), 300)
	if ctx.Err() != nil {
		what = "no answer in time"
	}
	// The token must never be shown, whatever the relay's error says.
	if o.RelayToken != "" {
		what = strings.ReplaceAll(what, o.RelayToken, "[token]")
	}
	portal := strings.TrimPrefix(o.Host, portalPrefix)
	var own *Error
	if errors.As(err, &own) {
		return own // worded already (--relay-ca's file)
	}
	var untrusted interface{ UntrustedCertificate() }
	if errors.As(err, &untrusted) {
		// "relay: the certificate of the relay at H is not trusted: why (hint)": its
		// own words say what to do.
		return &Error{Msg: fmt.Sprintf("cannot reach %s: %s", o.Host, strings.TrimPrefix(what, "relay: ")), Err: err}
	}
	var p interface{ Permanent() bool }
	if errors.As(err, &p) && p.Permanent() {
		// The relay's own reason ("it has expired", "its signature is not this
		// relay's") is authoritative here; tokenExpired is for the host's login,
		// which gives none.
		// The relay refused the token (401), or it is for another role or portal (403).
		return &Error{Msg: fmt.Sprintf("the relay %s refused the token in %s for %s: %s", redactURL(o.Relay), PortalTokenEnv, o.Host, refusalReason(what)),
			Hint: fmt.Sprintf("it must be a client token for portal %s that has not expired; ask the relay's operator for one (`tether relay token --role client --portal %s NAME`)", portal, shquote.Quote(portal)),
			Err:  err}
	}
	// "relay: no host is connected for portal lab (HTTP 503)": the reason alone.
	what = strings.TrimPrefix(httpStatusSuffix.ReplaceAllString(what, ""), "relay: ")
	msg := fmt.Sprintf("cannot reach %s through the relay %s: %s", o.Host, redactURL(o.Relay), what)
	if strings.HasPrefix(what, "cannot reach the relay at ") || strings.HasPrefix(what, "cannot resolve the relay's") || strings.HasPrefix(what, "the relay at ") {
		msg = fmt.Sprintf("cannot reach %s: %s", o.Host, what) // it names the relay itself
	}
	return &Error{Msg: msg,
		Hint: fmt.Sprintf("check that `tether host` runs on that machine for portal %s and is connected to this relay, and that %s holds a client token for that portal",
			portal, PortalTokenEnv),
		Err: err}
}

// refusalReason is the reason in a relay's refusal of a token, without what the
// message around it says already: the relay's own "the relay refused the token",
// the package's and the kind's prefixes, its advice (the hint gives it) and the
// HTTP status. "relay: the relay refused the token: token not valid: it has expired;
// ask for a new one (tether relay token) (HTTP 401)" is "it has expired".
func refusalReason(what string) string {
	what = httpStatusSuffix.ReplaceAllString(what, "")
	for _, p := range []string{"relay: ", "the relay refused the token: ", "token not valid: ", "token is for another role: ", "token is for another portal: "} {
		what = strings.TrimPrefix(what, p)
	}
	what = strings.TrimSuffix(what, "; ask for a new one (tether relay token)")
	return what
}

var httpStatusSuffix = regexp.MustCompile(` \(HTTP [0-9]{3}\)$`)

// connectError words a connection that could not be made, or made again.
func (s *session) connectError(err error) error {
	if s.o.Relay != "" {
		return relayError(s.o, err)
	}
	return connectError(s.host, err)
}

// relayError is connectError for a portal: a refused login says what the host wanted.
func relayError(o Options, err error) error {
	var auth *tunnel.AuthError
	if !errors.As(err, &auth) {
		return connectError(o.Host, err)
	}
	if e := tokenExpired(o, err); e != nil {
		return e
	}
	portal := strings.TrimPrefix(o.Host, portalPrefix)
	if slices.Contains(auth.Partial, "password") {
		// The token was accepted (partial success) and a key is wanted too.
		tried := "no key was found (no agent, no ~/.ssh/id_*)"
		if keys := slices.DeleteFunc(slices.Clone(auth.Tried), func(s string) bool { return s == "password" }); len(keys) > 0 {
			tried = "tried " + strings.Join(keys, ", ")
		}
		return &Error{Msg: fmt.Sprintf("the host of %s took your token but also requires an SSH key it knows, and refused yours (%s)", o.Host, tried),
			Hint: "load your key into ssh-agent (or keep it as ~/.ssh/id_ed25519), and have the host's owner add its public key to the file `tether host --authorized-keys` reads",
			Err:  err}
	}
	return &Error{Msg: fmt.Sprintf("the host of %s refused the token in %s", o.Host, PortalTokenEnv),
		Hint: fmt.Sprintf("it must be a client token for portal %s from the relay that host uses; ask the relay's operator for one (`tether relay token --role client --portal %s NAME`)", portal, shquote.Quote(portal)),
		Err:  err}
}

// tokenExpired is the error for the host's refusal of the login once the client token
// has expired by this machine's clock: the host closes a connection at its token's
// expiry and refuses it from then on (while the relay, allowing 30 s of clock skew,
// still lets the stream through), and SSH tells the client no reason; this says why.
func tokenExpired(o Options, err error) *Error {
	exp := o.RelayTokenExpires
	if exp.IsZero() || time.Now().Before(exp) {
		return nil
	}
	portal := strings.TrimPrefix(o.Host, portalPrefix)
	return &Error{Msg: fmt.Sprintf("your client token for %s (in %s) expired at %s", o.Host, PortalTokenEnv, exp.Local().Format("2006-01-02 15:04 MST")),
		Hint: fmt.Sprintf("ask the relay's operator for a new one (`tether relay token --role client --portal %s NAME`); sessions on %s keep running: `tether attach --relay %s %s` reaches them again",
			shquote.Quote(portal), o.Host, shquote.Quote(redactURL(o.Relay)), shquote.Quote(o.Host)),
		Err: err}
}

// relayConnectTimeout is the ConnectTimeout through a relay: the relay waits up to 15 s
// for the host's answer, then the handshake follows.
const relayConnectTimeout = 30 * time.Second
