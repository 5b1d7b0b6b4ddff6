//go:build unix

package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/wire"
)

func TestResolve(t *testing.T) {
	mk := func(id, name string) entry {
		return entry{s: &session{ID: id}, rec: &sessionFile{Record: wire.Record{ID: id, Name: name}}}
	}
	mine := []entry{mk("abcdefgh", "lab"), mk("abcxyz23", "twin"), mk("qrstuvwx", "twin"), mk("mnopqrst", ""), {s: &session{ID: "norecord"}}}
	tests := []struct {
		ref, want, err string
	}{
		{ref: "abcdefgh", want: "abcdefgh"},
		{ref: "lab", want: "abcdefgh"},
		{ref: "norecord", want: "norecord"},
		{ref: "mno", want: "mnopqrst"},
		{ref: "qrs", want: "qrstuvwx"},
		{ref: "twin", err: `"twin" names 2 sessions (abcxyz23, qrstuvwx); use an id`},
		{ref: "abc", err: `"abc" matches 2 sessions`},
		{ref: "ab", err: `no session "ab"`},
		{ref: "nope", err: `no session "nope"`},
		{ref: "", err: `no session ""`},
	}
	for _, tt := range tests {
		got, err := resolve(mine, tt.ref)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("for %q, got %v; want an error saying %q", tt.ref, err, tt.err)
		case tt.err == "" && (err != nil || got.s.ID != tt.want):
			t.Errorf("for %q, got %v, %v; want %s", tt.ref, got.s, err, tt.want)
		}
	}
}

func runLs(t *testing.T, o LsOptions) (stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	o.Stdout, o.Stderr = &out, &errb
	if err := Ls(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String()
}

func TestLsStatesOtherHostsAndPrune(t *testing.T) {
	root := tempRoot(t)
	server := startProc(t, "sleep", "60")
	serverID, _ := processIdentity(server.Process.Pid)
	running, _ := fakeSession(t, root, func(sf *sessionFile) {
		sf.Name, sf.PID, sf.ServerStart, sf.URL = "lab", server.Process.Pid, serverID, "http://127.0.0.1:4242/"
	})
	dead, _ := fakeSession(t, root, func(sf *sessionFile) { sf.PID = deadPID(t) })
	exited, _ := fakeSession(t, root, func(sf *sessionFile) { sf.Phase, sf.Exit = phaseAppExited, "exited with status 1" })
	starting, _ := fakeSession(t, root, func(sf *sessionFile) { sf.Phase = phaseStarting })
	elsewhere, _ := fakeSession(t, root, func(sf *sessionFile) { sf.Host = "node17.cluster" })
	// The exited app's output: ls --json gives its last lines, cleaned.
	appOut := "first\n" + strings.Repeat("noise\n", 30) + "second to last\nbye \x1b]0;title\x07now\n"
	if err := os.WriteFile(exited.logPath(), []byte(appOut), 0o600); err != nil {
		t.Fatal(err)
	}

	out, errOut := runLs(t, LsOptions{JSON: true})
	var list []wire.Record
	if err := json.Unmarshal([]byte(out), &list); err != nil || strings.Count(out, "\n") != 1 {
		t.Fatalf("ls --json printed %q: %v", out, err)
	}
	got := map[string]string{}
	for _, r := range list {
		got[r.ID] = r.State
		if err := r.Validate(); err != nil {
			t.Errorf("ls --json record %s does not validate: %v", r.ID, err)
		}
		switch {
		case r.ID == exited.ID:
			tail := r.AppOutput
			if r.Exit != "exited with status 1" || len(tail) != 10 || tail[8] != "second to last" || tail[9] != "bye now" {
				t.Errorf("ls --json of the exited app: exit %q, app_output %q", r.Exit, tail)
			}
		case r.Exit != "" || r.AppOutput != nil:
			t.Errorf("ls --json of %s (%s): exit %q, app_output %q; want neither", r.ID, r.State, r.Exit, r.AppOutput)
		}
	}
	want := map[string]string{running.ID: wire.StateRunning, dead.ID: wire.StateDead, exited.ID: wire.StateAppExited, starting.ID: wire.StateStarting}
	if len(got) != len(want) {
		t.Errorf("ls --json listed %v; want %v (none of another host)", got, want)
	}
	for id, st := range want {
		if got[id] != st {
			t.Errorf("session %s: state %q; want %q", id, got[id], st)
		}
	}
	if !strings.Contains(errOut, "1 more session on other hosts") || !strings.Contains(errOut, "node17.cluster") {
		t.Errorf("ls did not mention the other host's session: %q", errOut)
	}

	// The table: one row each, the TCP URL without its token; the token only with
	// --show-token.
	out, _ = runLs(t, LsOptions{})
	rows := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			rows[f[0]] = strings.Join(f, " ")
		}
	}
	for id, want := range map[string]string{"ID": "ID NAME APP STATE STARTED URL", running.ID: running.ID + " lab app running 0s ago http://127.0.0.1:4242/",
		starting.ID: starting.ID + " - app starting", dead.ID: dead.ID + " - app dead", exited.ID: exited.ID + " - app app-exited (exited with status 1)"} {
		if !strings.HasPrefix(rows[id], want) {
			t.Errorf("ls row of %s: %q; want it to start %q; all:\n%s", id, rows[id], want, out)
		}
	}
	if len(rows) != 5 || strings.Contains(out, strings.Repeat("t", 43)) {
		t.Errorf("ls output: want a header and 4 rows, no token:\n%s", out)
	}
	out, _ = runLs(t, LsOptions{ShowToken: true})
	if !strings.Contains(out, "TOKEN") || !strings.Contains(out, "http://127.0.0.1:4242/  "+strings.Repeat("t", 43)) {
		t.Errorf("ls --show-token:\n%s", out)
	}

	_, errOut = runLs(t, LsOptions{Prune: true})
	for _, s := range []*session{dead, exited} {
		if _, err := os.Stat(s.Dir); !os.IsNotExist(err) {
			t.Errorf("prune left %s: %v", s.ID, err)
		}
		if !strings.Contains(errOut, "pruned "+s.ID) {
			t.Errorf("prune did not report %s: %q", s.ID, errOut)
		}
	}
	for _, s := range []*session{running, starting, elsewhere} {
		if _, err := os.Stat(s.Dir); err != nil {
			t.Errorf("prune removed %s: %v", s.ID, err)
		}
	}
	if !processAlive(server.Process.Pid, serverID) {
		t.Error("prune touched a running server")
	}
}

func TestLsEmpty(t *testing.T) {
	tempRoot(t)
	if out, _ := runLs(t, LsOptions{JSON: true}); out != "[]\n" {
		t.Fatalf("got %q; want []", out)
	}
	os.Setenv("TETHER_STATE_DIR", t.TempDir()+"/missing")
	if out, _ := runLs(t, LsOptions{}); !strings.Contains(out, "no tether sessions") {
		t.Fatalf("got %q", out)
	}
}

func TestStopUsageAndErrors(t *testing.T) {
	tempRoot(t)
	var out, errb bytes.Buffer
	err := Stop(context.Background(), StopOptions{Stdout: &out, Stderr: &errb})
	var ue *UsageError
	if err == nil || !asUsage(err, &ue) || ue.ExitCode() != 2 {
		t.Errorf("stop without target: %v; want a usage error", err)
	}
	if err := Stop(context.Background(), StopOptions{Target: "x", All: true, Stdout: &out, Stderr: &errb}); !asUsage(err, &ue) {
		t.Errorf("stop with target and --all: %v; want a usage error", err)
	}
	if err := Stop(context.Background(), StopOptions{Target: "nosuch", Stdout: &out, Stderr: &errb}); err == nil || !strings.Contains(err.Error(), "tether ls") {
		t.Errorf("stop of an unknown session: %v", err)
	}
	if err := Stop(context.Background(), StopOptions{All: true, Stdout: &out, Stderr: &errb}); err != nil {
		t.Errorf("stop --all with nothing: %v", err)
	}
}

// stop --json says what it stopped as data, one wire.Stopped line per session, and
// nothing else on stdout: not "no tether sessions on HOST" in the remote's own name
// for itself (the launcher words that with the host as the user typed it).
func TestStopJSON(t *testing.T) {
	root := tempRoot(t)
	s, _ := fakeSession(t, root, func(sf *sessionFile) { sf.PID, sf.Phase = deadPID(t), phaseAppExited })
	var out, errb bytes.Buffer
	if err := Stop(context.Background(), StopOptions{All: true, JSON: true, Stdout: &out, Stderr: &errb}); err != nil {
		t.Fatalf("stop --all --json: %v\n%s", err, errb.String())
	}
	if want := `{"stopped":"` + s.ID + `"}` + "\n"; out.String() != want {
		t.Errorf("stop --all --json printed %q; want %q", out.String(), want)
	}
	if d, ok, err := wire.DecodeStopped(bytes.TrimSpace(out.Bytes())); !ok || err != nil || d.ID != s.ID {
		t.Errorf("its line decodes to %+v %v %v", d, ok, err)
	}
	out.Reset()
	if err := Stop(context.Background(), StopOptions{All: true, JSON: true, Stdout: &out, Stderr: &errb}); err != nil || out.Len() != 0 {
		t.Errorf("stop --all --json with nothing: %v %q; want nothing", err, out.String())
	}
}

func asUsage(err error, ue **UsageError) bool {
	u, ok := err.(*UsageError)
	*ue = u
	return ok
}

func TestLogs(t *testing.T) {
	root := tempRoot(t)
	s, _ := fakeSession(t, root, func(sf *sessionFile) { sf.Name = "web" })
	l, err := openCappedLog(s.logPath(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	l.Write([]byte("Serving HTTP on 127.0.0.1\n"))
	var out bytes.Buffer
	if err := Logs(context.Background(), LogsOptions{Target: "web", Stdout: &out, Stderr: &out}); err != nil {
		t.Fatal(err)
	}
	if out.String() != "Serving HTTP on 127.0.0.1\n" {
		t.Fatalf("logs printed %q", out.String())
	}
	// -f follows until the session's server is gone (here: the record says it
	// exited).
	var fout syncBuffer
	done := make(chan error)
	go func() {
		done <- Logs(context.Background(), LogsOptions{Target: s.ID, Follow: true, Stdout: &fout, Stderr: &fout})
	}()
	l.Write([]byte("GET / 200\n"))
	waitUntil(t, 5*time.Second, "the followed line", func() bool { return strings.Contains(fout.String(), "GET / 200") })
	sf, _ := readRecord(s.recordPath())
	sf.Phase = phaseAppExited
	writeRecord(s, sf)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("logs -f did not end with the session")
	}
	l.Close()
}
