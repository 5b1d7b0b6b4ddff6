package wire

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// laptop words the references as a launcher does for `gpu-box -F cfg`.
var laptop = Wording{
	Machine: func(string) string { return "gpu-box" },
	Command: func(args []string, _ bool) string {
		return strings.Join(append([]string{"tether", args[0], "-F", "cfg", "gpu-box"}, args[1:]...), " ")
	},
}

// One message, two wordings: the remote's own for a person there, the launcher's for
// the laptop, from the same data.
func TestTextBothWordings(t *testing.T) {
	said := Textf("no session %q on %v; run %v to see yours (%d%%)", "x", Machine("gpu7"), Tether("ls"), 5)
	if got, want := said.String(), "no session \"x\" on gpu7; run `tether ls` to see yours (5%)"; got != want {
		t.Errorf("here: %q; want %q", got, want)
	}
	if got, want := said.Say(laptop), "no session \"x\" on gpu-box; run `tether ls -F cfg gpu-box` to see yours (5%)"; got != want {
		t.Errorf("laptop: %q; want %q", got, want)
	}
	apps := Textf("run %v to see which apps %v has", TetherHost("apps"), ThisMachine)
	if got, want := apps.String(), "run `tether apps HOST` to see which apps this machine has"; got != want {
		t.Errorf("here: %q; want %q", got, want)
	}
	// A Text inside a Text keeps its parts; plain parts merge.
	nested := Textf("could not: %v; %s", apps, "sorry")
	if got := nested.Say(laptop); got != "could not: run `tether apps -F cfg gpu-box` to see which apps gpu-box has; sorry" {
		t.Errorf("nested: %q", got)
	}
	// What a hostile remote puts in plain text or a name cannot drive the terminal.
	evil := Text{{Text: "a\x1b]52;c;ZXZpbA==\x07b\nc"}, {Machine: "m\x1b[2J"}, {Tether: []string{"ls\x07"}}}
	if got := evil.String(); strings.ContainsAny(got, "\x1b\x07\n") {
		t.Errorf("control characters kept: %q", got)
	}
}

// DESIGN.md: serve --json prints exactly one JSON line on failure too, with error,
// hint and app_output; the launcher gets the same as data and reads it back.
func TestFailureLine(t *testing.T) {
	f := Fail(FailAppExited, Textf("the app %s (last output: %q)", "exited with status 3", "boom"), Plain("check the command and try again"))
	f.AppOutput, f.Exit = []string{"loading", "boom"}, "exited with status 3"
	line := f.Line()
	if strings.Count(string(line), "\n") != 1 || !strings.HasSuffix(string(line), "\n") {
		t.Fatalf("not one line: %q", line)
	}
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatal(err)
	}
	if m["error"] != `the app exited with status 3 (last output: "boom")` || m["hint"] != "check the command and try again" ||
		!reflect.DeepEqual(m["app_output"], []any{"loading", "boom"}) {
		t.Errorf("contract keys: %v", m)
	}
	// Keys are always there, app_output an array even when empty.
	empty := (&Failure{Said: Plain("x")}).Line()
	if !strings.Contains(string(empty), `"hint":""`) || !strings.Contains(string(empty), `"app_output":[]`) {
		t.Errorf("empty failure: %s", empty)
	}
	got, ok, err := DecodeFailure(line)
	if !ok || err != nil || got.Kind != FailAppExited || got.Exit != f.Exit || !reflect.DeepEqual(got.AppOutput, f.AppOutput) || got.Error() != f.Error() {
		t.Fatalf("decoded %+v, %v, %v", got, ok, err)
	}
	// A record, an event, chatter: not failures.
	for _, l := range []string{`{"id":"abcd2345"}`, `{"event":"job"}`, `hello`, `[1]`} {
		if _, ok, _ := DecodeFailure([]byte(l)); ok {
			t.Errorf("%s: taken for a failure", l)
		}
	}
	// An error of another kind: its text, and a usage error's exit status.
	if f := FailureOf(Usagef("--x is wrong")); f.Kind != FailUsage || f.ExitCode() != 2 {
		t.Errorf("usage: %+v", f)
	}
}

func TestDecodeNote(t *testing.T) {
	n := Warnf("the app listens on %s, where anyone who can reach %v gets to it", "0.0.0.0:8000", ThisMachine)
	if n.String() != "warning: the app listens on 0.0.0.0:8000, where anyone who can reach this machine gets to it" {
		t.Errorf("here: %q", n)
	}
	b, _ := json.Marshal(n)
	got, ok, err := DecodeNote(b)
	if !ok || err != nil || got.Say(laptop) != "warning: the app listens on 0.0.0.0:8000, where anyone who can reach gpu-box gets to it" {
		t.Errorf("decoded %+v %v %v", got, ok, err)
	}
	for _, l := range []string{`hello`, `{"error":"x"}`, `{}`} {
		if _, ok, _ := DecodeNote([]byte(l)); ok {
			t.Errorf("%s: taken for a note", l)
		}
	}
	if _, ok, err := DecodeNote([]byte(`{"level":"shout","said":[{"text":"x"}]}`)); !ok || err == nil {
		t.Error("an unknown level was accepted")
	}
}

// serve's command line: what Args writes, ParseServe reads back, in both spellings.
func TestServeArgsRoundTrip(t *testing.T) {
	s := Serve{Listen: "127.0.0.1:0", Socket: "/s/x.sock", TokenFile: "/t/f", BaseURL: "/lab/", TLS: true,
		AllowHosts: []string{"a.example", "b.example"}, IdleTimeout: time.Hour, Name: "n", JSON: true, JSONNotes: true,
		Detach: true, ReadyTimeout: time.Minute, ReadyFD: 3, CancelOnEOF: true, Reuse: true, BatchSession: "/b/abcd2345",
		SetupStdin: true, SetupFile: "/f", LoginShell: true, App: "jupyter", AppSecretEnv: "S", AppHeaders: []string{"A: b", "C: {app_secret}"},
		AllowExposed: true, NoPortProxy: true, Command: []string{"--not-a-flag", "--", "-x", "it's"}}
	got, err := ParseServe(s.Args())
	if err != nil || !reflect.DeepEqual(got, s) {
		t.Fatalf("got %+v, %v\nwant %+v", got, err, s)
	}
	typed, err := ParseServe([]string{"--name", "n", "--ready-timeout", "90s", "--tls=false", "--login-shell", "jupyter", "lab"})
	if err != nil || typed.Name != "n" || typed.ReadyTimeout != 90*time.Second || typed.TLS || !typed.LoginShell || !reflect.DeepEqual(typed.Command, []string{"jupyter", "lab"}) {
		t.Errorf("typed: %+v, %v", typed, err)
	}
	for _, bad := range [][]string{{"--nope"}, {"--name"}, {"--idle-timeout=soon"}, {"--tls=maybe"}, {"--ready-fd=x"}} {
		if _, err := ParseServe(bad); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}

// Check judges what means the same everywhere, before anything starts: the gate's
// base URL rule (not a looser one), the name, Host names, the listen address.
func TestServeCheck(t *testing.T) {
	if err := (Serve{Name: "lab", BaseURL: "lab", AllowHosts: []string{"box.example"}, Listen: "127.0.0.1:0"}).Check(); err != nil {
		t.Errorf("good: %v", err)
	}
	for name, s := range map[string]Serve{
		"base url plus":     {BaseURL: "/a+b/"},
		"base url dots":     {BaseURL: "/a/../b"},
		"base url query":    {BaseURL: "/a?b"},
		"name space":        {Name: "a b"},
		"name like an id":   {Name: "abcd2345"},
		"allow-host scheme": {AllowHosts: []string{"http://x.example"}},
		"listen every":      {Listen: ":8080"},
		"idle negative":     {IdleTimeout: -time.Second},
		"key without cert":  {TLSKey: "k.pem"},
		"app shape":         {App: "Jupyter Lab"},
		"NUL in command":    {Command: []string{"a\x00b"}},
	} {
		err := s.Check()
		if f := FailureOf(err); err == nil || f.Kind != FailUsage {
			t.Errorf("%s: got %v; want a usage error", name, err)
		}
	}
}
