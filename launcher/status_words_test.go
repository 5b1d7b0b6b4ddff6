package launcher

import (
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/tether-dev/tether/tunnel"
)

// TestStatusStaleUpdate: progress of a step that is over is dropped. Without it, the
// start's last progress line ("the caller went away …") came after "stopping the
// start" and wrote a stale "starting …" over it; and a line once finished (a note
// below it) was reopened by the next update.
func TestStatusStaleUpdate(t *testing.T) {
	var b strings.Builder
	st := &status{w: &b, out: &b, tty: true}
	start := st.step("starting jupyter on gpu")
	st.step("stopping the start on gpu")
	st.updateStep(start, "starting jupyter on gpu: the caller went away")
	st.finish(start, "started jupyter on gpu in 1.0s")
	st.done()
	if got, want := b.String(), "tether: starting jupyter on gpu\ntether: stopping the start on gpu\n"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
	b.Reset()
	st.step("connecting to gpu")
	st.line("tether: a note")
	st.update("connecting to gpu: late")
	if got, want := b.String(), "tether: connecting to gpu\ntether: a note\n"; got != want {
		t.Errorf("after a note: got %q; want %q", got, want)
	}
}

// TestStatusFinish: a step ends with what came of it even when the rate limit dropped
// every update before (install progress froze at "32.8 kB of 12.1 MB").
func TestStatusFinish(t *testing.T) {
	var b strings.Builder
	st := &status{w: &b, out: &b, tty: true}
	seq := st.step("installing tether on gpu (linux/amd64, 12.1 MB)")
	st.updateStep(seq, "installing tether on gpu: 32.8 kB of 12.1 MB")
	st.updateStep(seq, "installing tether on gpu: 6.0 MB of 12.1 MB") // within 100 ms: dropped
	st.finish(seq, "installed tether on gpu: 12.1 MB in 0.1s (121.0 MB/s)")
	st.done()
	screen := b.String()
	if !strings.HasSuffix(screen, "\r\x1b[Ktether: installed tether on gpu: 12.1 MB in 0.1s (121.0 MB/s)\n") {
		t.Errorf("got %q; want it to end with the installed line", screen)
	}
	// Not on a terminal: one plain line per step, nothing more.
	b.Reset()
	st = &status{w: &b, out: &b}
	seq = st.step("installing tether on gpu")
	st.updateStep(seq, "installing: 1 of 2")
	st.finish(seq, "installed")
	if got := b.String(); got != "tether: installing tether on gpu\n" {
		t.Errorf("no terminal: got %q", got)
	}
}

// TestLostAndWarningWords: the lost line names its cause once ("connection to gpu
// lost (EOF)", not "(connection to gpu lost: EOF)"), and tunnel's warnings print with
// one "warning:". (Both were fixed on main before issue 15's list was worked through;
// these keep them so.)
func TestLostAndWarningWords(t *testing.T) {
	var b strings.Builder
	s := &session{host: "gpu", status: &status{w: &b, out: &b}}
	s.tellLost(tunnel.Event{State: tunnel.Lost, Err: fmt.Errorf("tunnel: connection to %s lost: %w", "gpu-alias", io.EOF)})
	if got, want := b.String(), "tether: connection to gpu lost (EOF); reconnecting\n"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
	b.Reset()
	prefixWriter{&b}.Write([]byte("ssh_config line 3: Match exec is not supported\nx\n"))
	if got, want := b.String(), "tether: warning: ssh_config line 3: Match exec is not supported\ntether: warning: x\n"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
}
