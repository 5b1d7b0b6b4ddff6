package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"

	"github.com/tether-dev/tether/batch"
	"github.com/tether-dev/tether/internal/termsafe"
)

// Submitted is the line `tether batch submit` prints once the job is queued.
type Submitted struct {
	ID     string `json:"id"`
	JobID  string `json:"job_id"`
	Output string `json:"output"`
	// Reused is set when no job was submitted (batch submit --reuse): the session is
	// one of this many queued or running ones of the same app (the running, else the
	// newest).
	Reused int `json:"reused,omitempty"`
}

// Validate checks a submit's answer from a remote that may be hostile.
func (s *Submitted) Validate() error {
	if !ValidID(s.ID) || !batch.JobIDPattern.MatchString(s.JobID) || s.Reused < 0 || !path.IsAbs(s.Output) || path.Clean(s.Output) != s.Output || termsafe.HasControl(s.Output) || len(s.Output) > 4096 {
		return errors.New("wire: invalid submit answer")
	}
	return nil
}

// EventKind is what a batch Event says.
type EventKind string

const (
	// EventJob: the job's status changed, or a periodic refresh of its time left.
	EventJob EventKind = "job"
	// EventReady: the job's server is ready; Session holds its ready record.
	EventReady EventKind = "ready"
	// EventNote: asking the scheduler went wrong (Said says how); the watch goes on.
	EventNote EventKind = "note"
	// EventEnded: the job is over; the last event.
	EventEnded EventKind = "ended"
)

// Event is one line of `tether batch watch`: the job's state, the ready record once
// the server is up, and how the job ended.
type Event struct {
	Kind    EventKind `json:"event"`
	Job     batch.Job `json:"job"`
	Session *Record   `json:"session,omitempty"`
	// Said is what the note, or the end, has to say.
	Said Text `json:"said,omitempty"`
	// For EventEnded: the last lines of the job's output file (none when it does not
	// exist), its path, the scheduler's exit code (status:signal) when it knows it,
	// and how the session's server ended.
	Output     []string `json:"output,omitempty"`
	OutputPath string   `json:"output_path,omitempty"`
	OutputSeen bool     `json:"output_seen,omitempty"`
	// Removed: the session's directory is gone (tether stop removed it, and its logs).
	Removed  bool   `json:"removed,omitempty"`
	ExitCode string `json:"exit_code,omitempty"`
	// NotVisible: the job's script found no tether on the node (the nodes do not share
	// the home the login node installed it in).
	NotVisible bool `json:"not_visible,omitempty"`
	// Exit is how the job's server recorded its end, in words ("stopped", "the app
	// exited with status 1"); empty when it never did (the job ended before it ran, or
	// it was killed). Why is why it ended, when it did not stop on request: the app
	// exited, the setup failed, the idle timeout; nil when stopped.
	Exit string   `json:"exit,omitempty"`
	Why  *Failure `json:"why,omitempty"`
}

// Validate checks an event read from a remote that may be hostile: a known kind,
// job fields of the shapes batch.Job.Validate allows, short printable texts, and for
// EventReady a valid record of this very job.
func (ev *Event) Validate() error {
	switch ev.Kind {
	case EventJob, EventReady, EventNote, EventEnded:
	default:
		return fmt.Errorf("wire: unknown batch event %q", termsafe.Clip(string(ev.Kind), 64))
	}
	if ev.Job != (batch.Job{}) {
		if err := ev.Job.Validate(); err != nil {
			return fmt.Errorf("wire: batch event: job %v", err)
		}
	}
	if ev.Kind == EventReady {
		if ev.Session == nil {
			return errors.New("wire: batch ready event without a record")
		}
		if err := ev.Session.Validate(); err != nil {
			return err
		}
		if ev.Session.JobID != ev.Job.JobID || ev.Session.State != "" {
			return errors.New("wire: batch ready event: the record is not this job's")
		}
	} else if ev.Session != nil {
		return errors.New("wire: batch event with a record that is not a ready event")
	}
	if len(ev.Output) > 50 {
		return errors.New("wire: batch event: too many output lines")
	}
	for _, t := range append([]string{ev.OutputPath, ev.ExitCode, ev.Exit}, ev.Output...) {
		if len(t) > 4096 || termsafe.HasControl(t) {
			return errors.New("wire: batch event: a text is over 4 KiB or holds control characters")
		}
	}
	if err := ev.Said.validate(); err != nil {
		return fmt.Errorf("wire: batch event: %v", err)
	}
	if ev.Why != nil {
		if err := ev.Why.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// DecodeWatchLine parses one line of `tether batch watch`: an event, or the failure
// that ended the watch (the other nil). A line that is neither (a login shell's
// chatter) gives neither and no error.
func DecodeWatchLine(line []byte) (*Event, *Failure, error) {
	if f, ok, err := DecodeFailure(line); ok {
		return nil, f, err
	}
	var ev Event
	if len(line) > MaxRecordLength || json.Unmarshal(line, &ev) != nil || ev.Kind == "" {
		return nil, nil, nil
	}
	if err := ev.Validate(); err != nil {
		return nil, nil, err
	}
	return &ev, nil, nil
}
