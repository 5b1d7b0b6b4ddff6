//go:build unix

package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/tether-dev/tether/internal/termsafe"
	"github.com/tether-dev/tether/wire"
)

// staleAfter is how old a session directory without a readable record must be before
// ls calls it dead: a starting server writes its record right after making the
// directory.
const staleAfter = time.Minute

// sessionState judges a session on this host: app-exited as its server recorded, else
// running while the server is still the very process that wrote the record (pid, start
// time and boot id all match), else dead. Starting sessions report phaseStarting.
func sessionState(e entry) string {
	if e.rec == nil {
		return wire.StateDead
	}
	switch e.rec.Phase {
	case phaseAppExited:
		return wire.StateAppExited
	case phaseRunning, phaseStarting:
		if processAlive(e.rec.PID, e.rec.ServerStart) {
			return e.rec.Phase
		}
	}
	return wire.StateDead
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	return h
}

// localSessions scans the state root and splits the sessions into this host's and a
// count of other hosts'. Record-less directories younger than staleAfter (a server
// still starting) are left out.
func localSessions() (root string, mine []entry, others map[string]int, err error) {
	root, err = stateRoot(false)
	if err != nil {
		return "", nil, nil, err
	}
	all, err := scanRoots(root, false)
	if err != nil {
		return "", nil, nil, err
	}
	// Slurm sessions live in their own root on the shared home, and count as this
	// host's wherever their job runs: ls, stop and logs on the login node handle them.
	if sroot, err := slurmRoot(false); err == nil && sroot != root {
		if more, err := scanRoots(sroot, true); err == nil && len(more) > 0 {
			all = append(all, more...)
			sortEntries(all)
		}
	}
	host := hostname()
	others = map[string]int{}
	for _, e := range all {
		switch {
		case e.rec == nil:
			if fi, err := os.Lstat(e.s.Dir); err == nil && time.Since(fi.ModTime()) > staleAfter {
				mine = append(mine, e)
			}
		case e.rec.Host == host || e.rec.isSlurm():
			mine = append(mine, e)
		default:
			others[e.rec.Host]++
		}
	}
	return root, mine, others, nil
}

// Ls lists this user's sessions on this machine: starting, running, app-exited or
// dead, never starting or running for a server that is gone.
func Ls(ctx context.Context, o LsOptions) error {
	_, mine, others, err := localSessions()
	if err != nil {
		return err
	}
	var list []wire.Record
	say := noter{o.Stderr, o.JSONNotes}
	jobs := slurmJobsFor(ctx, mine, say)
	for _, e := range mine {
		if e.rec == nil && e.err != nil && !errors.Is(e.err, fs.ErrNotExist) {
			say.note(wire.Stepf("session %s: %v", e.s.ID, e.err))
		}
		st := sessionState(e)
		if e.rec.isSlurm() {
			st = slurmState(e, jobs)
		}
		if o.Prune && (st == wire.StateDead || st == wire.StateAppExited || st == wire.StateEnded) {
			if err := stopEntry(ctx, e, say); err != nil {
				say.note(wire.Stepf("cannot prune %s: %v", e.s.ID, err))
				continue
			}
			say.note(wire.Stepf("pruned %s (%s)", e.s.ID, st))
			continue
		}
		r := wire.Record{ID: e.s.ID, State: st}
		if e.rec != nil {
			r = e.rec.Record
			r.State = st
			if j, ok := jobs[jobKey(e.rec)]; ok && r.JobID != "" {
				r.Job = &j
			}
			if st == wire.StateAppExited || st == wire.StateEnded {
				r.Exit = termsafe.Line(termsafe.Clip(e.rec.Exit, 200))
			}
			if st == wire.StateAppExited {
				r.AppOutput = logTail(e.s.logPath(), 10)
			}
		}
		list = append(list, r)
	}
	if o.JSON {
		if list == nil {
			list = []wire.Record{}
		}
		b, err := json.Marshal(list)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(o.Stdout, "%s\n", b)
		noteOthers(say, others)
		return err
	}
	if len(list) == 0 {
		fmt.Fprintf(o.Stdout, "no tether sessions on %s\n", hostname())
	} else {
		t := wire.TableOptions{ShowToken: o.ShowToken}
		if slices.ContainsFunc(list, func(r wire.Record) bool { return tcpURL(r) != "" }) {
			t.URLTitle, t.URL = "URL", tcpURL
		}
		wire.WriteSessions(o.Stdout, list, t)
	}
	over := 0
	for _, r := range list {
		if r.State == wire.StateDead || r.State == wire.StateAppExited || r.State == wire.StateEnded {
			over++
		}
	}
	if over > 0 {
		// Ended batch sessions keep their records and logs until pruned: say how.
		say.note(wire.Stepf("%d of these sessions are over; %v removes them (and their logs)", over, wire.Tether("ls", "--prune")))
	}
	noteOthers(say, others)
	return nil
}

// tcpURL is the URL a person opens for a session listening on TCP here (serve
// --listen); empty for others (a Slurm node's address is for the launcher).
func tcpURL(r wire.Record) string {
	if r.JobID != "" {
		return ""
	}
	return r.URL
}

func commandLine(cmd []string) string {
	if len(cmd) == 0 {
		return "(built-in app)"
	}
	return termsafe.Line(strings.Join(cmd, " "))
}

// noteOthers says how many sessions the (shared) state root holds for other hosts.
func noteOthers(say noter, others map[string]int) {
	if len(others) == 0 {
		return
	}
	var hosts []string
	n := 0
	for h, c := range others {
		hosts = append(hosts, h)
		n += c
	}
	sort.Strings(hosts)
	if len(hosts) > 5 {
		hosts = append(hosts[:5], "…")
	}
	plural := "s"
	if n == 1 {
		plural = ""
	}
	// "there": on those hosts, from wherever one reads it.
	say.note(wire.Stepf("%d more session%s on other hosts sharing this state directory (%s): run `tether ls` there",
		n, plural, strings.Join(hosts, ", ")))
}

// noter says notes on w: "tether: …" lines for a person, or with json (--json-notes)
// JSON lines (wire.Note) for a launcher, which words them for the laptop.
type noter struct {
	w    io.Writer
	json bool
}

func (n noter) note(note wire.Note) {
	if n.w != nil {
		printNote(n.w, note, n.json)
	}
}

// resolve finds the session that ref names among this host's sessions: an exact id,
// else a name, else a unique id prefix. Several sessions under one name, or a prefix
// matching several ids, is an error listing them.
func resolve(mine []entry, ref string) (entry, error) {
	for _, e := range mine {
		if e.s.ID == ref {
			return e, nil
		}
	}
	var byName []entry
	for _, e := range mine {
		if e.rec != nil && e.rec.Name != "" && e.rec.Name == ref {
			byName = append(byName, e)
		}
	}
	if len(byName) == 1 {
		return byName[0], nil
	}
	if len(byName) > 1 {
		return entry{}, fmt.Errorf("%q names %d sessions (%s); use an id", ref, len(byName), ids(byName))
	}
	var byPrefix []entry
	if len(ref) >= 3 {
		for _, e := range mine {
			if strings.HasPrefix(e.s.ID, ref) {
				byPrefix = append(byPrefix, e)
			}
		}
	}
	if len(byPrefix) == 1 {
		return byPrefix[0], nil
	}
	if len(byPrefix) > 1 {
		return entry{}, fmt.Errorf("%q matches %d sessions (%s); use more of the id", ref, len(byPrefix), ids(byPrefix))
	}
	return entry{}, &NoSessionError{Ref: ref, Host: hostname()}
}

func ids(es []entry) string {
	var s []string
	for _, e := range es {
		s = append(s, e.s.ID)
	}
	return strings.Join(s, ", ")
}

// Stop ends a session (or all of them): TERM to its server, which stops the app's
// process group and removes its socket; what is left (a dead server's app, the record,
// the logs, the directories) is removed here. It returns once everything is gone.
func Stop(ctx context.Context, o StopOptions) error {
	if o.All == (o.Target != "") {
		return usagef("stop needs a session id or name, or --all")
	}
	_, mine, _, err := localSessions()
	if err != nil {
		return err
	}
	var targets []entry
	if o.All {
		targets = mine
	} else {
		e, err := resolve(mine, o.Target)
		if err != nil {
			return err
		}
		targets = []entry{e}
	}
	var errs []error
	for _, e := range targets {
		if err := stopEntry(ctx, e, noter{o.Stderr, o.JSONNotes}); err != nil {
			errs = append(errs, fmt.Errorf("stopping %s: %w", e.s.ID, err))
			continue
		}
		done := wire.Stopped{ID: e.s.ID}
		if e.rec.isSlurm() {
			done.JobID = e.rec.JobID
		}
		sayStopped(o, done)
	}
	if o.All && len(targets) == 0 && !o.JSON {
		fmt.Fprintf(o.Stdout, "no tether sessions on %s\n", hostname())
	}
	return errors.Join(errs...)
}

// sayStopped tells that a session was stopped: "stopped ID (job N cancelled)" for a
// person, one wire.Stopped line for a launcher (--json), which words it.
func sayStopped(o StopOptions, done wire.Stopped) {
	switch {
	case o.JSON:
		b, _ := json.Marshal(done)
		fmt.Fprintf(o.Stdout, "%s\n", b)
	case done.JobID != "":
		fmt.Fprintf(o.Stdout, "stopped %s (job %s cancelled)\n", done.ID, done.JobID)
	default:
		fmt.Fprintf(o.Stdout, "stopped %s\n", done.ID)
	}
}

// serverStopWait is how long stop waits for a server to end after TERM before it
// kills it: the server's own grace for the app plus its shutdown.
var serverStopWait = 15 * time.Second

// appGrace is how long an app has between TERM and KILL.
var appGrace = 5 * time.Second

// stopEntry ends one session and removes it from disk.
func stopEntry(ctx context.Context, e entry, say noter) error {
	if e.rec.isSlurm() {
		return stopSlurmEntry(ctx, e)
	}
	rec := e.rec
	if rec != nil && (rec.Phase == phaseRunning || rec.Phase == phaseStarting) && processAlive(rec.PID, rec.ServerStart) {
		syscall.Kill(rec.PID, syscall.SIGTERM)
		if !waitGone(ctx, serverStopWait, func() bool { return !processAlive(rec.PID, rec.ServerStart) }) {
			say.note(wire.Stepf("session %s did not stop within %s; killing it", e.s.ID, serverStopWait))
			syscall.Kill(rec.PID, syscall.SIGKILL)
			waitGone(ctx, 5*time.Second, func() bool { return !processAlive(rec.PID, rec.ServerStart) })
		}
	}
	if rec != nil {
		killLeftovers(ctx, rec)
	}
	if err := e.s.remove(); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// killLeftovers ends what is left of the apps whose server is gone: each app's
// process group (the one app's, or every one of a team server's), TERM to all, one
// grace, then KILL; found by group and session id so a reused number never hits an
// unrelated job.
func killLeftovers(ctx context.Context, rec *sessionFile) {
	groups := rec.appGroups()
	if len(groups) == 0 {
		return
	}
	members := func() []int {
		var all []int
		for _, g := range groups {
			if ms := groupMembers(g.PID, g.SID); ms != nil {
				all = append(all, ms...)
			} else if processAlive(g.PID, g.Start) {
				all = append(all, g.PID)
			}
		}
		return all
	}
	signal := func(sig syscall.Signal) bool {
		ms := members()
		for _, pid := range ms {
			syscall.Kill(pid, sig)
		}
		return len(ms) > 0
	}
	if !signal(syscall.SIGTERM) {
		return
	}
	if !waitGone(ctx, appGrace, func() bool { return len(members()) == 0 }) {
		signal(syscall.SIGKILL)
		waitGone(ctx, 2*time.Second, func() bool { return len(members()) == 0 })
	}
}

func waitGone(ctx context.Context, timeout time.Duration, gone func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !gone() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return gone()
		}
		time.Sleep(25 * time.Millisecond)
	}
	return true
}

// Logs prints a session's app output (the capped log in its directory). On a terminal
// only text and colours pass (termsafe): the app's output must not drive the terminal
// of whoever reads it.
func Logs(ctx context.Context, o LogsOptions) error {
	if o.Target == "" {
		return usagef("logs needs a session id or name")
	}
	if f, ok := termsafe.Writer(o.Stdout).(*termsafe.Filter); ok {
		defer f.Flush()
		o.Stdout = f
	}
	_, mine, _, err := localSessions()
	if err != nil {
		return err
	}
	e, err := resolve(mine, o.Target)
	if err != nil {
		return err
	}
	if e.rec.isSlurm() {
		return slurmLogs(ctx, e, o)
	}
	path := e.s.logPath()
	if !o.Follow {
		f, err := copyLog(o.Stdout, path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		return f.Close()
	}
	done := func() bool {
		sf, err := readRecord(e.s.recordPath())
		return err != nil || sessionState(entry{s: e.s, rec: sf}) != phaseRunning && sessionState(entry{s: e.s, rec: sf}) != phaseStarting
	}
	err = followLog(ctx, o.Stdout, path, done)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
