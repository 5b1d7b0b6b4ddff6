//go:build unix

package remote

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tether-dev/tether/internal/stripe"
	"github.com/tether-dev/tether/tokenserver"
	"github.com/tether-dev/tether/wire"
)

// serve runs the session in this process until ctx ends, the app exits or the idle
// timeout passes. Its steps, each a function below, in the order they run:
//
//	judge the inputs            credentials: the token, the TLS certificate
//	prepare the session         prepare: its directory, server log and record
//	start the app, wait ready   startApp (one app; a handler for the others)
//	serve the gate              openGate, then awaitEnd until the session ends
//	clean up                    close: what the steps made, undone in reverse order
//
// Each step returns its error where it is decided; close is given that error (a batch
// session's record keeps it) and never changes it.
func serve(ctx context.Context, o ServeOptions) error {
	rep, pipe, err := o.newReporter()
	if err != nil {
		return err
	}
	var onHUP func()
	if o.team != nil && o.team.live != nil {
		onHUP = func() { o.team.reload(o.Access, o.Stderr) }
	}
	ctx, stopWatching := watchSignals(ctx, pipe, onHUP)
	err = o.serveSession(ctx, rep)
	stopWatching()
	if pipe != nil {
		// The detaching parent hears of a failure nobody reported yet (failed does
		// nothing once ready or a failure was sent), after the cleanup.
		if err != nil {
			pipe.failed(wire.FailureOf(err))
		}
		pipe.close()
	}
	return err
}

// newReporter is whoever waits for the start: the terminal in the foreground, the job's
// output file in a batch job, the detaching parent (pipe) in the background.
func (o *ServeOptions) newReporter() (reporter, *pipeReporter, error) {
	var rep reporter = &terminalReporter{o: o}
	if o.BatchSession != "" {
		// Stderr is the job's output file: bounded (see jobOutput).
		o.Stderr = newJobOutput(o.Stderr, jobOutputCap, o.BatchSession)
		rep = slurmReporter{w: o.Stderr}
	}
	if o.ReadyFD > 0 {
		pr, err := newPipeReporter(o.ReadyFD)
		if err != nil {
			return nil, nil, err
		}
		return pr, pr, nil
	}
	return rep, nil, nil
}

// watchSignals returns ctx, cancelled on SIGHUP in the foreground (a background server,
// pipe != nil, ignores it: it outlives the terminal and the SSH connection) and, in the
// background, once the detaching parent no longer reads the ready pipe (a start nobody
// waits for any more is abandoned). With onHUP (a team server's --access), SIGHUP
// calls it instead, in the foreground and the background alike. stop ends the
// watching and waits for its goroutine.
func watchSignals(ctx context.Context, pipe *pipeReporter, onHUP func()) (_ context.Context, stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(ctx)
	if pipe != nil {
		pipe.watchParent(cancel)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if onHUP != nil {
					onHUP()
				} else if pipe == nil {
					cancel()
					return
				}
			}
		}
	}()
	return ctx, func() {
		cancel()
		<-done
		signal.Stop(hup)
	}
}

// serving is one session served by this process: what its steps made, which close
// undoes.
type serving struct {
	o          *ServeOptions
	rep        reporter
	logger     *slog.Logger // the server log, and a foreground terminal's warnings
	fileLogger *slog.Logger // the server log only
	gateLogger *slog.Logger // logger, and a team server's audit lines on the terminal
	sess       *session
	sf         *sessionFile
	batch      bool // a batch job's session: it stays, record and logs, until stop or prune
	keep       bool // the record and logs stay (a batch session; an app that exited once ready)
	srvLog     *cappedLog
	sockPath   string
	act        *activity
	app        *servedApp // nil: the static preset or the built-in page
	static     *staticApp
	gate       *gate
	// A team server's: its app processes, its static directories, the app log they
	// share (serve_team.go).
	apps    []*servedApp
	statics []*staticApp
	teamLog *cappedLog
}

// serveSession runs the steps and then the cleanup.
func (o *ServeOptions) serveSession(ctx context.Context, rep reporter) error {
	token, tlsConf, certSHA, err := o.credentials()
	if err != nil {
		return err
	}
	s := &serving{o: o, rep: rep, act: newActivity()}
	err = s.prepare(token, tlsConf, certSHA)
	switch {
	case err != nil:
	case o.team != nil:
		err = s.runTeam(ctx, token, tlsConf)
	default:
		err = s.run(ctx, token, tlsConf)
	}
	s.close(err)
	return err
}

// credentials judges what the gate will use: the token (none with TETHER_NO_AUTH,
// with its warning) and the TLS certificate with its SHA-256 (none without TLS).
func (o *ServeOptions) credentials() (token string, tlsConf *tls.Config, certSHA string, err error) {
	if noAuth() {
		fmt.Fprintln(o.Stderr, "tether: WARNING: TETHER_NO_AUTH=1: no token is required; any user of this machine who can reach the server can use the app")
		if o.Listen != "" {
			fmt.Fprintln(o.Stderr, "tether: note: with TETHER_NO_AUTH=1 and --listen, your other loopback ports are not served (proxy/PORT/, tether forward)")
		}
	}
	if token, err = resolveToken(o); err != nil {
		return "", nil, "", err
	}
	switch {
	case o.TLSCert != "":
		key := o.TLSKey
		if key == "" {
			key = o.TLSCert
		}
		if tlsConf, certSHA, err = tokenserver.LoadTLS(o.TLSCert, key); err != nil {
			return "", nil, "", fmt.Errorf("loading the TLS certificate: %w", err)
		}
	case o.TLS:
		if tlsConf, certSHA, err = tokenserver.SelfSignedTLS(); err != nil {
			return "", nil, "", fmt.Errorf("making a TLS certificate: %w", err)
		}
	}
	return token, tlsConf, certSHA, nil
}

// prepare makes the session: its directory (or a batch job's, made by its submit), the
// server log and the record in phase starting.
func (s *serving) prepare(token string, tlsConf *tls.Config, certSHA string) error {
	o := s.o
	var queued *sessionFile // a batch session's record as its submit wrote it
	if o.BatchSession != "" {
		sess, q, err := openBatchSession(o.BatchSession)
		if err != nil {
			return err
		}
		s.sess, queued, s.batch, s.keep = sess, q, true, true
	} else {
		root, err := stateRoot(true)
		if err != nil {
			return err
		}
		if o.Name != "" {
			if err := nameTaken(root, o.Name); err != nil {
				return err
			}
		}
		if s.sess, err = newSession(root); err != nil {
			return err
		}
	}
	sess := s.sess

	srvLog, err := openCappedLog(sess.serverLog(), defaultLogCap)
	if err != nil {
		return fmt.Errorf("opening the server log: %w", err)
	}
	s.srvLog = srvLog
	background := o.ReadyFD > 0
	if background {
		redirectStderr(srvLog.f)
	}
	// The server log gets everything; a foreground terminal only warnings (the gate's
	// refusals), since progress and the banner are printed for it already. A batch
	// job's output file gets none: anyone on the cluster network can cause them.
	fileLog := slog.NewTextHandler(srvLog, &slog.HandlerOptions{Level: slog.LevelInfo})
	s.fileLogger, s.logger = slog.New(fileLog), slog.New(fileLog)
	s.gateLogger = s.logger
	if !background && !s.batch {
		s.logger = slog.New(slog.NewMultiHandler(fileLog, slog.NewTextHandler(o.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
		s.gateLogger = s.logger
		if o.team != nil {
			// A team server's audit lines (sign-ins, refusals, apps opened) on the
			// terminal too.
			s.gateLogger = slog.New(slog.NewMultiHandler(fileLog, slog.NewTextHandler(o.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
		}
	}
	if o.team != nil {
		o.team.logger.Store(s.gateLogger)
	}

	s.sockPath = sess.socketPath()
	if o.Socket != "" {
		s.sockPath = o.Socket
	}
	self, _ := processIdentity(os.Getpid())
	sf := &sessionFile{
		Record: wire.Record{ID: sess.ID, Name: o.Name, PID: os.Getpid(), Host: hostname(), Socket: s.sockPath,
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
	s.sf = sf
	if queued != nil {
		if err := o.startSlurm(sf, queued); err != nil {
			return err
		}
	}
	return writeRecord(sess, sf)
}

// progress tells a step of the start to the server log and to whoever waits for it.
func (s *serving) progress(n wire.Note) {
	s.fileLogger.Info(n.String())
	s.rep.progress(n)
}

// run starts what the session serves, opens the gate in front of it, reports ready and
// serves until the session ends.
func (s *serving) run(ctx context.Context, token string, tlsConf *tls.Config) error {
	o, sess := s.o, s.sess
	allowHosts := s.startNotes(tlsConf)
	reach := newPortReacher() // the user's other loopback ports, behind the gate (ports.go)
	var handler http.Handler
	switch {
	case o.App != nil:
		log, err := openCappedLog(sess.logPath(), defaultLogCap)
		if err != nil {
			return fmt.Errorf("opening the app log: %w", err)
		}
		var out io.Writer = log
		if o.ReadyFD <= 0 && !s.batch {
			out = io.MultiWriter(log, o.Stderr)
		}
		s.app, err = s.startApp(ctx, "", o, sess, out, reach)
		s.app.log = log
		if err != nil {
			return err
		}
		handler = s.app.handler
	case o.staticDir != "":
		st, err := newStaticApp(o.staticDir, o.BaseURL, []string{sess.Root, sess.SockDir}, s.act.touch)
		if err != nil {
			return err
		}
		s.static = st
		s.progress(wire.Stepf("serving %s read-only", o.staticDir))
		handler = st
	default:
		handler = newBuiltinApp(sess.ID, s.sf.Host, o.BaseURL, time.Now(), s.act.touch)
	}

	var err error
	if s.gate, err = s.openGate(token, tlsConf, allowHosts, handler, reach, nil); err != nil {
		return err
	}
	s.sf.Phase = phaseRunning
	if err := writeRecord(sess, s.sf); err != nil {
		return err
	}
	s.logger.Info("ready", "session", sess.ID, "socket", s.sockPath, "url", s.sf.URL)
	s.rep.ready(s.sf.Record)

	var appDone <-chan struct{}
	if s.app != nil {
		appDone = s.app.proc.done
	}
	end, err := awaitEnd(ctx, s.gate.failed, appDone, s.act, o.IdleTimeout)
	return s.ended(end, err)
}

// startNotes reports what the user should know before the app starts, and returns the
// Host names the gate accepts besides loopback's.
func (s *serving) startNotes(tlsConf *tls.Config) (allowHosts []string) {
	o := s.o
	if o.AppName == "" {
		if hint := portNote(o.Command, findsPorts); hint != "" {
			s.progress(wire.Notef("%s", hint))
		}
	}
	allowHosts = o.AllowHosts
	if o.Listen != "" && !listenIsLoopback(o.Listen) {
		extra := listenAllowHosts(o.Listen)
		allowHosts = append(append([]string{}, o.AllowHosts...), extra...)
		if len(extra) > 0 {
			s.progress(wire.Stepf("listening on %s: browsers may also use the Host %s (others need --allow-host)", o.Listen, strings.Join(extra, ", ")))
		}
		if tlsConf == nil {
			s.progress(wire.Notef("--listen %s reaches beyond loopback without TLS: the token crosses the network in clear text and browsers cannot keep a session cookie; add --tls", o.Listen))
		}
	}
	if !s.batch {
		if note := batchHostNote(os.Getenv); note != nil {
			s.progress(wire.Note{Level: wire.LevelNote, Said: note})
		}
	}
	return allowHosts
}

// servedApp is one app of the session: its log, the files written for it (its secret),
// its process and the proxy to it.
type servedApp struct {
	name    string     // a team server's app name; "" for the one app
	log     *cappedLog // the app log, when the app owns it (nil for a team's app)
	plan    *appPlan
	proc    *appProc
	handler http.Handler
}

// startApp starts app name ("" for the one app; a team app's name) with options o
// (the session's, or a team app's) in sess (the session, or a team app's view of it),
// records its process in the session's record and waits until it is ready: the login shell's
// environment (with LoginShell), the process (runApp) and the proxy to it, its output
// to out. A failure has been reported through s.rep. The servedApp holds what was
// made, also with an error: the caller closes it.
func (s *serving) startApp(ctx context.Context, name string, o *ServeOptions, sess *session, out io.Writer, reach *portReacher) (*servedApp, error) {
	a := &servedApp{name: name}
	if s.batch {
		s.progress(wire.Stepf("the app's output goes to %s", sess.logPath()))
	}
	if o.LoginShell {
		began := time.Now()
		if err := o.prepareShellEnv(ctx, sess.Dir, out, s.rep, s.progress); err != nil {
			return a, err
		}
		// The app's wait counts from the start, setup included.
		o.ReadyTimeout = max(o.ReadyTimeout-time.Since(began), time.Second)
		if o == s.o {
			s.sf.Command = o.recordCommand()
			if err := writeRecord(s.sess, s.sf); err != nil {
				return a, err
			}
		}
	}
	var err error
	started := func(p *appProc) error {
		s.sf.startedApp(name, p)
		return writeRecord(s.sess, s.sf)
	}
	a.plan, a.proc, err = o.runApp(ctx, sess, started, out, s.rep, s.progress)
	if err != nil {
		return a, err
	}
	plan := a.plan
	up := tokenserver.Upstream{Network: plan.network, Address: plan.address, Header: plan.header,
		Host: plan.host, Secrets: plan.secrets}
	if plan.network == "tcp" {
		up.CheckConn = checkAppConn
		reach.deny(int(plan.addrPort.Port()), "the session's app itself: open the session's own URL")
	}
	a.handler = tokenserver.NewProxy(up, s.logger)
	return a, nil
}

// close stops the app (its whole process group, waited for), removes the files written
// for it (its secret) even when the record and logs stay, and closes its log.
func (a *servedApp) close() {
	if a.proc != nil {
		a.proc.stop(appGrace)
	}
	if a.plan != nil {
		removeAppFiles(a.plan.files)
	}
	if a.log != nil {
		a.log.Close()
	}
}

// gate is the guarded server and its listeners; failed gets a listener's error.
type gate struct {
	srv       *tokenserver.Server
	listeners []net.Listener
	sockPath  string
	sockID    os.FileInfo // nil until the socket is made
	failed    chan error
	serving   sync.WaitGroup
}

// openGate starts the guarded server in front of handler: on the private Unix socket
// always, on TCP with --listen. The gate is returned, also with an error, for close.
// With team (a team server), its Team, SignIn and Apps stand for handler.
func (s *serving) openGate(token string, tlsConf *tls.Config, allowHosts []string, handler http.Handler, reach *portReacher, team *tokenserver.Options) (*gate, error) {
	o := s.o
	// Without a token, a TCP listener lets every user of the machine in: they get the
	// app (the user asked for that), but not the user's other ports besides.
	var ports *tokenserver.Ports
	if token != "" || o.Listen == "" {
		ports = reach.options(o.NoPortProxy)
	}
	opts := tokenserver.Options{
		Token: token, NoAuth: token == "", SessionID: s.sess.ID, BaseURL: o.BaseURL,
		AllowHosts: allowHosts, TLS: tlsConf, App: handler, Logger: s.gateLogger, OnActivity: s.act.touch,
		Ports: ports,
	}
	if team != nil {
		opts.Team, opts.SignIn, opts.Apps, opts.TeamTitle = team.Team, team.SignIn, team.Apps, team.TeamTitle
	}
	srv, err := tokenserver.New(opts)
	if err != nil {
		return nil, fmt.Errorf("starting the guarded server: %w", err)
	}
	g := &gate{srv: srv, sockPath: s.sockPath}
	uln, sockID, err := listenPrivateUnix(s.sockPath)
	if err != nil {
		return g, err
	}
	g.sockID = sockID
	// Stripes are joined behind the check of the peer's user, so each stripe passes it.
	g.listeners = append(g.listeners, stripe.NewListener(&peerCheckListener{UnixListener: uln, logger: s.logger}, s.fileLogger))
	s.sf.Stripes = stripe.MaxStripes
	if o.Listen != "" {
		tln, err := net.Listen("tcp", o.Listen)
		if err != nil {
			return g, fmt.Errorf("cannot listen on %s: %w", o.Listen, err)
		}
		g.listeners = append(g.listeners, tln)
		reach.deny(tln.Addr().(*net.TCPAddr).Port, "this tether server's own")
		s.sf.URL = listenURL(tln.Addr().(*net.TCPAddr), o.Listen, tlsConf != nil, o.BaseURL)
		if s.sf.JobID != "" {
			s.sf.Addr = strings.TrimSuffix(strings.TrimPrefix(s.sf.URL, "https://"), o.BaseURL)
		}
	}
	g.failed = make(chan error, len(g.listeners))
	for _, ln := range g.listeners {
		g.serving.Go(func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				g.failed <- err
			}
		})
	}
	return g, nil
}

// close shuts the gate (requests in flight get 5 seconds), waits for its Serve calls
// and removes the socket if it is still the one made.
func (g *gate) close() {
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	g.srv.Shutdown(sctx)
	scancel()
	for _, ln := range g.listeners {
		ln.Close()
	}
	g.serving.Wait()
	if g.sockID != nil {
		removeSocket(g.sockPath, g.sockID)
	}
}

// activity is when the session was last used: the gate and the built-in pages touch it.
type activity struct{ last atomic.Int64 }

func newActivity() *activity {
	a := &activity{}
	a.touch()
	return a
}

func (a *activity) touch() { a.last.Store(time.Now().UnixNano()) }

func (a *activity) idleFor() time.Duration { return time.Since(time.Unix(0, a.last.Load())) }

// ending is why a ready session ends.
type ending int

const (
	endSignal     ending = iota // ctx ended: a signal, or the detaching parent went away
	endGateFailed               // a listener failed (the error)
	endIdle                     // no activity for the idle timeout
	endAppExited                // the app exited
)

// awaitEnd waits until the ready session ends: ctx ends, a listener fails (gateFailed),
// the app exits (appDone; nil without an app) or, with idleTimeout > 0, nothing touched
// act for idleTimeout. The idle check runs every quarter of the timeout (at most every
// second), so an idle session ends within that much after its timeout.
func awaitEnd(ctx context.Context, gateFailed <-chan error, appDone <-chan struct{}, act *activity, idleTimeout time.Duration) (ending, error) {
	var idle <-chan time.Time
	if idleTimeout > 0 {
		t := time.NewTicker(min(idleTimeout/4+time.Millisecond, time.Second))
		defer t.Stop()
		idle = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return endSignal, nil
		case err := <-gateFailed:
			return endGateFailed, err
		case <-idle:
			if act.idleFor() >= idleTimeout {
				return endIdle, nil
			}
		case <-appDone:
			return endAppExited, nil
		}
	}
}

// ended records why the session ended and returns serve's error: none when it was
// stopped (a signal, the idle timeout), the gate's failure, or the app's exit.
func (s *serving) ended(end ending, gateErr error) error {
	o, sess, sf := s.o, s.sess, s.sf
	switch end {
	case endGateFailed:
		return fmt.Errorf("the guarded server failed: %w", gateErr)
	case endIdle:
		s.logger.Info("stopping", "reason", "idle", "idle_timeout", o.IdleTimeout.String())
		fmt.Fprintf(o.Stderr, "tether: no activity for %s; stopping session %s\n", o.IdleTimeout, sess.ID)
		sf.Exit = "stopped after " + o.IdleTimeout.String() + " without activity"
		sf.Why = wire.Fail(wire.FailIdle, wire.Plain(sf.Exit), nil)
		return nil
	case endAppExited:
		a := s.app
		if a == nil {
			a = exitedApp(s.apps)
		}
		app := a.proc
		how := describeExit(app.err)
		if a.name != "" {
			how = a.name + " " + how // "the app nb exited with status 1"
		}
		sf.ExitStatus = exitStatus(app.err)
		s.logger.Info("the app "+how, "session", sess.ID)
		sf.Phase, sf.Exit, sf.Ended = phaseAppExited, how, time.Now().UTC()
		if err := writeRecord(sess, sf); err == nil {
			s.keep = true // for `tether logs`
		}
		f := appFailure(how, "", app.tail.Lines(10), sess.ID, s.keep)
		s.rep.failed(f)
		return f
	}
	s.logger.Info("stopping", "reason", "signal")
	sf.Exit = "stopped by a signal"
	return nil
}

// close undoes what the steps made, in reverse order: the gate, what it served (the
// app: stopped and waited for), the batch session's final record (with err, serve's
// error, unchanged), the server log, and the session's directory unless it stays
// (then only its separate socket directory goes).
func (s *serving) close(err error) {
	if s.gate != nil {
		s.gate.close()
	}
	if s.static != nil {
		s.static.Close()
	}
	if s.app != nil {
		s.app.close()
	}
	// A team's apps stop together: each may take its grace, and stop waits for the
	// server only serverStopWait.
	var stopping sync.WaitGroup
	for _, a := range s.apps {
		stopping.Go(a.close)
	}
	stopping.Wait()
	for _, st := range s.statics {
		st.Close()
	}
	if s.teamLog != nil {
		s.teamLog.Close()
	}
	if s.batch && s.sf != nil {
		endBatchSession(s.sess, s.sf, err)
	}
	if s.srvLog != nil {
		s.srvLog.Close()
	}
	switch {
	case s.sess == nil:
	case !s.keep:
		s.sess.remove()
	case s.batch || s.sess.SockDir != s.sess.Dir:
		os.RemoveAll(s.sess.SockDir) // node-local (a batch job's), or short: made for this session
	}
}
