//go:build unix

package remote

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tether-dev/tether/tokenserver"
	"github.com/tether-dev/tether/wire"
)

// appPlan is an AppSpec made concrete for one session.
type appPlan struct {
	argv      []string
	env       []string
	network   string // "tcp" or "unix"
	address   string
	addrPort  netip.AddrPort // the TCP address (127.0.0.1:PORT); zero for a socket
	header    http.Header
	readyPath string
	baseURL   string
	host      tokenserver.HostPolicy
	secrets   []string // values the browser must never see (the app's own secret)
	files     []string // written for the app; removed when the session ends
	// From the login shell (LoginShell): the app's working directory (empty: serve's),
	// its umask (-1: serve's), and the shell's name for messages (empty: no login shell).
	dir   string
	umask int
	shell string
	// findPort: the command does not say where the app listens; serve also looks for
	// the app's own port (portless.go), and found is where it was found.
	findPort bool
	found    *foundPort
	uiPath   string // AppSpec.UIPath
}

// plan expands spec for a session in serve's own environment.
func (spec AppSpec) plan(s *session, baseURL string) (*appPlan, error) {
	return spec.planIn(s, baseURL, nil)
}

// planIn expands spec for a session: it picks the port (the kernel's choice on
// 127.0.0.1:0) or the socket path, and builds argv and environment, on top of the
// login shell's environment se (nil: serve's own).
func (spec AppSpec) planIn(s *session, baseURL string, se *shellEnv) (*appPlan, error) {
	if len(spec.Command) == 0 {
		return nil, errors.New("no command")
	}
	bind := spec.Bind
	if bind == BindAuto {
		bind = BindTCP
		for _, a := range spec.Command {
			if strings.Contains(a, "{socket}") {
				bind = BindSocket
			}
		}
	}
	vars := map[string]string{"host": "127.0.0.1", "base_url": baseURL, "socket": s.appSocket(),
		"session_dir": s.Dir, "base_path": strings.TrimSuffix(baseURL, "/")}
	for k, v := range spec.Vars {
		vars[k] = v
	}
	p := &appPlan{readyPath: spec.ReadyPath, baseURL: baseURL, host: spec.Host, umask: -1, uiPath: spec.UIPath}
	base := os.Environ()
	if se != nil {
		base, p.dir, p.umask, p.shell = se.env, se.dir, se.umask, se.shell
	}
	secret, err := spec.secret(s, vars)
	if err != nil {
		return nil, err
	}
	// secretVars are vars plus the secret itself, for Env and Header values only.
	secretVars := vars
	if secret != "" {
		basic := base64.StdEncoding.EncodeToString([]byte("tether:" + secret))
		// Both forms are scrubbed from what the app sends back: an app that echoes its
		// request headers would otherwise hand the browser the Basic one whole.
		p.secrets = []string{secret, basic}
		p.files = append(p.files, vars["app_secret_file"])
		secretVars = map[string]string{"app_secret": secret, "app_secret_basic": basic}
		for k, v := range vars {
			secretVars[k] = v
		}
	}
	var extraEnv []string
	switch bind {
	case BindTCP:
		port, err := freeLoopbackPort()
		if err != nil {
			return nil, err
		}
		vars["port"] = strconv.Itoa(port)
		p.addrPort = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(port))
		p.network, p.address = "tcp", p.addrPort.String()
		extraEnv = append(extraEnv, "PORT="+vars["port"])
		p.findPort = findsPort(spec) && findsPorts
	case BindSocket:
		vars["port"] = ""
		p.network, p.address = "unix", s.appSocket()
	default:
		return nil, fmt.Errorf("unknown bind mode %d", bind)
	}
	for _, a := range spec.Command {
		p.argv = append(p.argv, expand(a, vars))
	}
	for _, e := range spec.Env {
		k, v, ok := strings.Cut(e, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("environment entry %q is not NAME=value", e)
		}
		extraEnv = append(extraEnv, k+"="+expand(v, secretVars))
	}
	p.env = appEnv(base, extraEnv)
	if len(spec.Header) > 0 {
		p.header = http.Header{}
		for k, vs := range spec.Header {
			for _, v := range vs {
				p.header.Add(k, expand(v, secretVars))
			}
		}
	}
	for _, f := range spec.Files {
		path, err := writeAppFile(s.Dir, f.Name, expand(f.Content, vars))
		if err != nil {
			return nil, err
		}
		p.files = append(p.files, path)
	}
	return p, nil
}

// secretPlaceholders name the app's secret.
var secretPlaceholders = []string{"{app_secret}", "{app_secret_file}", "{app_secret_basic}"}

// secret makes the app's own secret when the spec names one, writing the secret file
// (0600, no trailing newline: Jupyter reads it verbatim) and setting
// vars["app_secret_file"]. It refuses a spec that would put the secret itself on the
// command line or into a file.
func (spec AppSpec) secret(s *session, vars map[string]string) (string, error) {
	for _, a := range spec.Command {
		if strings.Contains(a, "{app_secret}") || strings.Contains(a, "{app_secret_basic}") {
			return "", usagef("the app's secret must not be on its command line, where every user of the machine can read it; pass it by environment (--app-secret-env NAME) or as the file {app_secret_file}")
		}
	}
	all := append(append([]string{}, spec.Command...), spec.Env...)
	for _, vs := range spec.Header {
		all = append(all, vs...)
	}
	for _, f := range spec.Files {
		if strings.Contains(f.Content, "{app_secret}") || strings.Contains(f.Content, "{app_secret_basic}") {
			return "", fmt.Errorf("app file %s: the secret goes only into {app_secret_file}", f.Name)
		}
		all = append(all, f.Content)
	}
	named, file := false, false
	for _, x := range all {
		for _, ph := range secretPlaceholders {
			named = named || strings.Contains(x, ph)
		}
		file = file || strings.Contains(x, "{app_secret_file}")
	}
	if !named {
		return "", nil
	}
	secret, err := tokenserver.NewToken()
	if err != nil {
		return "", fmt.Errorf("making the app's secret: %w", err)
	}
	vars["app_secret_file"] = filepath.Join(s.Dir, appSecretFile)
	if file {
		if err := writeFileAtomic(s.Dir, appSecretFile, []byte(secret)); err != nil {
			return "", err
		}
	}
	return secret, nil
}

// writeAppFile writes one of the app's files under dir (0600; missing directories
// 0700) and returns its path.
func writeAppFile(dir, name, content string) (string, error) {
	clean := filepath.Clean(name)
	if name == "" || filepath.IsAbs(clean) || clean == "." || clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("app file %q must be a relative path inside the session directory", name)
	}
	sub := filepath.Dir(filepath.Join(dir, clean))
	if err := os.MkdirAll(sub, 0o700); err != nil {
		return "", fmt.Errorf("making %s for the app: %w", sub, err)
	}
	if err := writeFileAtomic(sub, filepath.Base(clean), []byte(content)); err != nil {
		return "", err
	}
	return filepath.Join(dir, clean), nil
}

// freeLoopbackPort asks the kernel for a free port on 127.0.0.1.
func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("cannot find a free port on 127.0.0.1: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// appEnv is the app's environment: ours without anything of tether's (TETHER_TOKEN
// above all), with extra entries replacing ones of the same name.
func appEnv(base, extra []string) []string {
	override := map[string]bool{}
	for _, e := range extra {
		k, _, _ := strings.Cut(e, "=")
		override[k] = true
	}
	var env []string
	for _, e := range base {
		k, _, _ := strings.Cut(e, "=")
		if strings.HasPrefix(k, "TETHER_") || override[k] {
			continue
		}
		env = append(env, e)
	}
	return append(env, extra...)
}

// appProc is a running app.
type appProc struct {
	pid   int
	sid   int
	ident string
	done  chan struct{} // closed once the app has exited and been reaped
	err   error         // its exit status, once done is closed
	tail  *tailBuffer
}

// startApp starts the app in its own process group with its output to out (on Linux
// under the app supervisor, whose pid, status and group stand for the app's). The
// goroutine that starts it keeps its OS thread locked until the app exits: Pdeathsig
// is tied to the thread that forked, and the kernel must not see that thread end while
// the app runs.
func startApp(p *appPlan, out io.Writer) (*appProc, error) {
	path, err := exec.LookPath(p.argv[0])
	if p.shell != "" {
		// The login shell's PATH, from its working directory: what typing the command
		// there would run.
		path, err = lookPathIn(p.argv[0], pathVar(p.env), p.dir)
		if err != nil {
			return nil, fmt.Errorf("cannot run the app: %s is not on the PATH of your login shell (%s): %s", p.argv[0], p.shell, pathVar(p.env))
		}
	}
	if err != nil {
		return nil, fmt.Errorf("cannot run the app: %w", err)
	}
	cmd := appCommand(p, path)
	cmd.Dir = p.dir
	cmd.WaitDelay = 2 * time.Second
	ap := &appProc{done: make(chan struct{}), tail: newTail(16 << 10)}
	cmd.Stdout = io.MultiWriter(out, ap.tail)
	cmd.Stderr = cmd.Stdout
	if devnull, err := os.Open(os.DevNull); err == nil {
		cmd.Stdin = devnull
		defer devnull.Close()
	}
	// The goroutine that starts and waits for the app ends when the app exits; stop
	// waits for it (<-done), and whoever holds the appProc stops it.
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		ap.err = cmd.Wait()
		close(ap.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("cannot start the app: %w", err)
	}
	ap.pid = cmd.Process.Pid
	ap.ident, _ = processIdentity(ap.pid)
	ap.sid = processSID(ap.pid)
	return ap, nil
}

// exited reports whether the app has exited.
func (a *appProc) exited() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}

// stop ends the app's whole process group: TERM, then KILL after grace (and KILL for
// any straggler once the leader is gone). It returns once the leader is reaped.
func (a *appProc) stop(grace time.Duration) {
	if !a.exited() {
		syscall.Kill(-a.pid, syscall.SIGTERM)
		select {
		case <-a.done:
		case <-time.After(grace):
		}
	}
	syscall.Kill(-a.pid, syscall.SIGKILL)
	<-a.done
}

// describeExit says how the app ended, e.g. "exited with status 1".
func describeExit(err error) string {
	if err == nil {
		return "exited with status 0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "was killed by signal " + ws.Signal().String()
		}
		return "exited with status " + strconv.Itoa(ee.ExitCode())
	}
	return "ended: " + err.Error()
}

// exitStatus is the app's exit status when it exited on its own; nil when a signal
// killed it or it did not run.
func exitStatus(err error) *int {
	n := 0
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return nil
		}
		n = ee.ExitCode()
	default:
		return nil
	}
	return &n
}

// waitReady waits until the app accepts connections (or answers 200 on its ready
// path), printing a progress line now and then. It fails when the app exits, ctx ends
// or timeout passes, and with a *portTakenError when a listener that is not the app's
// holds its TCP port.
//
// Nothing is sent to a TCP app before its listener is verified: the first probes only
// connect (and judge the socket at the other end, checkAppConn), then the listener is
// matched to the app's processes (verifyListener); only then may a request go, with the
// app's secret when the ready path needs it, each on a connection judged again.
func waitReady(ctx context.Context, p *appPlan, app *appProc, timeout time.Duration, progress func(wire.Note)) error {
	start := time.Now()
	deadline := start.Add(timeout)
	what := "the app to listen on " + p.address
	if p.readyPath != "" {
		what = "the app to answer " + p.baseURL + strings.TrimPrefix(p.readyPath, "/")
	}
	pr := &prober{p: p, app: app, verified: p.network != "tcp"}
	if p.findPort {
		what = "the app to listen on " + p.address + " ($PORT) or on a port of its own"
		pr.finder = newPortFinder(app, p.addrPort.Port())
	}
	progress(wire.Stepf("waiting for %s", what))
	nextReport := start.Add(5 * time.Second)
	pr.client = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext:       func(ctx context.Context, _, _ string) (net.Conn, error) { return pr.dial(ctx) },
		DisableKeepAlives: true,
	}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for {
		ok, err := pr.ready(ctx)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		now := time.Now()
		if now.After(deadline) {
			why := ""
			if pr.last != nil {
				why = " (" + pr.last.Error() + ")"
			}
			return fmt.Errorf("the app was not ready after %s%s; raise --ready-timeout if it is slow to start", timeout.Round(time.Second), why)
		}
		if now.After(nextReport) {
			progress(wire.Stepf("still waiting for %s (%s)", what, now.Sub(start).Round(time.Second)))
			nextReport = now.Add(5 * time.Second)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-app.done:
			return errAppExited
		case <-time.After(readyPoll(now.Sub(start))):
		}
	}
}

// readyPoll is the pause between readiness probes after waiting so long: 5 ms at
// first, since most apps listen within milliseconds and every probe missed by a long
// pause is added to the launch; then 25 ms, and 100 ms once the app is clearly slow. A
// probe of a closed port costs microseconds.
func readyPoll(waited time.Duration) time.Duration {
	switch {
	case waited < time.Second:
		return 5 * time.Millisecond
	case waited < 5*time.Second:
		return 25 * time.Millisecond
	default:
		return 100 * time.Millisecond
	}
}

var errAppExited = errors.New("the app exited")

// prober is one wait for the app.
type prober struct {
	p        *appPlan
	app      *appProc
	client   *http.Client
	verified bool        // the TCP listener is the app's (always, for a socket)
	last     error       // the last reason a probe failed that is worth telling
	finder   *portFinder // looks for the app's own port (plan.findPort)
}

// dial connects to the app; a TCP connection is judged before it is used.
func (pr *prober) dial(ctx context.Context) (net.Conn, error) {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, pr.p.network, pr.p.address)
	if err != nil || pr.p.network != "tcp" {
		return c, err
	}
	if err := checkAppConn(c); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// ready probes once. Its error is a *portTakenError, or the listening sockets could
// not be read; anything else is "not yet".
func (pr *prober) ready(ctx context.Context) (bool, error) {
	p := pr.p
	var taken *portTakenError
	if !pr.verified {
		c, err := pr.dial(ctx)
		if errors.As(err, &taken) {
			if ok, ferr := pr.find(ctx); ok || ferr != nil || pr.verified {
				return ok, ferr
			}
			return false, taken
		}
		if err != nil {
			pr.noteErr(err)
			return pr.find(ctx)
		}
		c.Close()
		ok, err := verifyListener(p.addrPort, pr.app)
		if err != nil || !ok {
			if err == nil {
				pr.last = fmt.Errorf("%s accepts connections, but no process of the app holds its listener", p.address)
			}
			return false, err
		}
		pr.verified, pr.last = true, nil
		if p.readyPath == "" {
			return true, nil
		}
	}
	if p.readyPath == "" {
		c, err := pr.dial(ctx)
		if err != nil {
			return false, nil
		}
		c.Close()
		return true, nil
	}
	// A loopback Host: apps that check it (Jupyter) refuse anything else.
	host := "localhost"
	if p.network == "tcp" {
		host = p.address
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+p.baseURL+strings.TrimPrefix(p.readyPath, "/"), nil)
	if err != nil {
		return false, nil
	}
	for k, vs := range p.header {
		req.Header[k] = vs
	}
	resp, err := pr.client.Do(req)
	if errors.As(err, &taken) {
		return false, taken
	}
	if err != nil {
		pr.noteErr(err)
		return false, nil
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, nil
	}
	return pr.uiReady(ctx)
}

// noteErr keeps a probe's failure for the timeout message when it is more than the app
// not listening yet.
func (pr *prober) noteErr(err error) {
	if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		pr.last = err
	}
}
