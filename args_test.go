package main

import (
	"bytes"
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

// parseArranged parses args as run does (arranged first) into a fresh CLI.
func parseArranged(t *testing.T, args []string) (*CLI, *kong.Context, error) {
	t.Helper()
	var cli CLI
	p, err := kong.New(&cli, kong.Vars{"version": "test", "versiontext": "test"}, kong.Exit(func(int) { t.Fatalf("kong exited on %q", args) }))
	if err != nil {
		t.Fatal(err)
	}
	ar := arrangeArgs(p.Model, args)
	kctx, err := p.Parse(ar.parse)
	if kctx != nil {
		kctx.Args = ar.logical
	}
	return &cli, kctx, err
}

// TestFlagsAnywhere: for every command, flags after or between the positional
// arguments parse exactly as the same flags before them (DESIGN.md: `tether stop HOST
// -F cfg ID` works like `tether stop -F cfg HOST ID`); what follows -- stays the
// command's own, flags included.
func TestFlagsAnywhere(t *testing.T) {
	tests := []struct{ anywhere, first string }{
		{"stop gpu -F cfg abc", "stop -F cfg gpu abc"},
		{"stop gpu --all -F cfg", "stop -F cfg --all gpu"},
		{"stop abc --ssh native", "stop --ssh native abc"},
		{"logs gpu abc -f -F cfg", "logs -f -F cfg gpu abc"},
		{"logs gpu -fF cfg abc", "logs -f -F cfg gpu abc"},
		{"logs gpu -Fcfg abc", "logs -F cfg gpu abc"},
		{"ls gpu --json -F cfg", "ls --json -F cfg gpu"},
		{"apps gpu --json --ssh=openssh", "apps --json --ssh openssh gpu"},
		{"forward gpu abc --json 5432 --local-port 7000", "forward --json --local-port 7000 gpu abc 5432"},
		{"attach gpu --port 8080 abc -F cfg --no-browser", "attach --port 8080 -F cfg --no-browser gpu abc"},
		{"launch gpu shiny app --port 8080 -- --launch.browser", "launch --port 8080 gpu shiny app -- --launch.browser"},
		{"launch gpu static --no-browser site", "launch --no-browser gpu static site"},
		{"launch gpu jupyter --slurm '-p gpu -t 1:00:00' --no-browser", "launch --slurm '-p gpu -t 1:00:00' --no-browser gpu jupyter"},
		{"launch gpu --name n -- python -m http.server {port} --bind 127.0.0.1", "launch --name n gpu -- python -m http.server {port} --bind 127.0.0.1"},
		{"serve --json -- jupyter lab --port={port}", "serve --json -- jupyter lab --port={port}"},
		{"serve --app static dir --json", "serve --app static --json dir"},
		{"relay --listen 127.0.0.1:0 --secret-file s", "relay serve --listen 127.0.0.1:0 --secret-file s"},
		{"relay token robot1 --role host --secret-file s --portal lab", "relay token --role host --secret-file s --portal lab robot1"},
	}
	for _, tt := range tests {
		a, ak, aerr := parseArranged(t, split(tt.anywhere))
		b, bk, berr := parseArranged(t, split(tt.first))
		if aerr != nil || berr != nil {
			t.Errorf("for %q: %v; for %q: %v", tt.anywhere, aerr, tt.first, berr)
			continue
		}
		if ak.Command() != bk.Command() || !reflect.DeepEqual(a, b) {
			t.Errorf("for %q, got %s %+v; want %s %+v", tt.anywhere, ak.Command(), *a, bk.Command(), *b)
		}
	}
}

// TestFlagsAnywhereLaunchWords: where the flags go changes nothing about which word
// is the APP and which are a COMMAND's.
func TestFlagsAnywhereLaunchWords(t *testing.T) {
	tests := []struct {
		args    string
		app     string
		command []string
	}{
		{"launch gpu --no-browser -- python -m http.server {port}", "", []string{"python", "-m", "http.server", "{port}"}},
		{"launch gpu -- jupyter lab --port={port} --no-browser", "", []string{"jupyter", "lab", "--port={port}", "--no-browser"}},
		{"launch gpu jupyter --no-browser -- --notebook-dir=/data", "jupyter", []string{"--notebook-dir=/data"}},
		{"launch gpu shiny --port 8080 app -- --x", "shiny", []string{"app", "--x"}},
		{"launch gpu --port 8080 htop", "", []string{"htop"}},
	}
	for _, tt := range tests {
		cli, kctx, err := parseArranged(t, split(tt.args))
		if err != nil {
			t.Errorf("for %q: %v", tt.args, err)
			continue
		}
		app, command := splitApp(kctx.Args, cli.Launch.positionals())
		if app != tt.app || !reflect.DeepEqual(command, tt.command) {
			t.Errorf("for %q, got %q %q; want %q %q", tt.args, app, command, tt.app, tt.command)
		}
	}
	// A flag of the app's before -- is still tether's (and unknown): kong says so.
	if _, _, err := parseArranged(t, split("launch gpu python -m http.server")); err == nil || !strings.Contains(err.Error(), "-m") {
		t.Errorf("launch gpu python -m http.server: got %v; want an error naming -m", err)
	}
}

// TestFlagsAnywhereRun: through run, as a user types it: `stop HOST -F cfg ID` reaches
// HOST (here one that does not resolve: exit 1 "cannot reach"), not a usage error.
func TestFlagsAnywhereRun(t *testing.T) {
	t.Setenv("TETHER_STATE_DIR", t.TempDir())
	for _, args := range [][]string{
		{"stop", "no-such-host.invalid", "-F", "none", "abcdefgh"},
		{"logs", "no-such-host.invalid", "-F", "none", "abcdefgh", "-f"},
		{"forward", "no-such-host.invalid", "abcdefgh", "-F", "none", "5432"},
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), args, &out, &errb)
		if code != 1 || !strings.Contains(errb.String(), "cannot reach no-such-host.invalid") {
			t.Errorf("for %q, got %d %q; want 1 and cannot reach", args, code, errb.String())
		}
	}
}

// split is strings.Fields with '...' grouping (enough for these tables).
func split(s string) []string {
	var out []string
	for s != "" {
		s = strings.TrimLeft(s, " ")
		if s == "" {
			break
		}
		if s[0] == '\'' {
			end := strings.IndexByte(s[1:], '\'') + 1
			out = append(out, s[1:end])
			s = s[end+1:]
			continue
		}
		w, rest, _ := strings.Cut(s, " ")
		out = append(out, w)
		s = rest
	}
	return out
}
