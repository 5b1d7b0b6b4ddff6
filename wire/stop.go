package wire

import (
	"encoding/json"
	"errors"

	"github.com/tether-dev/tether/batch"
)

// Stopped is one line `tether stop --json` prints per session it stopped (and removed);
// it prints nothing else on stdout, so `stop --all --json` with nothing to stop prints
// nothing. The launcher words it ("stopped ID", "… (job N cancelled)", "no tether
// sessions on HOST", the host as the user typed it).
type Stopped struct {
	ID string `json:"stopped"`
	// JobID is the batch job that was cancelled with the session, if it had one.
	JobID string `json:"job_id,omitempty"`
}

// DecodeStopped parses one line of `stop --json` from a remote that may be hostile; a
// line that is not one (a login shell's chatter) is not ok.
func DecodeStopped(line []byte) (s Stopped, ok bool, err error) {
	if len(line) > MaxRecordLength || json.Unmarshal(line, &s) != nil || s.ID == "" {
		return Stopped{}, false, nil
	}
	if !ValidID(s.ID) || s.JobID != "" && !batch.JobIDPattern.MatchString(s.JobID) {
		return Stopped{}, true, errors.New("wire: invalid stop answer")
	}
	return s, true, nil
}
