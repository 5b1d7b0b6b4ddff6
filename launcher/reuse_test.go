package launcher

import (
	"strings"
	"testing"
	"time"
)

// A launch asks serve to reuse a session of the same app (--reuse), unless --new or
// --rm; a session serve reuses is said so in one line and is not this launch's: a
// failure afterwards does not stop it.
func TestLaunchReusesASessionOfTheSameApp(t *testing.T) {
	f := newFakeRemote(t)
	f.install()
	fs := startFakeServer(t, false)
	rec := fs.rec
	rec.Reused, rec.Started = 2, time.Now().Add(-3*time.Hour)
	f.write("serve.out", recordLine(t, rec)+"\n")
	r := startLaunch(t, f, LaunchOptions{ForwardOptions: ForwardOptions{JSON: true}, App: "jupyter"})
	waitFor(t, "the JSON line", func() bool { return strings.HasSuffix(r.stdout.String(), "\n") })
	if c := f.calls(); !strings.Contains(c, "serve --detach --json --json-notes --cancel-on-eof --reuse --login-shell --app=jupyter") {
		t.Errorf("remote calls: %q", c)
	}
	want := "tether: jupyter already runs on fakehost as session abcdefgh (lab), started 3h ago; attaching to the newest of 2 (--new starts another)\n"
	if e := r.stderr.String(); !strings.Contains(e, want) {
		t.Errorf("stderr:\n%s\nwant the line %q", e, want)
	}
	r.cancel()
	if err := r.wait(t); err != nil {
		t.Fatal(err)
	}

	for _, o := range []LaunchOptions{{New: true}, {ForwardOptions: ForwardOptions{Rm: true}}} {
		f := newFakeRemote(t)
		f.install()
		fs := startFakeServer(t, false)
		f.write("serve.out", recordLine(t, fs.rec)+"\n")
		o.ForwardOptions.JSON = true
		r := startLaunch(t, f, o)
		waitFor(t, "the JSON line", func() bool { return strings.HasSuffix(r.stdout.String(), "\n") })
		if c := f.calls(); strings.Contains(c, "--reuse") || !strings.Contains(c, "serve --detach") {
			t.Errorf("with new=%v rm=%v, remote calls: %q; want no --reuse", o.New, o.Rm, c)
		}
		if strings.Contains(r.stderr.String(), "already runs") {
			t.Errorf("with new=%v rm=%v: %s", o.New, o.Rm, r.stderr.String())
		}
		r.cancel()
		r.wait(t)
	}
}

// A reused session that fails the check is left alone: it was running before this
// launch, which did not start it.
func TestLaunchNeverStopsAReusedSession(t *testing.T) {
	f := newFakeRemote(t)
	f.install()
	fs := startFakeServer(t, true) // an impostor: the check fails
	rec := fs.rec
	rec.Reused = 1
	f.write("serve.out", recordLine(t, rec)+"\n")
	r := startLaunch(t, f, LaunchOptions{ForwardOptions: ForwardOptions{JSON: true}})
	if err := r.wait(t); err == nil || !strings.Contains(err.Error(), "did not prove") {
		t.Fatalf("got %v; want the challenge failure", err)
	}
	if strings.Contains(f.calls(), "stop") {
		t.Errorf("the reused session was stopped: %q", f.calls())
	}
}
