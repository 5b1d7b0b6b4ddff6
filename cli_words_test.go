package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOneWordStopLogs: `stop HOST` / `logs HOST` with the session forgotten say what
// is missing, in the remote form, instead of looking for a local session named HOST.
func TestOneWordStopLogs(t *testing.T) {
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
	os.WriteFile(filepath.Join(home, ".ssh", "config"), []byte("Host gpu-box\n  HostName 10.0.0.1\n"), 0o600)
	t.Setenv("HOME", home)
	t.Setenv("TETHER_STATE_DIR", t.TempDir())
	tests := []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"stop", "-F", "cfg", "gpu-box"}, 2, []string{"stop gpu-box: which session?", "`tether stop -F cfg gpu-box ID`", "`tether ls -F cfg gpu-box`", "`tether stop -F cfg gpu-box --all`"}},
		{[]string{"logs", "gpu-box", "--ssh", "openssh"}, 2, []string{"logs gpu-box: which session?", "`tether logs --ssh openssh gpu-box ID`"}},
		{[]string{"stop", "gpu-box"}, 2, []string{"gpu-box is a host in your ssh config", "`tether stop gpu-box ID`", "`tether ls gpu-box` lists them"}},
		{[]string{"logs", "gpu-box"}, 2, []string{"gpu-box is a host in your ssh config", "`tether logs gpu-box ID`"}},
		{[]string{"stop", "nosuch"}, 1, []string{"no session \"nosuch\" on this machine", "`tether stop HOST ID`"}},
		{[]string{"logs", "nosuch"}, 1, []string{"no session \"nosuch\" on this machine", "`tether logs HOST ID`"}},
	}
	for _, tt := range tests {
		var out, errb bytes.Buffer
		code := run(context.Background(), tt.args, &out, &errb)
		if code != tt.code || strings.Count(errb.String(), "\n") != 1 {
			t.Errorf("for %q, got %d %q; want %d and one line", tt.args, code, errb.String(), tt.code)
		}
		for _, w := range tt.want {
			if !strings.Contains(errb.String(), w) {
				t.Errorf("for %q, got %q; want %q in it", tt.args, errb.String(), w)
			}
		}
	}
}

// TestPresetTypo: an APP near a preset's name is refused before anything connects,
// with the preset it is near and how to run a program so named; after -- a word is a
// command, and a word near no preset is one too.
func TestPresetTypo(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"launch", "-F", "none", "gpu-box", "jupyterlab"}, 2, "jupyterlab is not an app preset; did you mean jupyter? (`tether apps` lists them); to run a program named jupyterlab, put it after --: `tether launch gpu-box -- jupyterlab`"},
		{[]string{"launch", "gpu-box", "shinny", "app", "-F", "none"}, 2, "did you mean shiny?"},
		{[]string{"launch", "-F", "none", "no-such-host.invalid", "--", "jupyterlab"}, 1, "cannot reach no-such-host.invalid"},
		{[]string{"launch", "-F", "none", "no-such-host.invalid", "htop"}, 1, "cannot reach no-such-host.invalid"},
	}
	for _, tt := range tests {
		var out, errb bytes.Buffer
		code := run(context.Background(), tt.args, &out, &errb)
		if code != tt.code || !strings.Contains(errb.String(), tt.want) {
			t.Errorf("for %q, got %d %q; want %d and %q", tt.args, code, errb.String(), tt.code, tt.want)
		}
	}
}
