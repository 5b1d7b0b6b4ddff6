package launcher

import (
	"strings"
	"testing"
)

// A launch COMMAND without {port}, {socket} or $PORT gets the note on stderr before
// anything starts; one with {port}, or a preset, does not.
func TestLaunchPortHint(t *testing.T) {
	for _, c := range []struct {
		name string
		o    LaunchOptions
		want bool
	}{
		{"no placeholder", LaunchOptions{Command: []string{"python3", "-m", "http.server"}}, true},
		{"{port}", LaunchOptions{Command: []string{"python3", "-m", "http.server", "{port}"}}, false},
		{"preset", LaunchOptions{App: "jupyter", Command: []string{"--notebook-dir=/x"}}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeRemote(t)
			f.install()
			fs := startFakeServer(t, false)
			f.write("serve.out", recordLine(t, fs.rec)+"\n")
			r := startLaunch(t, f, c.o)
			waitFor(t, "the ready line", func() bool { return strings.Contains(r.stderr.String(), "ready") })
			e := r.stderr.String()
			if got := strings.Contains(e, "tether: note: the command has no {port} or {socket}"); got != c.want {
				t.Errorf("note on stderr: %v; want %v\n%s", got, c.want, e)
			}
			if c.want && strings.Index(e, "no {port}") > strings.Index(e, "ready") {
				t.Errorf("the note came after ready:\n%s", e)
			}
		})
	}
}
