//go:build unix

package remote

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

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
// built-in page.
func (o *ServeOptions) recordCommand() []string {
	switch {
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

// serve runs the session in this process until ctx ends, the app exits or the idle
// timeout passes.
func serve(ctx context.Context, o ServeOptions) (err error) {
	var rep reporter = &terminalReporter{o: &o}
	slurmJob := o.BatchSession != ""
	if slurmJob {
		// Stderr is the job's output file: bounded (see jobOutput).
		o.Stderr = newJobOutput(o.Stderr, jobOutputCap, o.BatchSession)
		rep = slurmReporter{w: o.Stderr}
	}
	background := o.ReadyFD > 0
	if background {
		pr, perr := newPipeReporter(o.ReadyFD)
		if perr != nil {
			return perr
		}
		defer pr.close()
		rep = pr
		defer func() {
			if err != nil && !pr.done {
				pr.failed(wire.FailureOf(err))
			}
		}()
	}

	// SIGHUP: a background server ignores it (it outlives the terminal and the SSH
	// connection); a foreground one stops cleanly, as on Ctrl-C.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if pr, ok := rep.(*pipeReporter); ok {
		pr.watchParent(cancel) // a start nobody waits for any more is abandoned
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if !background {
					cancel()
					return
				}
			}
		}
	}()

	if noAuth() {
		fmt.Fprintln(o.Stderr, "tether: WARNING: TETHER_NO_AUTH=1: no token is required; any user of this machine who can reach the server can use the app")
		if o.Listen != "" {
			fmt.Fprintln(o.Stderr, "tether: note: with TETHER_NO_AUTH=1 and --listen, your other loopback ports are not served (proxy/PORT/, tether forward)")
		}
	}
	token, err := resolveToken(&o)
	if err != nil {
		return err
	}
	var tlsConf *tls.Config
	certSHA := ""
	switch {
	case o.TLSCert != "":
		key := o.TLSKey
		if key == "" {
			key = o.TLSCert
		}
		if tlsConf, certSHA, err = tokenserver.LoadTLS(o.TLSCert, key); err != nil {
			return fmt.Errorf("loading the TLS certificate: %w", err)
		}
	case o.TLS:
		if tlsConf, certSHA, err = tokenserver.SelfSignedTLS(); err != nil {
			return fmt.Errorf("making a TLS certificate: %w", err)
		}
	}

	var (
		sess   *session
		root   string
		queued *sessionFile // a Slurm session's record as its submit wrote it
	)
	if o.BatchSession != "" {
		if sess, queued, err = openBatchSession(o.BatchSession); err != nil {
			return err
		}
		root = sess.Root
		defer os.RemoveAll(sess.SockDir) // node-local, made for this job
	} else {
		if root, err = stateRoot(true); err != nil {
			return err
		}
		if o.Name != "" {
			if err := nameTaken(root, o.Name); err != nil {
				return err
			}
		}
		if sess, err = newSession(root); err != nil {
			return err
		}
	}
	keep := queued != nil // the record and logs stay when the app exited on its own (and for Slurm sessions)
	defer func() {
		if !keep {
			sess.remove()
		}
	}()

	srvLog, err := openCappedLog(sess.serverLog(), defaultLogCap)
	if err != nil {
		return fmt.Errorf("opening the server log: %w", err)
	}
	defer srvLog.Close()
	if background {
		redirectStderr(srvLog.f)
	}
	// The server log gets everything; a foreground terminal only warnings (the gate's
	// refusals), since progress and the banner are printed for it already. A Slurm
	// job's output file gets none: anyone on the cluster network can cause them.
	fileLog := slog.NewTextHandler(srvLog, &slog.HandlerOptions{Level: slog.LevelInfo})
	logger := slog.New(fileLog)
	if !background && !slurmJob {
		logger = slog.New(slog.NewMultiHandler(fileLog, slog.NewTextHandler(o.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	}
	fileLogger := slog.New(fileLog)

	sockPath := sess.socketPath()
	if o.Socket != "" {
		sockPath = o.Socket
	}
	self, _ := processIdentity(os.Getpid())
	sf := &sessionFile{
		Record: wire.Record{ID: sess.ID, Name: o.Name, PID: os.Getpid(), Host: hostname(), Socket: sockPath,
			Token: token, BaseURL: o.BaseURL, TLS: tlsConf != nil, CertSHA256: certSHA,
			Command: o.recordCommand(), Started: time.Now().UTC().Round(time.Millisecond), Version: o.Version, App: o.AppName},
		Phase: phaseStarting, ServerStart: self, Request: o.request(),
	}
	if sf.Command == nil {
		sf.Command = []string{}
	}
	if sess.SockDir != sess.Dir {
		sf.SocketDir = sess.SockDir
	}
	if queued != nil {
		// A Slurm job's server: the session stays (record, logs, the job's output) for
		// ls, logs and the launcher, until `tether stop` or `ls --prune`.
		defer func() { endBatchSession(sess, sf, err) }()
		if err := o.startSlurm(sf, queued); err != nil {
			return err
		}
	}
	if err := writeRecord(sess, sf); err != nil {
		return err
	}

	// The app: started, then waited for.
	var lastActivity atomic.Int64
	lastActivity.Store(time.Now().UnixNano())
	touch := func() { lastActivity.Store(time.Now().UnixNano()) }
	var (
		app     *appProc
		appLog  *cappedLog
		handler http.Handler
		started = time.Now()
	)
	progress := func(n wire.Note) {
		fileLogger.Info(n.String())
		rep.progress(n)
	}
	if o.AppName == "" {
		if hint := portNote(o.Command, findsPorts); hint != "" {
			progress(wire.Notef("%s", hint))
		}
	}
	allowHosts := o.AllowHosts
	if o.Listen != "" && !listenIsLoopback(o.Listen) {
		extra := listenAllowHosts(o.Listen)
		allowHosts = append(append([]string{}, o.AllowHosts...), extra...)
		if len(extra) > 0 {
			progress(wire.Stepf("listening on %s: browsers may also use the Host %s (others need --allow-host)", o.Listen, strings.Join(extra, ", ")))
		}
		if tlsConf == nil {
			progress(wire.Notef("--listen %s reaches beyond loopback without TLS: the token crosses the network in clear text and browsers cannot keep a session cookie; add --tls", o.Listen))
		}
	}
	if !slurmJob {
		if note := batchHostNote(os.Getenv); note != nil {
			progress(wire.Note{Level: wire.LevelNote, Said: note})
		}
	}
	// The user's other loopback ports, behind the gate (ports.go).
	reach := newPortReacher()
	if o.App != nil {
		if appLog, err = openCappedLog(sess.logPath(), defaultLogCap); err != nil {
			return fmt.Errorf("opening the app log: %w", err)
		}
		defer appLog.Close()
		var out io.Writer = appLog
		if !background && !slurmJob {
			out = io.MultiWriter(appLog, o.Stderr)
		}
		if slurmJob {
			progress(wire.Stepf("the app's output goes to %s", sess.logPath()))
		}
		if o.LoginShell {
			began := time.Now()
			if err := o.prepareShellEnv(ctx, sess.Dir, out, rep, progress); err != nil {
				return err
			}
			// The app's wait counts from the start, setup included.
			o.ReadyTimeout = max(o.ReadyTimeout-time.Since(began), time.Second)
			sf.Command = o.recordCommand()
			if err := writeRecord(sess, sf); err != nil {
				return err
			}
		}
		plan, running, err := o.runApp(ctx, sess, sf, out, rep, progress)
		if plan != nil {
			defer removeAppFiles(plan.files)
		}
		if running != nil {
			app = running
			defer app.stop(appGrace)
		}
		if err != nil {
			return err
		}
		up := tokenserver.Upstream{Network: plan.network, Address: plan.address, Header: plan.header,
			Host: plan.host, Secrets: plan.secrets}
		if plan.network == "tcp" {
			up.CheckConn = checkAppConn
			reach.deny(int(plan.addrPort.Port()), "the session's app itself: open the session's own URL")
		}
		handler = tokenserver.NewProxy(up, logger)
	} else if o.staticDir != "" {
		st, err := newStaticApp(o.staticDir, o.BaseURL, []string{root, sess.SockDir}, touch)
		if err != nil {
			return err
		}
		defer st.Close()
		progress(wire.Stepf("serving %s read-only", o.staticDir))
		handler = st
	} else {
		handler = newBuiltinApp(sess.ID, sf.Host, o.BaseURL, started, touch)
	}

	// Without a token, a TCP listener lets every user of the machine in: they get the
	// app (the user asked for that), but not the user's other ports besides.
	var ports *tokenserver.Ports
	if token != "" || o.Listen == "" {
		ports = reach.options(o.NoPortProxy)
	}
	srv, err := tokenserver.New(tokenserver.Options{
		Token: token, NoAuth: token == "", SessionID: sess.ID, BaseURL: o.BaseURL,
		AllowHosts: allowHosts, TLS: tlsConf, App: handler, Logger: logger, OnActivity: touch,
		Ports: ports,
	})
	if err != nil {
		return fmt.Errorf("starting the guarded server: %w", err)
	}

	// Listeners: the private Unix socket always, TCP on request.
	uln, sockID, err := listenPrivateUnix(sockPath)
	if err != nil {
		return err
	}
	defer removeSocket(sockPath, sockID)
	listeners := []net.Listener{&peerCheckListener{UnixListener: uln, logger: logger}}
	if o.Listen != "" {
		tln, err := net.Listen("tcp", o.Listen)
		if err != nil {
			return fmt.Errorf("cannot listen on %s: %w", o.Listen, err)
		}
		listeners = append(listeners, tln)
		reach.deny(tln.Addr().(*net.TCPAddr).Port, "this tether server's own")
		sf.URL = listenURL(tln.Addr().(*net.TCPAddr), o.Listen, tlsConf != nil, o.BaseURL)
		if sf.JobID != "" {
			sf.Addr = strings.TrimSuffix(strings.TrimPrefix(sf.URL, "https://"), o.BaseURL)
		}
	}
	serveErr := make(chan error, len(listeners))
	var wg sync.WaitGroup
	for _, ln := range listeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				serveErr <- err
			}
		}()
	}
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		srv.Shutdown(sctx)
		scancel()
		for _, ln := range listeners {
			ln.Close()
		}
		wg.Wait()
	}()

	sf.Phase = phaseRunning
	if err := writeRecord(sess, sf); err != nil {
		return err
	}
	logger.Info("ready", "session", sess.ID, "socket", sockPath, "url", sf.URL)
	rep.ready(sf.Record)

	var idle <-chan time.Time
	if o.IdleTimeout > 0 {
		t := time.NewTicker(min(o.IdleTimeout/4+time.Millisecond, time.Second))
		defer t.Stop()
		idle = t.C
	}
	var appDone <-chan struct{}
	if app != nil {
		appDone = app.done
	}
	for {
		select {
		case <-ctx.Done():
			logger.Info("stopping", "reason", "signal")
			sf.Exit = "stopped by a signal"
			return nil
		case err := <-serveErr:
			return fmt.Errorf("the guarded server failed: %w", err)
		case <-idle:
			if time.Since(time.Unix(0, lastActivity.Load())) >= o.IdleTimeout {
				logger.Info("stopping", "reason", "idle", "idle_timeout", o.IdleTimeout.String())
				fmt.Fprintf(o.Stderr, "tether: no activity for %s; stopping session %s\n", o.IdleTimeout, sess.ID)
				sf.Exit = "stopped after " + o.IdleTimeout.String() + " without activity"
				sf.Why = wire.Fail(wire.FailIdle, wire.Plain(sf.Exit), nil)
				return nil
			}
		case <-appDone:
			how := describeExit(app.err)
			sf.ExitStatus = exitStatus(app.err)
			logger.Info("the app "+how, "session", sess.ID)
			sf.Phase, sf.Exit, sf.Ended = phaseAppExited, how, time.Now().UTC()
			if err := writeRecord(sess, sf); err == nil {
				keep = true
				if sess.SockDir != sess.Dir {
					defer os.RemoveAll(sess.SockDir)
				}
			}
			f := appFailure(how, "", app.tail.Lines(10), sess.ID, keep)
			rep.failed(f)
			return f
		}
	}
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
