package launcher

import (
	"strings"
	"testing"
)

// A launch COMMAND without {port}, {socket} or $PORT gets no note of the launcher's
// own (the remote's serve knows whether it can find the app's port, and says what it
// did); serve's note on the port it found stays on the terminal.
func TestLaunchPortHint(t *testing.T) {
	f := newFakeRemote(t)
	f.install()
	fs := startFakeServer(t, false)
	f.write("serve.out", recordLine(t, fs.rec)+"\n")
	found := "note: the app listens on 127.0.0.1:8000; using it; other users of this machine can reach it there without the token (apps that can listen on {socket} are private)"
	f.write("serve.err", "tether: starting python3 -m http.server\ntether: "+found+"\n")
	r := startLaunch(t, f, LaunchOptions{Command: []string{"python3", "-m", "http.server"}})
	waitFor(t, "the ready line", func() bool { return strings.Contains(r.stderr.String(), "ready") })
	e := r.stderr.String()
	if strings.Contains(e, "no {port} or {socket}") {
		t.Errorf("the launcher printed a note of its own:\n%s", e)
	}
	// In the laptop's words: "this machine" is the host as typed.
	if !strings.Contains(e, "tether: fakehost: "+strings.ReplaceAll(found, "this machine", "fakehost")) {
		t.Errorf("stderr lacks serve's note on the port it found:\n%s", e)
	}
}
