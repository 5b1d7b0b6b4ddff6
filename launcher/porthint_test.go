package launcher

import (
	"strings"
	"testing"

	"github.com/tether-dev/tether/wire"
)

// A launch COMMAND without {port}, {socket} or $PORT: serve says so in a note (it
// knows the command it runs), which stays on the launcher's terminal in the laptop's
// words; the launcher adds no note of its own.
func TestLaunchPortHint(t *testing.T) {
	f := newFakeRemote(t)
	f.install()
	fs := startFakeServer(t, false)
	f.write("serve.out", recordLine(t, fs.rec)+"\n")
	f.write("serve.err", noteLine(t, wire.Notef("the command has no {port} or {socket}: the app must listen on 127.0.0.1:$PORT (tether sets PORT) or on {socket}"))+
		noteLine(t, wire.Notef("the app listens on 127.0.0.1:8000; using it; other users of %v can reach it there without the token (apps that can listen on {socket} are private)", wire.ThisMachine)))
	r := startLaunch(t, f, LaunchOptions{Command: []string{"python3", "-m", "http.server"}})
	waitFor(t, "the ready line", func() bool { return strings.Contains(r.stderr.String(), "ready") })
	e := r.stderr.String()
	if n := strings.Count(e, "no {port} or {socket}"); n != 1 || !strings.Contains(e, "tether: fakehost: note: the command has no {port} or {socket}") {
		t.Errorf("stderr has serve's note %d times; want once, on its host:\n%s", n, e)
	}
	// serve's note on the port it found, in the laptop's words: the host as typed.
	if !strings.Contains(e, "tether: fakehost: note: the app listens on 127.0.0.1:8000; using it; other users of fakehost can reach it there without the token") {
		t.Errorf("stderr lacks serve's note on the port it found:\n%s", e)
	}
	if strings.Index(e, "no {port}") > strings.Index(e, "ready") {
		t.Errorf("the note came after ready:\n%s", e)
	}
}
