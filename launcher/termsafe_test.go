package launcher

import (
	"bytes"
	"testing"
)

func TestOneLineStripsSequences(t *testing.T) {
	// oneLine leaves nothing of a sequence behind (it used to drop only the ESC).
	if got := oneLine("error: \x1b]52;c;ZXZpbA==\x07bad\x1b[2J thing\r\n"); got != "error: bad thing" {
		t.Errorf("oneLine: got %q", got)
	}
}

// status lines drop control sequences carried in their arguments.
func TestStatusLineStripsControls(t *testing.T) {
	var b bytes.Buffer
	s := newStatus(&b)
	s.line("tether: could not stop session %s (%v)", "abc", "\x1b]52;c;ZXZpbA==\x07denied\x1b[2J")
	if got := b.String(); got != "tether: could not stop session abc (denied)\n" {
		t.Errorf("got %q", got)
	}
}
