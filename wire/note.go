package wire

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Level says how a Note is shown: a step updates the launcher's status line, a note
// or a warning stays on the screen.
type Level string

const (
	LevelStep    Level = "step"
	LevelNote    Level = "note"
	LevelWarning Level = "warning"
)

// Note is one line of progress or advice a remote command says while it works
// (serve's "starting …", "waiting for …", a warning that the app listens beyond
// loopback): on a terminal "tether: [note: |warning: ]TEXT", and with --json-notes one
// JSON line on stderr for the launcher, which words it for the laptop.
type Note struct {
	Level Level `json:"level"`
	Said  Text  `json:"said"`
}

// Stepf, Notef and Warnf make Notes of each level (formatted as Textf).
func Stepf(format string, args ...any) Note {
	return Note{Level: LevelStep, Said: Textf(format, args...)}
}
func Notef(format string, args ...any) Note {
	return Note{Level: LevelNote, Said: Textf(format, args...)}
}
func Warnf(format string, args ...any) Note {
	return Note{Level: LevelWarning, Said: Textf(format, args...)}
}

// Say is the note as a line of its own in w's words, without "tether: ": "warning:
// the app listens on …".
func (n Note) Say(w Wording) string {
	switch n.Level {
	case LevelNote, LevelWarning:
		return string(n.Level) + ": " + n.Said.Say(w)
	}
	return n.Said.Say(w)
}

// String is the note in the remote's own words.
func (n Note) String() string { return n.Say(Here) }

// DecodeNote parses one note line from a remote that may be hostile; a line that is not
// a note (a login shell's chatter) is not ok.
func DecodeNote(line []byte) (n Note, ok bool, err error) {
	if len(line) > MaxRecordLength || json.Unmarshal(line, &n) != nil {
		return Note{}, false, nil
	}
	switch n.Level {
	case LevelStep, LevelNote, LevelWarning:
	case "":
		return Note{}, false, nil
	default:
		return Note{}, true, fmt.Errorf("wire: unknown note level %q", n.Level)
	}
	if err := n.Said.validate(); err != nil {
		return Note{}, true, fmt.Errorf("wire: invalid note: %v", err)
	}
	if len(n.Said) == 0 {
		return Note{}, true, errors.New("wire: an empty note")
	}
	return n, true, nil
}
