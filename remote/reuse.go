//go:build unix

package remote

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"time"

	"github.com/tether-dev/tether/batch"
	"github.com/tether-dev/tether/wire"
)

// Same app twice (DESIGN.md): `tether launch HOST APP|-- CMD` attaches to a running
// session of the same app instead of starting a second one beside it. The launcher
// asks with `serve --reuse` (or `batch submit --reuse`); this side, which knows each
// session's request and state, answers with the session to reuse or starts a new one
// as usual, in the same exec: no round trip more for a launch.
//
// "The same app" is the same request (appRequest): the same preset and arguments, or
// the same command as given (placeholders unexpanded); the same base URL and working
// directory; the same environment (the login shell's, and the same --setup script:
// its SHA-256 is kept, not the script); the same options that shape the app or its
// gate (listen address, socket, TLS, --app-secret-env, --app-header, --allow-exposed,
// --no-port-proxy); and for a batch session the same scheduler and submit options. A
// --name, when given, must be the session's name too. The timeouts are not part of it
// (a running session does not restart for them), nor is how the launcher reaches it
// (--via-node-ssh), nor who asks: sessions are per user, and per host (the host's own,
// or batch sessions submitted from it).
//
// Which one: the newest running session. None running, the newest one still starting
// is waited for (another launch, or a slow app) and reused once ready; if it fails or
// is stopped meanwhile, a new one is started. A batch session is reused while its
// scheduler lists its job as pending or running; one whose job is over (or that the
// scheduler cannot confirm) never is.

// appRequest is what a session was asked to run, as its start gave it.
type appRequest struct {
	// App is the preset (serve --app), empty for a command or the built-in app.
	App string `json:"app,omitempty"`
	// Args are the preset's extra arguments, or the command as given.
	Args []string `json:"args,omitempty"`
	// BaseURL is the path the server serves under.
	BaseURL string `json:"base_url,omitempty"`
	// Dir is the working directory the app started in.
	Dir string `json:"dir,omitempty"`
	// Options are serve's other options that shape the app or its gate, as flags.
	Options []string `json:"options,omitempty"`
	// Batch are a batch session's scheduler and its submit options (--scheduler=NAME
	// first, then the options' words).
	Batch []string `json:"batch,omitempty"`
}

// same reports whether a and b ask for the same app in the same way.
func (a *appRequest) same(b *appRequest) bool {
	return a != nil && b != nil && a.App == b.App && slices.Equal(a.Args, b.Args) && a.BaseURL == b.BaseURL &&
		a.Dir == b.Dir && slices.Equal(a.Options, b.Options) && slices.Equal(a.Batch, b.Batch)
}

// shaping is what of serve's command line shapes the app or its gate (what a reused
// session must have been asked for the same way): not its name, timeouts or preset,
// which are compared apart or not at all, nor how it reports.
func shaping(s wire.Serve) wire.Serve {
	return wire.Serve{Listen: s.Listen, Socket: s.Socket, TLS: s.TLS, TLSCert: s.TLSCert, AllowHosts: s.AllowHosts,
		AppSecretEnv: s.AppSecretEnv, AppHeaders: s.AppHeaders, AllowExposed: s.AllowExposed, NoPortProxy: s.NoPortProxy,
		LoginShell: s.LoginShell}
}

// request is what serve was asked to run (o normalized: the base URL cleaned, the
// socket path absolute, TLS set by a certificate): its shaping flags as serve's own
// grammar writes them (wire.Serve), and what is not a flag: an unauthenticated
// server, the setup script's digest.
func (o *ServeOptions) request() *appRequest {
	r := &appRequest{App: o.AppName, Args: slices.Clone(o.Command), BaseURL: o.BaseURL, Dir: workDir()}
	sv := o.wire()
	sv.TLS = o.TLS // o.wire leaves --tls out when a certificate implies it; a request keeps it
	r.Options = shaping(sv).Args()
	if noAuth() {
		r.Options = append(r.Options, "--no-auth")
	}
	if d := setupDigest(o.Setup); d != "" {
		r.Options = append(r.Options, "--setup-sha256="+d)
	}
	return r
}

// setupDigest stands for a setup script in a request: its SHA-256, empty for none.
func setupDigest(setup string) string {
	if setup == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(setup))
	return hex.EncodeToString(sum[:])
}

// slurmRequest is what a batch submit asks for: the job's serve (its shaping flags,
// read by wire.ParseServe, not its name or timeouts), the setup script's digest, the
// scheduler and its options' words.
func slurmRequest(o BatchSubmitOptions, serve wire.Serve, setup string) *appRequest {
	sched := o.Scheduler
	if s, err := batch.Lookup(o.Scheduler); err == nil {
		sched = s.Name()
	}
	r := &appRequest{App: serve.App, Args: slices.Clone(serve.Command), BaseURL: "/", Dir: workDir(),
		Batch: append([]string{"--scheduler=" + sched}, o.Options...), Options: shaping(serve).Args()}
	if r.Args == nil {
		r.Args = []string{}
	}
	if d := setupDigest(setup); d != "" {
		r.Options = append(r.Options, "--setup-sha256="+d)
	}
	return r
}

func workDir() string {
	d, err := os.Getwd()
	if err != nil {
		return ""
	}
	return d
}

// reuse answers a --reuse start with a running session of the same app, waiting for
// one that is still starting; done says it answered (or failed), otherwise the caller
// starts a new session.
func reuse(ctx context.Context, o *ServeOptions) (done bool, err error) {
	_, mine, _, err := localSessions()
	if err != nil {
		return false, nil // the start says what is wrong with the state root
	}
	want := o.request()
	var running, starting []entry
	for _, e := range mine {
		if e.rec == nil || e.rec.isSlurm() || !want.same(e.rec.Request) || o.Name != "" && e.rec.Name != o.Name {
			continue
		}
		switch sessionState(e) {
		case wire.StateRunning:
			running = append(running, e)
		case wire.StateStarting:
			starting = append(starting, e)
		}
	}
	// mine is oldest first.
	if n := len(running); n > 0 {
		return true, answerReused(o, running[n-1].rec.Record, n)
	}
	if len(starting) == 0 {
		return false, nil
	}
	e := starting[len(starting)-1]
	fmt.Fprintf(o.Stderr, "tether: session %s of the same app is starting; waiting for it\n", e.s.ID)
	sf, err := waitStarted(ctx, o, e)
	if err != nil {
		return true, err
	}
	if sf == nil {
		fmt.Fprintf(o.Stderr, "tether: session %s did not start; starting another\n", e.s.ID)
		return false, nil
	}
	return true, answerReused(o, sf.Record, 1)
}

// reuseWait is how often a starting session's record is read while waiting for it.
var reuseWait = 100 * time.Millisecond

// waitStarted waits for a starting session to run: its record, or nil when it failed,
// was stopped or is still not ready after o.ReadyTimeout. An error means the caller
// went away or ctx ended.
func waitStarted(ctx context.Context, o *ServeOptions, e entry) (*sessionFile, error) {
	var gone <-chan struct{}
	if o.CancelOnEOF {
		gone = watchEOF(o.Stdin)
	}
	deadline := time.NewTimer(o.ReadyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(reuseWait)
	defer tick.Stop()
	for {
		sf, err := readRecord(e.s.recordPath())
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, nil
		case err == nil:
			switch sessionState(entry{s: e.s, rec: sf}) {
			case wire.StateRunning:
				return sf, nil
			case wire.StateStarting:
			default:
				return nil, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, errors.New("interrupted while waiting for session " + e.s.ID + " to start; nothing was started")
		case <-gone:
			return nil, errors.New("the caller went away (stdin closed) while waiting for session " + e.s.ID + " to start; nothing was started")
		case <-deadline.C:
			return nil, nil
		case <-tick.C:
		}
	}
}

// answerReused prints rec as serve's answer, marked reused (of n of the same app).
func answerReused(o *ServeOptions, rec wire.Record, n int) error {
	rec.State, rec.Job, rec.Exit, rec.AppOutput = "", nil, "", nil
	rec.Reused = n
	if !o.JSON {
		fmt.Fprintf(o.Stderr, "tether: session %s runs the same app already\n", rec.ID)
		printBanner(o.Stderr, rec, true)
		return nil
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(o.Stdout, "%s\n", b)
	return err
}

// reuseSlurm answers a --reuse submit with a batch session of the same app, scheduler
// and options whose job the scheduler lists as running or pending: the running one,
// else the newest. done says it answered; otherwise the caller submits a job.
func reuseSlurm(ctx context.Context, o BatchSubmitOptions, serve wire.Serve, root, setup string) (done bool, err error) {
	all, err := scanRoots(root, true)
	if err != nil {
		return false, nil
	}
	want := slurmRequest(o, serve, setup)
	var cands []entry
	for _, e := range all {
		sf := e.rec
		if sf.isSlurm() && sf.JobID != "" && sf.Phase != phaseEnded && sf.Phase != phaseAppExited &&
			want.same(sf.Request) && (serve.Name == "" || sf.Name == serve.Name) {
			cands = append(cands, e)
		}
	}
	if len(cands) == 0 {
		return false, nil
	}
	jobs, err := slurmJobsOf(ctx, cands)
	if err != nil {
		return false, nil // the scheduler cannot say which jobs are alive: reuse none
	}
	var running, waiting []entry
	for _, e := range cands {
		j, ok := jobs[jobKey(e.rec)]
		switch {
		case !ok || JobEnded(j.State) || j.State == "COMPLETING":
		case slurmState(e, jobs) == wire.StateRunning:
			running = append(running, e)
		case JobPending(j.State) || j.State == "RUNNING":
			waiting = append(waiting, e)
		}
	}
	n := len(running) + len(waiting)
	var pick entry
	switch {
	case len(running) > 0:
		pick = running[len(running)-1]
	case len(waiting) > 0:
		pick = waiting[len(waiting)-1]
	default:
		return false, nil
	}
	b, err := json.Marshal(wire.Submitted{ID: pick.s.ID, JobID: pick.rec.JobID, Output: pick.s.slurmOutput(), Reused: n})
	if err != nil {
		return true, err
	}
	_, err = fmt.Fprintf(o.Stdout, "%s\n", b)
	return true, err
}
