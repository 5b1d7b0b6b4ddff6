//go:build unix

package remote

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/tether-dev/tether/internal/termsafe"
	"github.com/tether-dev/tether/tokenserver"
	"github.com/tether-dev/tether/wire"
)

// Serve runs `tether serve`: a guarded server in front of the app, in the foreground
// (until ctx ends or the app exits) or, with Detach, in the background, returning once
// the session is ready.
func Serve(ctx context.Context, o ServeOptions) error {
	if err := o.normalize(); err != nil {
		return err
	}
	if o.Reuse && o.ReadyFD == 0 && o.BatchSession == "" {
		if done, err := reuse(ctx, &o); done || err != nil {
			return err
		}
	}
	if o.Detach && o.ReadyFD == 0 {
		return detach(ctx, o)
	}
	return serve(ctx, o)
}

// normalize checks the options and fills in defaults. Mistakes are usage errors:
// first what wire.Serve.Check judges on every machine (the launcher and batch submit
// judged it already), then what depends on this one.
func (o *ServeOptions) normalize() error {
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	if err := o.wire().Check(); err != nil {
		return err
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = wire.DefaultReadyTimeout
	}
	base, err := wire.BaseURL(o.BaseURL)
	if err != nil {
		return err
	}
	o.BaseURL = base
	if o.TLSCert != "" {
		o.TLS = true
	}
	if o.Socket != "" {
		abs, err := filepath.Abs(o.Socket)
		if err != nil {
			return usagef("--socket %q: %v", o.Socket, err)
		}
		if len(abs) > wire.MaxSocketPath {
			return usagef("--socket path %s is longer than %d bytes, too long for a Unix socket; pick a shorter one", abs, wire.MaxSocketPath)
		}
		o.Socket = abs
	}
	if o.BatchSession != "" {
		if err := o.normalizeSlurm(); err != nil {
			return err
		}
	}
	if noAuth() {
		if os.Getenv("TETHER_TOKEN") != "" || o.TokenFile != "" {
			return usagef("TETHER_NO_AUTH=1 and a token (TETHER_TOKEN or --token-file) contradict each other; drop one")
		}
		if o.Listen != "" && !listenIsLoopback(o.Listen) {
			return usagef("TETHER_NO_AUTH=1 is refused when listening beyond loopback (--listen %s): anyone on the network could use the app", o.Listen)
		}
	} else if os.Getenv("TETHER_TOKEN") != "" && o.TokenFile != "" {
		return usagef("both TETHER_TOKEN and --token-file give a token; use one")
	}
	if err := o.loadSetup(); err != nil {
		return err
	}
	if len(o.Apps) > 0 {
		return o.normalizeTeam()
	}
	if err := o.resolveApp(); err != nil {
		return err
	}
	if o.App != nil && o.AppName == "" {
		o.Command = o.App.Command
	}
	if o.Setup != "" && o.App == nil {
		what := "tether's built-in page runs"
		if o.staticDir != "" {
			what = "the static preset runs"
		}
		return usagef("--setup prepares the app's environment, but %s no app; drop --setup", what)
	}
	return nil
}

// recordCommand is the Command of the ready record: the app's command line
// (placeholders unexpanded), ["static", DIR] for the static preset, empty for the
// built-in page, a team server's --app values.
func (o *ServeOptions) recordCommand() []string {
	switch {
	case o.team != nil:
		return append([]string{}, o.Apps...) // nb=jupyter site=static:DIR
	case o.App != nil:
		return append([]string{}, o.App.Command...)
	case o.staticDir != "":
		return []string{"static", o.staticDir}
	}
	return []string{}
}

func noAuth() bool { return os.Getenv("TETHER_NO_AUTH") == "1" }

// listenAllowHosts are the Host names a browser may use for a listener beyond
// loopback, besides --allow-host: the listen address itself (an IP, or a name), and
// the machine's host name (what the banner's URL shows for 0.0.0.0 and ::). Names
// the Host check could not take, wildcard addresses and localhost are left out.
func listenAllowHosts(addr string) []string {
	host, _, err := wire.SplitListen(addr)
	if err != nil {
		return nil
	}
	var out []string
	for _, h := range []string{host, hostname()} {
		n, err := tokenserver.NormalizeAllowHost(h)
		if err != nil || n == "localhost" || slices.Contains(out, n) {
			continue
		}
		if ip, err := netip.ParseAddr(n); err == nil && ip.IsUnspecified() {
			continue
		}
		out = append(out, n)
	}
	return out
}

func listenIsLoopback(addr string) bool {
	host, _, err := wire.SplitListen(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// resolveToken returns the session's token: from --token-file, else $TETHER_TOKEN, else
// a fresh one. It never comes from a flag value, so it is never in argv.
func resolveToken(o *ServeOptions) (string, error) {
	if noAuth() {
		return "", nil
	}
	if o.TokenFile != "" {
		b, err := readTokenFile(o.TokenFile)
		if err != nil {
			return "", err
		}
		if err := tokenserver.ValidateToken(b); err != nil {
			return "", fmt.Errorf("the token in %s is not valid: %v", o.TokenFile, err)
		}
		return b, nil
	}
	if t := os.Getenv("TETHER_TOKEN"); t != "" {
		if err := tokenserver.ValidateToken(t); err != nil {
			return "", fmt.Errorf("TETHER_TOKEN is not valid: %v", err)
		}
		return t, nil
	}
	return tokenserver.NewToken()
}

// readTokenFile reads a token file, refusing one other users can read.
func readTokenFile(path string) (string, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
	if err != nil {
		return "", fmt.Errorf("reading the token file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("token file %s is not a regular file", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("token file %s can be read by others (mode %04o); run `chmod 600 %s`", path, fi.Mode().Perm(), path)
	}
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// reporter tells whoever waits for the server how the start is going: the terminal
// in the foreground, the detaching parent through the ready pipe in the background.
type reporter interface {
	progress(n wire.Note)
	ready(rec wire.Record)
	// failed reports the failure that ends the start: its AppOutput is the app's last
	// output, or the setup's (OutputOf).
	failed(f *wire.Failure)
}

// appFailure is the failure of an app that ended (how: "exited with status 1"; when,
// " before it was ready" or empty), with its last output; kept says the session stays
// for `tether logs` (the app ended after the session was ready).
func appFailure(how, when string, tail []string, id string, kept bool) *wire.Failure {
	last := ""
	if len(tail) > 0 {
		last = fmt.Sprintf(" (last output: %q)", termsafe.Clip(tail[len(tail)-1], 64))
	}
	f := wire.Fail(wire.FailAppExited, wire.Textf("the app %s%s%s", how, when, last), wire.Plain("check the command and try again"))
	if kept {
		f.Advice = wire.Textf("%v shows its output, %v clears the session", wire.Tether("logs", id), wire.Tether("stop", id))
		f.Session = id
	}
	f.Exit, f.AppOutput = how, tail
	return f
}

func nameTaken(root, name string) error {
	all, err := scanRoots(root, false)
	if err != nil {
		return err
	}
	host := hostname()
	for _, e := range all {
		if e.rec == nil || e.rec.Host != host || e.rec.Name != name {
			continue
		}
		if st := sessionState(e); st == wire.StateRunning || st == phaseStarting {
			f := wire.Fail(wire.FailNameTaken, wire.Textf("a session named %q is already running (%s)", name, e.s.ID),
				wire.Textf("stop it with %v or pick another --name", wire.Tether("stop", name)))
			f.Session = e.s.ID
			return f
		}
	}
	return nil
}

// listenURL is the URL of a TCP listener: loopback and explicit hosts as given, the
// kernel's port filled in.
func listenURL(a *net.TCPAddr, requested string, tls bool, base string) string {
	scheme := "http"
	if tls {
		scheme = "https"
	}
	host, _, _ := wire.SplitListen(requested)
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = hostname()
	}
	return scheme + "://" + net.JoinHostPort(host, strconv.Itoa(a.Port)) + base
}

// terminalReporter reports to the user's terminal: progress and the banner on stderr,
// or the ready record as one JSON line on stdout.
type terminalReporter struct{ o *ServeOptions }

func (t *terminalReporter) progress(n wire.Note) { printNote(t.o.Stderr, n, t.o.JSONNotes) }

func (t *terminalReporter) ready(r wire.Record) {
	if t.o.JSON {
		b, _ := json.Marshal(r)
		fmt.Fprintf(t.o.Stdout, "%s\n", b)
		return
	}
	printBanner(t.o.Stderr, r, t.o.Detach)
}

// failed prints nothing more: in the foreground the app's (or the setup's) output is
// on the terminal already, and the error that ends serve says what happened.
func (t *terminalReporter) failed(*wire.Failure) {}

// printNote writes a note on w: "tether: [note: ]TEXT" for a person, or with asJSON
// one JSON line for a launcher.
func printNote(w io.Writer, n wire.Note, asJSON bool) {
	if asJSON {
		b, _ := json.Marshal(n)
		fmt.Fprintf(w, "%s\n", b)
		return
	}
	fmt.Fprintf(w, "tether: %s\n", n)
}

func printBanner(w io.Writer, r wire.Record, detached bool) {
	name := ""
	if r.Name != "" {
		name = fmt.Sprintf(" %q", r.Name)
	}
	fmt.Fprintf(w, "tether: session %s%s is ready: %s\n", r.ID, name, commandLine(r.Command))
	if r.URL != "" {
		if r.Token != "" {
			fmt.Fprintf(w, "  url:    %s?token=%s\n", r.URL, r.Token)
		} else {
			fmt.Fprintf(w, "  url:    %s\n", r.URL)
		}
	}
	fmt.Fprintf(w, "  socket: %s\n", r.Socket)
	if r.URL == "" && r.Token != "" {
		fmt.Fprintf(w, "  token:  %s\n", r.Token)
	}
	if r.TLS {
		fmt.Fprintf(w, "  cert:   sha256 %s\n", r.CertSHA256)
	}
	if detached {
		fmt.Fprintf(w, "  stop it with `tether stop %s`; `tether ls` lists sessions\n", r.ID)
	} else {
		fmt.Fprintf(w, "  press Ctrl-C to stop\n")
	}
}
