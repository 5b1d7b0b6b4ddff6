//go:build unix

package remote

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/wire"
)

// reuseOpts are serve's options for COMMAND, normalized as Serve would.
func reuseOpts(t *testing.T, edit func(*ServeOptions), command ...string) (*ServeOptions, *syncBuffer, *syncBuffer) {
	t.Helper()
	out, errb := &syncBuffer{}, &syncBuffer{}
	o := &ServeOptions{Command: command, JSON: true, Reuse: true, LoginShell: true, Stdout: out, Stderr: errb, ReadyTimeout: 5 * time.Second}
	if edit != nil {
		edit(o)
	}
	if err := o.normalize(); err != nil {
		t.Fatal(err)
	}
	return o, out, errb
}

// sessionOf is a fake session (this process as its server) that was asked for o.
func sessionOf(t *testing.T, root string, o *ServeOptions, edit func(*sessionFile)) *session {
	t.Helper()
	s, _ := fakeSession(t, root, func(sf *sessionFile) {
		sf.Request = o.request()
		if edit != nil {
			edit(sf)
		}
	})
	return s
}

func reused(t *testing.T, out string) wire.Record {
	t.Helper()
	var r wire.Record
	if err := json.Unmarshal([]byte(out), &r); err != nil || strings.Count(out, "\n") != 1 {
		t.Fatalf("serve --reuse printed %q: %v; want one JSON line", out, err)
	}
	return r
}

func TestReuseNewestRunningOfTheSameApp(t *testing.T) {
	root := tempRoot(t)
	cmd := []string{"python3", "-m", "http.server", "{port}"}
	o, out, _ := reuseOpts(t, nil, cmd...)
	older := sessionOf(t, root, o, func(sf *sessionFile) { sf.Started = time.Now().Add(-time.Hour) })
	newer := sessionOf(t, root, o, nil)
	other, _, _ := reuseOpts(t, nil, append(cmd, "--bind", "127.0.0.1")...)
	sessionOf(t, root, other, func(sf *sessionFile) { sf.Started = time.Now().Add(time.Minute) })
	sessionOf(t, root, o, func(sf *sessionFile) { sf.PID = deadPID(t) })                     // dead
	sessionOf(t, root, o, func(sf *sessionFile) { sf.Phase, sf.Exit = phaseAppExited, "x" }) // over
	sessionOf(t, root, o, func(sf *sessionFile) { sf.Host = "node17.cluster" })              // another host's
	fakeSession(t, root, func(sf *sessionFile) { sf.Command = cmd })                         // an earlier version's: no request

	done, err := reuse(context.Background(), o)
	if !done || err != nil {
		t.Fatalf("reuse: %v, %v; want the running session", done, err)
	}
	r := reused(t, out.String())
	if r.ID != newer.ID || r.Reused != 2 || r.State != "" || r.Validate() != nil {
		t.Errorf("reused %s (reused %d, state %q); want %s, the newer of 2 (older %s)", r.ID, r.Reused, r.State, newer.ID, older.ID)
	}
}

func TestReuseNeedsTheSameRequest(t *testing.T) {
	cmd := []string{"myapp", "--port={port}"}
	tests := []struct {
		name string
		edit func(*ServeOptions)
		want bool
	}{
		{"same", nil, true},
		{"another name asked", func(o *ServeOptions) { o.Name = "other" }, false},
		{"other timeouts", func(o *ServeOptions) { o.ReadyTimeout, o.IdleTimeout = time.Minute, time.Hour }, true},
		{"another base URL", func(o *ServeOptions) { o.BaseURL = "/lab/" }, false},
		{"an app header", func(o *ServeOptions) { o.AppHeaders = []string{"X-A: 1"} }, false},
		{"no port proxy", func(o *ServeOptions) { o.NoPortProxy = true }, false},
		{"listening on TCP", func(o *ServeOptions) { o.Listen = "127.0.0.1:0" }, false},
		{"the preset of that name", func(o *ServeOptions) { o.AppName, o.Command = "builtin", nil }, false},
		{"not in the login shell", func(o *ServeOptions) { o.LoginShell = false }, false},
		{"a setup script", func(o *ServeOptions) { o.Setup = "cd /data" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := tempRoot(t)
			first, _, _ := reuseOpts(t, nil, cmd...)
			s := sessionOf(t, root, first, func(sf *sessionFile) { sf.Name = "lab" })
			o, out, _ := reuseOpts(t, tt.edit, cmd...)
			done, err := reuse(context.Background(), o)
			if err != nil || done != tt.want {
				t.Fatalf("reuse: %v, %v; want %v", done, err, tt.want)
			}
			if done && reused(t, out.String()).ID != s.ID {
				t.Errorf("reused %q; want %s", out.String(), s.ID)
			}
		})
	}
	// The working directory is part of the app: the same command elsewhere is another.
	root := tempRoot(t)
	first, _, _ := reuseOpts(t, nil, cmd...)
	sessionOf(t, root, first, func(sf *sessionFile) { sf.Request.Dir = "/srv/elsewhere" })
	o, _, _ := reuseOpts(t, nil, cmd...)
	if done, err := reuse(context.Background(), o); done || err != nil {
		t.Errorf("reuse of a session started in another directory: %v, %v", done, err)
	}
}

// A session of the same app still starting is waited for: reused once it runs, or, if
// it fails or goes away, not (a new one starts).
func TestReuseWaitsForAStartingSession(t *testing.T) {
	defer func(d time.Duration) { reuseWait = d }(reuseWait)
	reuseWait = 10 * time.Millisecond
	for _, outcome := range []string{phaseRunning, "removed", phaseAppExited} {
		t.Run(outcome, func(t *testing.T) {
			root := tempRoot(t)
			o, out, errb := reuseOpts(t, nil, "myapp", "{port}")
			s := sessionOf(t, root, o, func(sf *sessionFile) { sf.Phase = phaseStarting })
			go func() {
				time.Sleep(200 * time.Millisecond)
				if outcome == "removed" {
					s.remove()
					return
				}
				sf, err := readRecord(s.recordPath())
				if err == nil {
					sf.Phase = outcome
					writeRecord(s, sf)
				}
			}()
			start := time.Now()
			done, err := reuse(context.Background(), o)
			took := time.Since(start)
			if err != nil || done != (outcome == phaseRunning) {
				t.Fatalf("reuse: %v, %v; want done=%v", done, err, outcome == phaseRunning)
			}
			if took < 150*time.Millisecond || took > 4*time.Second {
				t.Errorf("reuse returned after %v; want it to wait for the session (about 200 ms)", took)
			}
			if !strings.Contains(errb.String(), "session "+s.ID+" of the same app is starting; waiting for it") {
				t.Errorf("stderr %q: want the wait said", errb.String())
			}
			if done && reused(t, out.String()).ID != s.ID {
				t.Errorf("reused %q; want %s", out.String(), s.ID)
			}
		})
	}
}

// The caller going away while serve waits ends the wait: nothing is started.
func TestReuseWaitEndsWhenTheCallerGoes(t *testing.T) {
	root := tempRoot(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	o, _, _ := reuseOpts(t, func(o *ServeOptions) { o.CancelOnEOF, o.Stdin = true, r }, "myapp", "{port}")
	sessionOf(t, root, o, func(sf *sessionFile) { sf.Phase = phaseStarting })
	time.AfterFunc(100*time.Millisecond, func() { w.Close() })
	done, err := reuse(context.Background(), o)
	if !done || err == nil || !strings.Contains(err.Error(), "nothing was started") {
		t.Errorf("reuse with the caller gone: %v, %v; want an error saying nothing was started", done, err)
	}
}

func TestSlurmRequestWords(t *testing.T) {
	a := slurmRequestOf(t, BatchSubmitOptions{Scheduler: "slurm", Options: []string{"-p", "gpu"},
		Serve: []string{"--name", "lab", "--ready-timeout", "15m0s", "--idle-timeout=1h", "--app", "jupyter", "--no-port-proxy", "--", "--notebook-dir=/data"}}, "")
	if a.App != "jupyter" || !slices.Equal(a.Args, []string{"--notebook-dir=/data"}) || !slices.Equal(a.Options, []string{"--no-port-proxy"}) ||
		!slices.Equal(a.Batch, []string{"--scheduler=slurm", "-p", "gpu"}) {
		t.Errorf("slurmRequest: %+v", a)
	}
	b := slurmRequestOf(t, BatchSubmitOptions{Scheduler: "slurm", Options: []string{"-p", "gpu"}, Serve: []string{"--app", "jupyter", "--no-port-proxy", "--", "--notebook-dir=/data"}}, "")
	if !a.same(b) {
		t.Errorf("a request with another name and timeouts: %+v; want the same as %+v", b, a)
	}
	c := slurmRequestOf(t, BatchSubmitOptions{Scheduler: "slurm", Options: []string{"-p", "cpu"}, Serve: []string{"--app", "jupyter", "--no-port-proxy", "--", "--notebook-dir=/data"}}, "")
	if a.same(c) {
		t.Errorf("a request with other sbatch options is the same")
	}
	serve := []string{"--app", "jupyter", "--no-port-proxy", "--", "--notebook-dir=/data"}
	d := slurmRequestOf(t, BatchSubmitOptions{Scheduler: "slurm", Options: []string{"-p", "gpu"}, Serve: serve}, "module load cuda")
	e := slurmRequestOf(t, BatchSubmitOptions{Scheduler: "slurm", Options: []string{"-p", "gpu"}, Serve: serve}, "module load cuda")
	if a.same(d) || !d.same(e) || strings.Contains(strings.Join(d.Options, " "), "module") {
		t.Errorf("with a setup script: %+v; want another request than without, the same as with the same script, and not the script itself", d)
	}
	// The same options for another scheduler are another request.
	f := slurmRequestOf(t, BatchSubmitOptions{Scheduler: "pbs", Options: []string{"-p", "gpu"}, Serve: serve}, "")
	if f.same(b) {
		t.Errorf("the same words for PBS and for Slurm are the same request: %+v", f)
	}
}

// slurmRequestOf is slurmRequest for o's serve arguments, read as batch submit reads them.
func slurmRequestOf(t *testing.T, o BatchSubmitOptions, setup string) *appRequest {
	t.Helper()
	serve, err := wire.ParseServe(o.Serve)
	if err != nil {
		t.Fatal(err)
	}
	return slurmRequest(o, serve, setup)
}
