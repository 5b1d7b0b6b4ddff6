package launcher

import (
	"fmt"
	"time"

	"github.com/tether-dev/tether/wire"
)

// Same app twice (DESIGN.md): `tether launch HOST APP|-- CMD` attaches to a running
// session of the same app on HOST instead of starting another beside it, and says so
// in one line; --new starts another. The remote decides which session is the same
// (remote/reuse.go: the same preset and arguments or command, working directory, base
// URL, environment, gate options and, for a batch job, scheduler and options; the
// newest running one), in the exec that would otherwise start it, so asking costs
// nothing. A reused session is not this command's: a failure or Ctrl-C never stops
// it, a queued job is never cancelled.
//
// --rm never reuses: it stops its session on exit, which must not be one that was
// running before. Nor does the demo.

// reuses says whether this launch may attach to a session of the same app.
func (s *session) reuses(o LaunchOptions) bool { return !o.New && !o.Rm && !s.demo }

// sayReused tells that rec, the answer to a start, is a session that was running
// already (and marks the launch as not having started it); nothing for a new one.
func (s *session) sayReused(o LaunchOptions, rec wire.Record) {
	if rec.Reused == 0 {
		return
	}
	s.reused = true
	which := "it"
	if rec.Reused > 1 {
		which = fmt.Sprintf("the newest of %d", rec.Reused)
	}
	s.status.line("tether: %s already runs on %s as session %s%s; attaching to %s (--new starts another)",
		appWhat(o), s.host, sessionName(rec.ID, rec.Name), startedAgo(rec.Started), which)
}

// sayReusedJob is sayReused for a batch submit's answer; it reports whether the
// session was there already.
func (s *session) sayReusedJob(o LaunchOptions, sub wire.Submitted) bool {
	if sub.Reused == 0 {
		return false
	}
	s.reused = true
	which := "it"
	if sub.Reused > 1 {
		which = fmt.Sprintf("the running or newest of %d", sub.Reused)
	}
	s.status.line("tether: %s is already submitted on %s with these options, as session %s (job %s); attaching to %s (--new submits another)",
		appWhat(o), s.host, sub.ID, sub.JobID, which)
	return true
}

func sessionName(id, name string) string {
	if name != "" {
		return id + " (" + name + ")"
	}
	return id
}

// startedAgo is ", started 3h ago" (empty for a zero time).
func startedAgo(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return ", started " + wire.HumanAge(time.Since(t)) + " ago"
}
