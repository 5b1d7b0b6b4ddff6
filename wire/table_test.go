package wire

import (
	"strings"
	"testing"
	"time"
)

func TestWriteSessions(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	tok := strings.Repeat("k", 43)
	recs := []Record{
		{ID: "aaaaaaaa", Name: "lab", App: "jupyter", State: StateRunning, Token: tok, Started: now.Add(-3 * time.Hour),
			Command: []string{"jupyter-lab", "--no-browser", "--ServerApp.sock={socket}", "--ServerApp.token_file=x", "--ServerApp.base_url={base_url}"}},
		{ID: "bbbbbbbb", State: StateRunning, Token: tok, Started: now.Add(-5 * time.Minute),
			Command: []string{"python3", "-m", "http.server", "{port}", "--bind", "127.0.0.1", "--directory", "/srv/a/very/long/path"}},
		{ID: "cccccccc", App: "static", Command: []string{"static", "/home/u/site"}, State: StateAppExited, Exit: "exited with status 1"},
		{ID: "dddddddd", Name: "x\x1b]0;pwned\x07y", State: StateDead, Command: []string{"evil\tcol\nrow\x1b[2J"}},
		{ID: "eeeeeeee", State: StatePending, JobID: "42", App: "jupyter",
			Job: &JobStatus{JobID: "42", State: "PENDING", Reason: "Resources", TimeLeft: "1:00:00"}},
	}
	var b strings.Builder
	if err := WriteSessions(&b, recs, TableOptions{Now: now, URLTitle: "LOCAL URL", URL: func(r Record) string {
		if r.ID == "aaaaaaaa" {
			return "http://127.0.0.1:41234/"
		}
		return ""
	}}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 6 {
		t.Fatalf("%d lines; want a header and 5 rows:\n%s", len(lines), out)
	}
	want := []string{
		"ID NAME APP STATE STARTED JOB LOCAL URL",
		"aaaaaaaa lab jupyter running 3h ago - http://127.0.0.1:41234/",
		"bbbbbbbb - python3 -m http.server {port} --bind 12… running 5m ago - -",
		"cccccccc - static /home/u/site app-exited (exited with status 1) - - -",
		"dddddddd xy evil col row dead - - -",
		"eeeeeeee - jupyter pending - job 42 PENDING (Resources), limit 1:00:00 -",
	}
	for i, l := range lines {
		if got := strings.Join(strings.Fields(l), " "); got != want[i] {
			t.Errorf("line %d: %q\nwant %q", i, got, want[i])
		}
	}
	if strings.Contains(out, tok) || strings.Contains(out, "ServerApp") || strings.ContainsAny(out, "\x1b\x07\t") {
		t.Errorf("the table shows a token, the internal command or a control character:\n%q", out)
	}

	b.Reset()
	WriteSessions(&b, recs[:1], TableOptions{Now: now, ShowToken: true})
	if got := strings.Fields(strings.Split(b.String(), "\n")[1]); len(got) != 7 || strings.Count(b.String(), tok) != 1 {
		t.Errorf("with ShowToken: %q", b.String())
	}
}

func TestHumanAge(t *testing.T) {
	for d, want := range map[time.Duration]string{-time.Second: "0s", 42 * time.Second: "42s", 5*time.Minute + 59*time.Second: "5m",
		3 * time.Hour: "3h", 47 * time.Hour: "47h", 50 * time.Hour: "2d"} {
		if got := HumanAge(d); got != want {
			t.Errorf("HumanAge(%v) = %q; want %q", d, got, want)
		}
	}
}
