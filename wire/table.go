package wire

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/tether-dev/tether/batch"
	"github.com/tether-dev/tether/internal/termsafe"
)

// The session table: how `tether ls` (here) and `tether ls HOST` (the launcher, from
// the remote's `ls --json`) show sessions to a person. `ls --json` is for scripts and
// keeps every field, the token included; the table never shows a token unless asked
// (--show-token): ls output ends up in screen shares, terminals' scrollback and pasted
// bug reports. It shows what a person picks a session by (id, name, app, state, age)
// and where to open it, not the app's internal command line (a preset's is long and
// says nothing the preset's name does not).
//
//	ID        NAME  APP               STATE    STARTED  LOCAL URL
//	k3x7m2qa  lab   jupyter           running  3h ago   http://127.0.0.1:41234/
//	p5r2d6vb  -     python3 train.py  running  5m ago   -

// TableOptions say what the table shows besides each session's id, name, app, state
// and age.
type TableOptions struct {
	// URLTitle and URL make the last column (before TOKEN): for ls HOST the local URL
	// this laptop remembers for the session; empty URL entries show as "-". With
	// URLTitle empty there is no such column.
	URLTitle string
	URL      func(Record) string
	// ShowToken adds a TOKEN column (--show-token).
	ShowToken bool
	// Now is the time ages are counted to; zero is time.Now().
	Now time.Time
}

// WriteSessions writes the table of recs to w, in their order. Every field is shown
// through cell: records may come from a remote that is not to be trusted.
func WriteSessions(w io.Writer, recs []Record, o TableOptions) error {
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	jobs := false
	for _, r := range recs {
		jobs = jobs || r.JobID != "" || r.Job != nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := []string{"ID", "NAME", "APP", "STATE", "STARTED"}
	if jobs {
		head = append(head, "JOB")
	}
	if o.URLTitle != "" {
		head = append(head, o.URLTitle)
	}
	if o.ShowToken {
		head = append(head, "TOKEN")
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, r := range recs {
		row := []string{cell(r.ID, 16), orDash(cell(r.Name, 64)), cell(appText(r), 40), cell(stateText(r), 80), "-"}
		if !r.Started.IsZero() {
			row[4] = HumanAge(now.Sub(r.Started)) + " ago"
		}
		if jobs {
			job := "-"
			if r.JobID != "" {
				job = describeJob(r.JobID, r.Job)
			}
			row = append(row, cell(job, 120))
		}
		if o.URLTitle != "" {
			u := ""
			if o.URL != nil {
				u = o.URL(r)
			}
			row = append(row, orDash(cell(u, 200)))
		}
		if o.ShowToken {
			row = append(row, orDash(cell(r.Token, 64)))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// appText is what a session runs, in a person's words: the preset (static's directory
// with it), else the command as given, else the built-in app.
func appText(r Record) string {
	switch {
	case r.App == "static" && len(r.Command) == 2 && r.Command[0] == "static":
		return "static " + r.Command[1]
	case r.App != "":
		return r.App
	case len(r.Command) > 0:
		return strings.Join(r.Command, " ")
	}
	return "builtin"
}

// stateText is the state, with how the app ended when it has.
func stateText(r Record) string {
	if r.Exit != "" && (r.State == StateAppExited || r.State == StateEnded) {
		return r.State + " (" + r.Exit + ")"
	}
	if r.State == "" {
		return StateRunning
	}
	return r.State
}

// describeJob is ls's words for a batch session's job: "job 5 RUNNING on vm, 59:58
// left" or "job 6 PENDING (Resources), limit 1:00:00".
func describeJob(jobID string, j *JobStatus) string {
	if j == nil || j.State == "" {
		return "job " + jobID + " (no longer listed by the scheduler)"
	}
	s := "job " + jobID + " " + j.StateWords()
	if j.Reason != "" && j.Reason != "None" {
		s += " (" + cell(j.Reason, 100) + ")"
	}
	if j.Node != "" && !batch.IsPending(j.State) {
		s += " on " + j.Node
	}
	switch {
	case batch.Ended(j.State) || j.State == "COMPLETING":
	case batch.IsPending(j.State) && j.TimeLeft != "":
		s += ", limit " + j.TimeLeft
	case j.TimeLeft != "":
		s += ", " + j.TimeLeft + " left"
	}
	return s
}

// cell is s as one table cell: no escape sequences or control characters (tabs and
// newlines become spaces), at most max characters (the last one "…" when cut).
func cell(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' {
			return ' '
		}
		return r
	}, termsafe.Strip(s))
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	return string([]rune(s)[:max-1]) + "…"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// HumanAge rounds an age for people: 42s, 5m, 3h, 2d.
func HumanAge(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", max(0, int(d.Seconds())))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
