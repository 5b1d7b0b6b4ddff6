package main

import (
	"bytes"
	"context"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"
	"github.com/tether-dev/tether/wire"
)

// TestServeFlagsParse: the contract's serve flags, in the shape the detached server
// is re-executed with (remote's childArgs), parse into the command's fields, and the
// app's own flags after -- are left alone.
func TestServeFlagsParse(t *testing.T) {
	var cli CLI
	p, err := kong.New(&cli, kong.Vars{"version": "test"})
	if err != nil {
		t.Fatal(err)
	}
	args := strings.Split("serve|--ready-fd=3|--listen=127.0.0.1:0|--socket=/s/x.sock|--token-file=/t/f|--base-url=/lab/|--tls|"+
		"--allow-host=a.example|--allow-host=b,c|--idle-timeout=1h0m0s|--name=n|--ready-timeout=1m0s|--json|--detach|--allow-exposed|"+
		"--|jupyter|lab|--port={port}|--|x y", "|")
	if _, err := p.Parse(args); err != nil {
		t.Fatal(err)
	}
	want := ServeCmd{Listen: "127.0.0.1:0", Socket: "/s/x.sock", TokenFile: "/t/f", BaseURL: "/lab/", TLS: true,
		AllowHost: []string{"a.example", "b,c"}, IdleTimeout: time.Hour, Name: "n", JSON: true, Detach: true,
		ReadyTimeout: time.Minute, ReadyFD: 3, exposeFlags: exposeFlags{AllowExposed: true},
		Command: []string{"jupyter", "lab", "--port={port}", "--", "x y"}}
	if !reflect.DeepEqual(cli.Serve, want) {
		t.Errorf("got  %+v\nwant %+v", cli.Serve, want)
	}
	cli = CLI{}
	if _, err := p.Parse([]string{"serve"}); err != nil {
		t.Fatal(err)
	}
	if cli.Serve.BaseURL != "/" || cli.Serve.ReadyTimeout != 5*time.Minute || len(cli.Serve.Command) != 0 {
		t.Errorf("defaults: %+v", cli.Serve)
	}
}

// TestServeGrammar: the one grammar of serve's command line (wire.Serve, which the
// launcher, a detaching serve and batch submit write and batch submit reads) is the one
// kong reads here: every field set, written by Args, comes back through kong the same.
func TestServeGrammar(t *testing.T) {
	full := wire.Serve{Listen: "127.0.0.1:0", Socket: "/s/x.sock", TokenFile: "/t/f", BaseURL: "/lab/", TLS: true, TLSCert: "/c.pem", TLSKey: "/k.pem",
		AllowHosts: []string{"a.example", "b,c"}, IdleTimeout: time.Hour, Name: "n", JSON: true, JSONNotes: true,
		Detach: true, ReadyTimeout: time.Minute, ReadyFD: 3, CancelOnEOF: true, Reuse: true, BatchSession: "/b/abcd2345",
		SetupStdin: true, SetupFile: "/f", LoginShell: true, App: "jupyter", Apps: []string{"nb=jupyter", "cmd=python3 -m http.server {port}"},
		Access: "/team.yml", AppSecretEnv: "S",
		AppHeaders: []string{"A: b", "C: {app_secret}"}, AllowExposed: true, NoPortProxy: true,
		Command: []string{"--port={port}", "--", "x y", "-z"}}
	// Every field of wire.Serve is set above (a new one must be added to both kong's
	// ServeCmd and this test).
	v := reflect.ValueOf(full)
	for i := 0; i < v.NumField(); i++ {
		if v.Field(i).IsZero() {
			t.Errorf("wire.Serve.%s is not set in the test", v.Type().Field(i).Name)
		}
	}
	for _, s := range []wire.Serve{full, {}, {Name: "only", Command: []string{"app"}}} {
		var cli CLI
		p, err := kong.New(&cli, kong.Vars{"version": "test"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Parse(append([]string{"serve"}, s.Args()...)); err != nil {
			t.Fatalf("kong refused %q: %v", s.Args(), err)
		}
		got, err := cli.Serve.wire()
		if err != nil {
			t.Fatalf("wire of %q: %v", s.Args(), err)
		}
		// kong's defaults: the base URL "/" and the ready timeout.
		if s.BaseURL == "" {
			s.BaseURL = "/"
		}
		if s.ReadyTimeout == 0 {
			s.ReadyTimeout = 5 * time.Minute
		}
		if s.Command == nil {
			s.Command = []string{}
		}
		if got.Command == nil {
			got.Command = []string{}
		}
		if !reflect.DeepEqual(got, s) {
			t.Errorf("through kong:\n got %+v\nwant %+v", got, s)
		}
	}
}

// serve --json prints exactly one JSON line on stdout when it fails too (DESIGN.md:
// error, hint, app_output), besides the line on stderr; exit status 2 for a usage
// error. --json-notes puts it on stderr instead of the "tether: …" line.
func TestServeJSONFailure(t *testing.T) {
	t.Setenv("TETHER_STATE_DIR", t.TempDir())
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"serve", "--json", "--base-url", "/a+b/", "--", "true"}, &out, &errb)
	if code != 2 || strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("exit %d, stdout %q; want 2 and one line", code, out.String())
	}
	f, ok, err := wire.DecodeFailure(out.Bytes())
	if !ok || err != nil || f.Kind != wire.FailUsage || !strings.Contains(f.Msg, `--base-url "/a+b/"`) {
		t.Errorf("stdout %q: %+v %v %v", out.String(), f, ok, err)
	}
	if !strings.HasPrefix(errb.String(), "tether: --base-url") {
		t.Errorf("stderr %q; want the line for a person", errb.String())
	}
	out.Reset()
	errb.Reset()
	code = run(context.Background(), []string{"stop", "--json-notes", "--", "nosuch"}, &out, &errb)
	f, ok, err = wire.DecodeFailure(errb.Bytes())
	if code != 1 || out.Len() != 0 || !ok || err != nil || f.Kind != wire.FailNoSession || strings.Contains(errb.String(), "tether: ") {
		t.Errorf("stop --json-notes: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}

// TestRemoteCommandForms: the HOST forms of ls, stop and logs go to the launcher (here
// a host that does not resolve: one line, exit 1); malformed forms are usage errors.
func TestRemoteCommandForms(t *testing.T) {
	t.Setenv("TETHER_STATE_DIR", t.TempDir())
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"ls", "-F", "none", "no-such-host.invalid"}, 1, "cannot reach no-such-host.invalid"},
		{[]string{"stop", "-F", "none", "no-such-host.invalid", "abcdefgh"}, 1, "cannot reach"},
		{[]string{"stop", "-F", "none", "no-such-host.invalid", "--all"}, 1, "cannot reach"},
		{[]string{"logs", "-F", "none", "no-such-host.invalid", "abcdefgh"}, 1, "cannot reach"},
		{[]string{"ls", "--prune", "-F", "none", "no-such-host.invalid"}, 1, "cannot reach no-such-host.invalid"},
		{[]string{"launch", "gpu-box", "--slurm", "-p gpu", "--sge", "-q all.q"}, 2, "--slurm and --sge each pick a scheduler; give one"},
		{[]string{"launch", "gpu-box", "--batch", ""}, 2, "--batch needs the scheduler's name first"},
		{[]string{"launch", "gpu-box", "--batch", "My Site -q x"}, 2, "is not a scheduler name"},
		{[]string{"launch", "gpu-box", "--sge", "-o /tmp/x"}, 2, "--sge option -o is tether's own"},
		{[]string{"launch", "gpu-box", "--pbs", "-W block=true"}, 2, "block=true makes qsub wait"},
		{[]string{"launch", "gpu-box", "--lsf", "-K"}, 2, "--lsf option -K is tether's own"},
		{[]string{"launch", "gpu-box", "--via-node-ssh"}, 2, "go with a batch job"},
		{[]string{"ls", "--ssh", "putty", "-F", "none", "gpu-box"}, 2, "--ssh putty: choose native, openssh or auto"},
		{[]string{"stop", "--ssh=bogus", "gpu-box", "abcdefgh"}, 2, "--ssh bogus: choose native, openssh or auto"},
		{[]string{"logs", "--ssh", "x", "gpu-box", "abcdefgh"}, 2, "choose native, openssh or auto"},
		{[]string{"apps", "--ssh", "x", "gpu-box"}, 2, "choose native, openssh or auto"},
		{[]string{"launch", "--ssh", "x", "-F", "none", "gpu-box", "--no-browser"}, 2, "choose native, openssh or auto"},
		{[]string{"attach", "--ssh", "x", "-F", "none", "gpu-box", "--no-browser"}, 2, "choose native, openssh or auto"},
		{[]string{"launch", "-F", "none", "-oProxyCommand=x"}, 2, ""},
		{[]string{"launch", "-F", "none", "no-such-host.invalid", "--open-file", "--no-browser"}, 2, "contradict"},
		{[]string{"launch", "-F", "none", "gpu-box", "--setup", "module load x", "--no-browser"}, 2, "--setup prepares the app's environment, but tether's built-in page runs no app"},
		{[]string{"launch", "-F", "none", "gpu-box", "--setup", "module load x", "static", "--no-browser"}, 2, "the static preset runs no app"},
		{[]string{"launch", "-F", "none", "gpu-box", "--setup", "  \n", "jupyter"}, 2, "--setup is empty"},
		{[]string{"launch", "-F", "none", "gpu-box", "--setup", "a\x00b", "jupyter"}, 2, "NUL"},
		{[]string{"stop"}, 2, "session id or name, or --all"},
		{[]string{"stop", "a", "b", "c"}, 2, "stop takes"},
		{[]string{"logs"}, 2, ""},
		{[]string{"stop", "nosuch"}, 1, "no session \"nosuch\""},
		{[]string{"ls"}, 0, ""},
		{[]string{"stop", "--all"}, 0, ""},
	}
	for _, tt := range tests {
		var out, errb bytes.Buffer
		code := run(context.Background(), tt.args, &out, &errb)
		if code != tt.code || !strings.Contains(errb.String(), tt.want) {
			t.Errorf("for %q, got %d %q; want %d and %q", tt.args, code, errb.String(), tt.code, tt.want)
		}
		if code == 1 && strings.Count(errb.String(), "\n") != 1 {
			t.Errorf("for %q, the error is not one line: %q", tt.args, errb.String())
		}
	}
}

// TestForwardForms: `forward HOST [ID] PORT` takes PORT as plain digits, 1-65535;
// anything else is a usage error naming it, before any connection.
func TestForwardForms(t *testing.T) {
	t.Setenv("TETHER_STATE_DIR", t.TempDir())
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"forward", "-F", "none", "no-such-host.invalid", "5432"}, 1, "cannot reach no-such-host.invalid"},
		{[]string{"forward", "-F", "none", "no-such-host.invalid", "abcdefgh", "5432"}, 1, "cannot reach no-such-host.invalid"},
		{[]string{"forward", "-F", "none", "gpu-box", "+80"}, 2, `"+80" is not a port number`},
		{[]string{"forward", "-F", "none", "gpu-box", "080"}, 2, `"080" is not a port number`},
		{[]string{"forward", "-F", "none", "gpu-box", "0"}, 2, `"0" is not a port number`},
		{[]string{"forward", "-F", "none", "gpu-box", "65536"}, 2, `"65536" is not a port number`},
		{[]string{"forward", "-F", "none", "gpu-box", "ID", " 80"}, 2, `" 80" is not a port number`},
		{[]string{"forward", "-F", "none", "gpu-box", "0x50"}, 2, `"0x50" is not a port number`},
		{[]string{"forward", "-F", "none", "gpu-box", "a", "b", "80"}, 2, "forward takes HOST"},
	}
	for _, tt := range tests {
		var out, errb bytes.Buffer
		code := run(context.Background(), tt.args, &out, &errb)
		if code != tt.code || !strings.Contains(errb.String(), tt.want) || code == 2 && strings.Count(errb.String(), "\n") != 1 {
			t.Errorf("for %q, got %d %q; want %d and %q", tt.args, code, errb.String(), tt.code, tt.want)
		}
	}
}

// TestLaunchAppForms: `launch HOST APP [-- EXTRA]` picks the preset only when its name
// comes before any --; after -- every word is literal (how to run a command that is
// named like a preset); a first word that names no preset is a command, as before.
func TestLaunchAppForms(t *testing.T) {
	tests := []struct {
		args    []string
		app     string
		command []string
	}{
		{[]string{"launch", "h"}, "", nil},
		{[]string{"launch", "h", "jupyter"}, "jupyter", []string{}},
		{[]string{"launch", "h", "jupyter", "--no-browser"}, "jupyter", []string{}},
		{[]string{"launch", "h", "jupyter", "--", "--notebook-dir=/data"}, "jupyter", []string{"--notebook-dir=/data"}},
		{[]string{"launch", "h", "static", "/srv/www"}, "static", []string{"/srv/www"}},
		{[]string{"launch", "--json", "h", "shiny", "--", "my app"}, "shiny", []string{"my app"}},
		{[]string{"launch", "h", "--", "jupyter", "lab", "--port={port}"}, "", []string{"jupyter", "lab", "--port={port}"}},
		{[]string{"launch", "h", "--", "static"}, "", []string{"static"}},
		{[]string{"launch", "h", "htop"}, "", []string{"htop"}},
		{[]string{"launch", "h", "--", "python3", "-m", "http.server", "{port}"}, "", []string{"python3", "-m", "http.server", "{port}"}},
	}
	for _, tt := range tests {
		var cli CLI
		p, err := kong.New(&cli, kong.Vars{"version": "test"})
		if err != nil {
			t.Fatal(err)
		}
		kctx, err := p.Parse(tt.args)
		if err != nil {
			t.Fatalf("%q: %v", tt.args, err)
		}
		app, command := splitApp(kctx.Args, cli.Launch.positionals())
		if app != tt.app || strings.Join(command, "|") != strings.Join(tt.command, "|") {
			t.Errorf("for %q, got app %q command %q; want %q %q", tt.args, app, command, tt.app, tt.command)
		}
	}
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"launch", "-F", "none", "h", "jupyter", "--app-header", "X: {app_secret}"}, &out, &errb)
	if code != 2 || !strings.Contains(errb.String(), "guards its app itself") {
		t.Errorf("a preset with --app-header: exit %d, %q", code, errb.String())
	}
}

// TestAppsList: `tether apps` lists every preset, and --json says how each is guarded.
func TestAppsList(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"apps"}, &out, &errb); code != 0 {
		t.Fatalf("apps: exit %d: %s", code, errb.String())
	}
	for _, name := range []string{"jupyter", "notebook", "code-server", "shiny", "rstudio", "tensorboard", "streamlit", "marimo", "static", "builtin"} {
		if !strings.Contains(out.String(), "\n"+name+" ") {
			t.Errorf("apps lacks %s:\n%s", name, out.String())
		}
	}
	out.Reset()
	if code := run(context.Background(), []string{"apps", "--json"}, &out, &errb); code != 0 || !strings.Contains(out.String(), `"door":`) || !strings.Contains(out.String(), `"verified":`) {
		t.Errorf("apps --json: exit %d: %.300s", code, out.String())
	}
}

func TestProcsFor(t *testing.T) {
	for _, c := range []struct {
		args    []string
		current int
		env     string
		want    int
	}{
		{[]string{"launch", "gpu-box"}, 8, "", 4},
		{[]string{"serve", "--", "app"}, 2, "", 1},
		{[]string{"attach", "h"}, 1, "", 1},
		{[]string{"demo"}, 3, "", 1},
		{[]string{"launch", "h"}, 8, "6", 0}, // the user's GOMAXPROCS wins
		{[]string{"ls"}, 8, "", 0},
		{[]string{"forward", "h", "5432"}, 8, "", 0},
	} {
		if got := procsFor(policyFor(t, c.args), c.current, c.env); got != c.want {
			t.Errorf("procsFor(policy of %q, %d, %q) = %d; want %d", c.args, c.current, c.env, got, c.want)
		}
	}
}

// policyFor parses args as run does (the command kong selects, not a name's string)
// and returns its runtime policy.
func policyFor(t *testing.T, args []string) runtimePolicy {
	t.Helper()
	var got *runtimePolicy
	applyPolicy = func(p runtimePolicy) { got = &p }
	defer func() { applyPolicy = func(runtimePolicy) {} }()
	// The command then fails (no such host, no app): only the policy matters here.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	run(ctx, append([]string{args[0], "--no-such-flag-so-nothing-runs"}, args[1:]...), io.Discard, io.Discard)
	if got != nil {
		t.Fatalf("%q: the policy was applied for a command line that does not parse", args)
	}
	applyPolicy = func(p runtimePolicy) { got = &p; panic(policyApplied{}) }
	func() {
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(policyApplied); !ok {
					panic(r)
				}
			}
		}()
		run(ctx, args, io.Discard, io.Discard)
	}()
	if got == nil {
		t.Fatalf("%q: no policy applied before the command ran", args)
	}
	return *got
}

type policyApplied struct{}

// The GC target is set only for the laptop side of a forward, and never over the
// user's GOGC or GOMEMLIMIT.
func TestGCFor(t *testing.T) {
	launch, serve, ls := policyFor(t, []string{"launch", "h"}), policyFor(t, []string{"serve", "--", "app"}), policyFor(t, []string{"ls"})
	if !gcFor(launch, "", "") || gcFor(serve, "", "") || gcFor(ls, "", "") {
		t.Errorf("gcFor: launch %v serve %v ls %v; want only launch", gcFor(launch, "", ""), gcFor(serve, "", ""), gcFor(ls, "", ""))
	}
	if gcFor(launch, "50", "") || gcFor(launch, "", "1GiB") {
		t.Errorf("gcFor overrode the user's GOGC or GOMEMLIMIT")
	}
}
