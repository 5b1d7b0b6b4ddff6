package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

// TestComplete: `tether __complete WORDS... CURRENT` offers what may come there:
// commands, flags and their values, the ssh config's hosts where a HOST goes (from -F
// FILE when given, flags anywhere), the presets where launch's APP goes, and ":files"
// where a file name goes.
func TestComplete(t *testing.T) {
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
	os.WriteFile(filepath.Join(home, ".ssh", "config"), []byte("Host gpu-box gpu-*\nHost lab1\n"), 0o600)
	other := filepath.Join(home, "other_config")
	os.WriteFile(other, []byte("Host cluster\n"), 0o600)
	t.Setenv("HOME", home)
	tests := []struct {
		words string
		want  []string
	}{
		{"l", []string{"launch", "ls", "logs"}},
		{"launch ", []string{"gpu-box", "lab1"}},
		{"launch g", []string{"gpu-box"}},
		{"launch -F " + other + " ", []string{"cluster"}},
		{"launch --no-browser gpu-box ", []string{"jupyter", "notebook", "code-server", "shiny", "rstudio", "tensorboard", "streamlit", "marimo", "static", "builtin"}},
		{"launch gpu-box jup", []string{"jupyter"}},
		{"launch gpu-box static ", []string{":files"}},
		{"launch gpu-box -- ", nil},
		{"launch gpu-box --ssh ", []string{"native", "openssh", "auto"}},
		{"launch gpu-box --ssh=o", []string{"--ssh=openssh"}},
		{"launch gpu-box -F ", []string{":files"}},
		{"launch gpu-box --no-b", []string{"--no-browser"}},
		{"stop l", []string{"lab1"}},
		{"stop gpu-box ", nil},
		{"ls --json ", []string{"gpu-box", "lab1"}},
		{"serve --app s", []string{"shiny", "streamlit", "static"}},
		{"completion ", []string{"bash", "zsh", "fish"}},
	}
	for _, tt := range tests {
		var out, errb bytes.Buffer
		args := append([]string{completeArg}, strings.Split(tt.words, " ")...)
		if code := run(context.Background(), args, &out, &errb); code != 0 {
			t.Errorf("for %q: exit %d %s", tt.words, code, errb.String())
		}
		got := strings.Fields(out.String())
		if strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("for %q, got %q; want %q", tt.words, got, tt.want)
		}
	}
}

// TestBareTetherHelp: `tether` alone prints the help (with examples) on stdout, exit 0;
// each command's help has examples.
func TestBareTetherHelp(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), nil, &out, &errb); code != 0 || errb.Len() > 0 {
		t.Errorf("tether: exit %d, stderr %q; want 0 and nothing", code, errb.String())
	}
	for _, w := range []string{"Usage: tether <command>", "Examples:", "tether launch gpu-box jupyter", "Commands:", "completion <shell>"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("tether: the help lacks %q:\n%s", w, out.String())
		}
	}
	for _, c := range []string{"launch", "attach", "ls", "stop", "logs", "forward", "apps", "serve", "demo"} {
		if node := commandNode(t, c); !strings.Contains(node, "Examples:") || !strings.Contains(node, "tether "+c) {
			t.Errorf("%s's help has no examples: %q", c, node)
		}
	}
}

func commandNode(t *testing.T, name string) string {
	t.Helper()
	var cli CLI
	p, err := kong.New(&cli, kong.Vars{"version": "test", "versiontext": "test"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range p.Model.Children {
		if c.Name == name {
			return c.Detail
		}
	}
	t.Fatalf("no command %s", name)
	return ""
}
