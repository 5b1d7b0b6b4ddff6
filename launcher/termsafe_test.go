package launcher

import (
	"bytes"
	"testing"
)

// status lines drop control sequences carried in their arguments.
func TestStatusLineStripsControls(t *testing.T) {
	var b bytes.Buffer
	s := newStatus(&b)
	s.line("tether: could not stop session %s (%v)", "abc", "\x1b]52;c;ZXZpbA==\x07denied\x1b[2J")
	if got := b.String(); got != "tether: could not stop session abc (denied)\n" {
		t.Errorf("got %q", got)
	}
}
