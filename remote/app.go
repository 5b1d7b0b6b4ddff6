//go:build unix

package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// appPlan is an AppSpec made concrete for one session.
type appPlan struct {
	argv      []string
	env       []string
	network   string // "tcp" or "unix"
	address   string
	header    http.Header
	readyPath string
	baseURL   string
}

// plan expands spec for a session: it picks the port (the kernel's choice on
// 127.0.0.1:0) or the socket path, and builds argv and environment.
func (spec AppSpec) plan(s *session, baseURL string) (*appPlan, error) {
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
	vars := map[string]string{"host": "127.0.0.1", "base_url": baseURL, "socket": s.appSocket()}
	for k, v := range spec.Vars {
		vars[k] = v
	}
	p := &appPlan{readyPath: spec.ReadyPath, baseURL: baseURL}
	var extraEnv []string
	switch bind {
	case BindTCP:
		port, err := freeLoopbackPort()
		if err != nil {
			return nil, err
		}
		vars["port"] = strconv.Itoa(port)
		p.network, p.address = "tcp", net.JoinHostPort("127.0.0.1", vars["port"])
		extraEnv = append(extraEnv, "PORT="+vars["port"])
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
		extraEnv = append(extraEnv, k+"="+expand(v, vars))
	}
	p.env = appEnv(os.Environ(), extraEnv)
	if len(spec.Header) > 0 {
		p.header = http.Header{}
		for k, vs := range spec.Header {
			for _, v := range vs {
				p.header.Add(k, expand(v, vars))
			}
		}
	}
	return p, nil
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

// startApp starts the app in its own process group with its output to out. The
// goroutine that starts it keeps its OS thread locked until the app exits: Pdeathsig
// is tied to the thread that forked, and the kernel must not see that thread end while
// the app runs.
func startApp(p *appPlan, out io.Writer) (*appProc, error) {
	path, err := exec.LookPath(p.argv[0])
	if err != nil {
		return nil, fmt.Errorf("cannot run the app: %w", err)
	}
	cmd := &exec.Cmd{Path: path, Args: p.argv, Env: p.env, SysProcAttr: appSysProcAttr(), WaitDelay: 2 * time.Second}
	ap := &appProc{done: make(chan struct{}), tail: newTail(16 << 10)}
	cmd.Stdout = io.MultiWriter(out, ap.tail)
	cmd.Stderr = cmd.Stdout
	if devnull, err := os.Open(os.DevNull); err == nil {
		cmd.Stdin = devnull
		defer devnull.Close()
	}
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

// waitReady waits until the app accepts connections (or answers 200 on its ready
// path), printing a progress line now and then. It fails when the app exits, ctx ends
// or timeout passes.
func waitReady(ctx context.Context, p *appPlan, app *appProc, timeout time.Duration, progress func(string)) error {
	start := time.Now()
	deadline := start.Add(timeout)
	what := "the app to listen on " + p.address
	if p.readyPath != "" {
		what = "the app to answer " + p.baseURL + strings.TrimPrefix(p.readyPath, "/")
	}
	progress("waiting for " + what)
	nextReport := start.Add(5 * time.Second)
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, p.network, p.address)
		},
		DisableKeepAlives: true,
	}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for {
		if appReady(ctx, p, client) {
			return nil
		}
		now := time.Now()
		if now.After(deadline) {
			return fmt.Errorf("the app was not ready after %s; raise --ready-timeout if it is slow to start", timeout.Round(time.Second))
		}
		if now.After(nextReport) {
			progress(fmt.Sprintf("still waiting for %s (%s)", what, now.Sub(start).Round(time.Second)))
			nextReport = now.Add(5 * time.Second)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-app.done:
			return errAppExited
		case <-time.After(100 * time.Millisecond):
		}
	}
}

var errAppExited = errors.New("the app exited")

func appReady(ctx context.Context, p *appPlan, client *http.Client) bool {
	if p.readyPath == "" {
		d := net.Dialer{Timeout: time.Second}
		c, err := d.DialContext(ctx, p.network, p.address)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://app"+p.baseURL+strings.TrimPrefix(p.readyPath, "/"), nil)
	if err != nil {
		return false
	}
	for k, vs := range p.header {
		req.Header[k] = vs
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
