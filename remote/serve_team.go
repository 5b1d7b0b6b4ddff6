//go:build unix

package remote

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tether-dev/tether/access"
	"github.com/tether-dev/tether/tokenserver"
	"github.com/tether-dev/tether/wire"
)

// A team server (`tether serve --access FILE --app NAME=SPEC ...`, issue 17): several
// apps behind one gate, each under {base_url}NAME/, opened by the people the access
// file admits (access keys, OIDC sign-in by e-mail) and by the owner (the token).
//
// How it runs, on top of serve's steps (serve_run.go):
//   - normalize judges everything first: each app's preset or command (as a single-app
//     serve would), the access file (access.Load: FILE:LINE errors), the app names
//     the file grants that this server does not serve (a note: most likely a typo).
//   - run: the OIDC provider's discovery (a wrong issuer fails before any app starts),
//     then each app in turn through startApp, each with its own base URL, its own
//     directory for its files and secret (apps/NAME) and socket; all ready before
//     the gate answers. A failed or interrupted start stops those already running:
//     close undoes every step.
//   - One app's exit ends the session, as a single app's does: the team sees the
//     server go rather than a half-working one whose start page still lists the
//     dead app (the gate has no way to show an app's state), and the owner learns
//     which app and why (`tether logs`, each line of app.log prefixed with its name).
//   - SIGHUP reloads the access file (access.Live.Reload) and logs the outcome; the
//     policy in force stays when the new file is bad. Sessions stay: the gate asks the
//     policy on every request, so a removed key or group is refused at once.
//   - The gate's audit lines (sign-in, refusal, app opened) go to the server log and,
//     in the foreground, to stderr.
//
// Without --access (several named apps only), the team is the owner alone.

// normalizeTeam resolves each --app NAME=SPEC and loads the access file.
func (o *ServeOptions) normalizeTeam() error {
	if noAuth() {
		return usagef("TETHER_NO_AUTH=1 and a team server (named apps, --access) contradict each other; drop TETHER_NO_AUTH")
	}
	specs, err := o.wire().TeamApps()
	if err != nil {
		return err
	}
	t := &teamServe{}
	for _, sp := range specs {
		c := *o
		c.Apps, c.Access, c.team = nil, "", nil
		c.App, c.AppName, c.Command, c.preset, c.staticDir = nil, sp.Preset, sp.Command, nil, ""
		c.BaseURL = o.BaseURL + sp.Name + "/"
		if sp.Preset != "" && sp.Arg != "" {
			c.Command = expandHome([]string{sp.Arg})
		}
		if err := c.resolveApp(); err != nil {
			return fmt.Errorf("--app %s: %w", sp.Name, err)
		}
		if c.App != nil && c.AppName == "" {
			c.Command = c.App.Command
		}
		if c.App == nil && c.staticDir == "" {
			return usagef("--app %s: the built-in page is not served on a team server; name an app", sp.Name)
		}
		t.apps = append(t.apps, &teamApp{name: sp.Name, o: &c})
	}
	if o.Access != "" {
		abs, err := filepath.Abs(o.Access)
		if err != nil {
			return usagef("--access %q: %v", o.Access, err)
		}
		o.Access = abs
		if t.live, err = access.LoadLive(abs); err != nil {
			return err
		}
		t.notes = t.unservedNotes(t.live.Policy())
	}
	o.team = t
	return nil
}

// unservedNotes names the apps the policy grants that this server does not serve.
func (t *teamServe) unservedNotes(p *access.Policy) []wire.Note {
	var served []string
	for _, a := range t.apps {
		served = append(served, a.name)
	}
	var notes []wire.Note
	for _, n := range p.AppNames() {
		if !slices.Contains(served, n) {
			notes = append(notes, wire.Notef("%s grants app %q, which this server does not serve (it serves %s); nobody opens it", p.File(), n, strings.Join(served, ", ")))
		}
	}
	return notes
}

// reload reads the access file again (SIGHUP) and says how it went.
func (t *teamServe) reload(path string, stderr io.Writer) {
	lg := t.logger.Load()
	if lg == nil {
		lg = slog.New(slog.NewTextHandler(stderr, nil))
	}
	if err := t.live.Reload(path); err != nil {
		lg.Warn("the access file was not reloaded; the policy in force is unchanged", "error", err.Error())
		return
	}
	lg.Info("the access file was reloaded", "file", path)
	for _, n := range t.unservedNotes(t.live.Policy()) {
		lg.Warn(n.String())
	}
}

// gateTeam is the policy the gate asks: the access file's, or the owner alone.
func (t *teamServe) gateTeam() tokenserver.Team {
	if t.live != nil {
		return t.live
	}
	return ownerOnly{}
}

// ownerOnly is a team of one: the owner (the token), whom the gate admits itself.
type ownerOnly struct{}

func (ownerOnly) Key(string) (string, bool)   { return "", false }
func (ownerOnly) Member(string) bool          { return false }
func (ownerOnly) MayOpen(string, string) bool { return false }

// oidcSetupTimeout bounds the provider's discovery at start.
const oidcSetupTimeout = 30 * time.Second

// signIn sets up the OIDC sign-in when the policy asks for it (discovery at the
// issuer); nil otherwise.
func (t *teamServe) signIn(ctx context.Context) (tokenserver.SignIn, error) {
	if t.live == nil {
		return nil, nil
	}
	c := t.live.OIDC()
	if c == nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, oidcSetupTimeout)
	defer cancel()
	o, err := access.NewOIDC(ctx, *c, nil)
	if err != nil {
		return nil, fmt.Errorf("setting up the sign-in with %s (oidc in %s): %w", c.Issuer, t.live.Policy().File(), err)
	}
	return o, nil
}

// runTeam is run for a team server: the sign-in, the apps in turn, the gate in front
// of them all, then serving until the session ends.
func (s *serving) runTeam(ctx context.Context, token string, tlsConf *tls.Config) error {
	o, sess, t := s.o, s.sess, s.o.team
	allowHosts := s.startNotes(tlsConf)
	for _, n := range t.notes {
		s.progress(n)
	}
	if t.live == nil {
		s.progress(wire.Notef("no --access: only you (the token) may open these apps"))
	}
	signIn, err := t.signIn(ctx)
	if err != nil {
		return err
	}
	log, err := openCappedLog(sess.logPath(), defaultLogCap)
	if err != nil {
		return fmt.Errorf("opening the app log: %w", err)
	}
	s.teamLog = log
	reach := newPortReacher()
	var named []tokenserver.NamedApp
	for i, ta := range t.apps {
		h, err := s.startTeamApp(ctx, i, ta, reach)
		if err != nil {
			return err
		}
		named = append(named, tokenserver.NamedApp{Name: ta.name, Handler: h})
	}
	if s.gate, err = s.openGate(token, tlsConf, allowHosts, nil, reach, &tokenserver.Options{Team: t.gateTeam(), SignIn: signIn, Apps: named, TeamTitle: teamTitle(currentUser(), s.sf.Host)}); err != nil {
		return err
	}
	s.sf.Phase = phaseRunning
	if err := writeRecord(sess, s.sf); err != nil {
		return err
	}
	s.logger.Info("ready", "session", sess.ID, "socket", s.sockPath, "url", s.sf.URL)
	s.rep.ready(s.sf.Record)

	appDone, stop := firstExit(s.apps)
	defer stop()
	end, err := awaitEnd(ctx, s.gate.failed, appDone, s.act, o.IdleTimeout)
	return s.ended(end, err)
}

// teamTitle is what the login page says the team signs in to: "alice's apps on gpu1".
func teamTitle(user, host string) string {
	if user == "" {
		return "the apps on " + host
	}
	return user + "'s apps on " + host
}

// startTeamApp starts app i: a static directory served in this process, or an app
// process through startApp with its own directory (apps/NAME: its files and secret)
// and socket directory, its output into the session's app.log, each line prefixed
// with its name.
func (s *serving) startTeamApp(ctx context.Context, i int, ta *teamApp, reach *portReacher) (http.Handler, error) {
	o, sess := ta.o, s.sess
	if o.staticDir != "" {
		st, err := newStaticApp(o.staticDir, o.BaseURL, []string{sess.Root, sess.SockDir}, s.act.touch)
		if err != nil {
			return nil, fmt.Errorf("--app %s: %w", ta.name, err)
		}
		if l := s.o.team.live; l != nil {
			st.team = &staticRights{paths: l.Paths, dirs: []string{filepath.Clean(o.staticDir), st.dir}}
		}
		s.statics = append(s.statics, st)
		what := "read-only"
		if st.team != nil {
			what = "with each person's paths"
		}
		s.progress(wire.Stepf("serving %s at %s (%s)", o.staticDir, o.BaseURL, what))
		return st, nil
	}
	view := &session{ID: sess.ID, Root: sess.Root, Dir: filepath.Join(sess.Dir, "apps", ta.name),
		SockDir: filepath.Join(sess.SockDir, strconv.FormatInt(int64(i), 36))}
	for _, d := range []string{filepath.Dir(view.Dir), view.Dir, view.SockDir} {
		if err := os.Mkdir(d, 0o700); err != nil && !os.IsExist(err) {
			return nil, fmt.Errorf("--app %s: %w", ta.name, err)
		}
	}
	if len(view.appSocket()) > wire.MaxSocketPath {
		return nil, fmt.Errorf("--app %s: the socket path %s is too long; set TETHER_STATE_DIR to a shorter path", ta.name, view.appSocket())
	}
	var out io.Writer = &prefixWriter{w: s.teamLog, prefix: "[" + ta.name + "] "}
	if s.o.ReadyFD <= 0 {
		out = io.MultiWriter(out, &prefixWriter{w: s.o.Stderr, prefix: "[" + ta.name + "] "})
	}
	a, err := s.startApp(ctx, ta.name, o, view, out, reach)
	s.apps = append(s.apps, a)
	if err != nil {
		return nil, err
	}
	return a.handler, nil
}

// firstExit is closed when the first app process exits; stop ends its watching and
// waits for its goroutines.
func firstExit(apps []*servedApp) (<-chan struct{}, func()) {
	done, quit := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for _, a := range apps {
		if a.proc == nil {
			continue
		}
		wg.Go(func() {
			select {
			case <-a.proc.done:
				once.Do(func() { close(done) })
			case <-quit:
			}
		})
	}
	return done, func() {
		close(quit)
		wg.Wait()
	}
}

// exitedApp is the first of the apps that has exited (nil if none).
func exitedApp(apps []*servedApp) *servedApp {
	for _, a := range apps {
		if a.proc != nil && a.proc.exited() {
			return a
		}
	}
	return nil
}

// prefixWriter writes each line to w with prefix in front; a line is written whole
// (one Write per line, so lines of several apps do not mix).
type prefixWriter struct {
	w       io.Writer
	prefix  string
	mu      sync.Mutex
	partial []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(b)
	for len(b) > 0 {
		i := strings.IndexByte(string(b), '\n')
		if i < 0 {
			p.partial = append(p.partial, b...)
			if len(p.partial) > 4096 { // a long line without a newline: out it goes
				p.flush()
			}
			return n, nil
		}
		p.partial = append(p.partial, b[:i+1]...)
		b = b[i+1:]
		p.flush()
	}
	return n, nil
}

func (p *prefixWriter) flush() {
	line := append([]byte(p.prefix), p.partial...)
	if line[len(line)-1] != '\n' {
		line = append(line, '\n')
	}
	p.w.Write(line)
	p.partial = p.partial[:0]
}
