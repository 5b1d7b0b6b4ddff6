package launcher

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/wire"
)

func runLsHost(t *testing.T, f *fakeRemote, o LsOptions) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb syncBuf
	o.SSH, o.Host, o.Version, o.RemoteBinary, o.Stdout, o.Stderr = f.cfg, "fakehost", "test", f.bin, &out, &errb
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = Ls(ctx, o)
	return out.String(), errb.String(), err
}

// ls HOST: a table without tokens, the app by name, the local URL this laptop
// remembers; --show-token shows them; --json keeps every field and adds local_port.
func TestLsHost(t *testing.T) {
	stateHome(t)
	f := newFakeRemote(t)
	f.install()
	a := goodRecord()
	a.App, a.State, a.Command = "jupyter", wire.StateRunning, []string{"jupyter-lab", "--ServerApp.sock={socket}", "--ServerApp.token_file=/x"}
	b := goodRecord()
	b.ID, b.Name, b.State, b.Command = "bcdefghi", "", wire.StateRunning, []string{"python3", "-m", "http.server", "{port}"}
	list, _ := json.Marshal([]wire.Record{a, b})
	f.write("ls.out", "Welcome to the cluster\n"+string(list)+"\n")
	book, err := openPortBook()
	if err != nil {
		t.Fatal(err)
	}
	book.remember("fakehost", a.ID, 41234, time.Now())
	book.remember("otherhost", b.ID, 45678, time.Now())

	out, _, err := runLsHost(t, f, LsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(rows) != 3 {
		t.Fatalf("ls HOST:\n%s\nwant a header and two rows", out)
	}
	for i, want := range []string{"ID NAME APP STATE STARTED LOCAL URL",
		"abcdefgh lab jupyter running",
		"bcdefghi - python3 -m http.server {port} running"} {
		if got := strings.Join(strings.Fields(rows[i]), " "); !strings.HasPrefix(got, want) {
			t.Errorf("row %d: %q; want it to start %q", i, got, want)
		}
	}
	if !strings.HasSuffix(rows[1], " http://127.0.0.1:41234/") || !strings.HasSuffix(rows[2], " -") {
		t.Errorf("local URLs: %q", out)
	}
	if strings.Contains(out, a.Token) || strings.Contains(out, "ServerApp") || strings.Contains(out, "45678") {
		t.Errorf("ls HOST shows a token, the internal command or another host's port:\n%s", out)
	}

	out, _, _ = runLsHost(t, f, LsOptions{ShowToken: true})
	if !strings.Contains(out, "TOKEN") || strings.Count(out, a.Token) != 2 {
		t.Errorf("ls HOST --show-token:\n%s", out)
	}

	out, _, _ = runLsHost(t, f, LsOptions{JSON: true})
	var got []map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil || strings.Count(out, "\n") != 1 || len(got) != 2 {
		t.Fatalf("ls HOST --json: %q: %v", out, err)
	}
	if got[0]["local_port"] != float64(41234) || !eqSecret(fmt.Sprint(got[0]["token"]), a.Token) || got[0]["app"] != "jupyter" || got[0]["socket"] != a.Socket {
		t.Errorf("ls HOST --json's first record: %v", got[0])
	}
	if _, ok := got[1]["local_port"]; ok {
		t.Errorf("a local_port for a session this laptop has no port for: %v", got[1])
	}

	// Sessions that are over: the table says how to prune them, naming the host.
	c := goodRecord()
	c.ID, c.State, c.Exit = "cdefghij", wire.StateAppExited, "exited with status 1"
	list, _ = json.Marshal([]wire.Record{a, c})
	f.write("ls.out", string(list)+"\n")
	out, errOut, _ := runLsHost(t, f, LsOptions{})
	if !strings.Contains(out, "app-exited (exited with status 1)") ||
		errOut != "tether: 1 of these sessions are over; `tether ls fakehost --prune` removes them (and their logs)\n" {
		t.Errorf("ls HOST with an exited session: %q, stderr %q", out, errOut)
	}

	// --prune reaches the remote's ls.
	runLsHost(t, f, LsOptions{Prune: true})
	if c := f.calls(); !strings.Contains(c, "ls --json --json-notes --prune\n") {
		t.Errorf("remote calls: %q; want ls --json --json-notes --prune", c)
	}

	f.write("ls.out", "[]\n")
	if out, _, _ := runLsHost(t, f, LsOptions{}); out != "no tether sessions on fakehost\n" {
		t.Errorf("no sessions: %q", out)
	}
	if out, _, _ := runLsHost(t, f, LsOptions{JSON: true}); out != "[]\n" {
		t.Errorf("no sessions, --json: %q", out)
	}
}
