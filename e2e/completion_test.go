//go:build unix

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestShellCompletionE2E: `tether completion SHELL`'s script, loaded into the real
// shell, completes launch's HOST from the ssh config and its APP from the presets
// (bash: the completion function with COMP_WORDS set; zsh: _tether with words and
// CURRENT, compadd recording what it is given; fish: `complete -C`, fish's own
// completion of a command line).
func TestShellCompletionE2E(t *testing.T) {
	bin := Binary(t)
	start := time.Now()
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
	os.WriteFile(filepath.Join(home, ".ssh", "config"), []byte("Host gpu-box lab1\n  HostName 127.0.0.1\n"), 0o600)
	path := t.TempDir() // tether on PATH under its own name, as installed
	if err := os.Symlink(bin, filepath.Join(path, "tether")); err != nil {
		t.Fatal(err)
	}
	env := []string{"HOME=" + home, "PATH=" + path + ":" + os.Getenv("PATH"), "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "XDG_DATA_HOME=" + filepath.Join(home, ".local")}
	script := func(shell string) string {
		t.Helper()
		out, err := exec.Command(bin, "completion", shell).Output()
		if err != nil {
			t.Fatalf("tether completion %s: %v", shell, err)
		}
		p := filepath.Join(t.TempDir(), "tether."+shell)
		os.WriteFile(p, out, 0o600)
		return p
	}
	run := func(t *testing.T, shell string, args ...string) []string {
		t.Helper()
		cmd := exec.Command(shell, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", shell, err, out)
		}
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if l = strings.TrimSpace(strings.SplitN(l, "\t", 2)[0]); l != "" {
				got = append(got, l)
			}
		}
		return got
	}
	cases := []struct {
		line string // what is typed, the last word being completed
		want []string
	}{
		{"tether launch g", []string{"gpu-box"}},
		{"tether launch gpu-box jup", []string{"jupyter"}},
		{"tether stop --ssh n", []string{"native"}},
	}
	t.Run("bash", func(t *testing.T) {
		Need(t, "bash", "bash")
		s := script("bash")
		for _, c := range cases {
			words := strings.Fields(c.line)
			got := run(t, "bash", append([]string{"-c", `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($#-1)); _tether; printf '%s\n' "${COMPREPLY[@]}"`, "bash", s}, words...)...)
			if strings.Join(got, " ") != strings.Join(c.want, " ") {
				t.Errorf("bash, %q: got %q; want %q", c.line, got, c.want)
			}
		}
	})
	t.Run("zsh", func(t *testing.T) {
		Need(t, "zsh", "zsh")
		s := script("zsh")
		for _, c := range cases {
			words := strings.Fields(c.line)
			got := run(t, "zsh", append([]string{"-f", "-c", `compdef() { :; }; compadd() { [[ $1 == -a ]] && print -l -- ${(P)2}; }; _files() { print :files; }
source "$1"; shift; words=("$@"); CURRENT=$#; _tether`, "zsh", s}, words...)...)
			if strings.Join(got, " ") != strings.Join(c.want, " ") {
				t.Errorf("zsh, %q: got %q; want %q", c.line, got, c.want)
			}
		}
	})
	t.Run("fish", func(t *testing.T) {
		Need(t, "fish", "fish")
		s := script("fish")
		for _, c := range cases {
			got := run(t, "fish", "--no-config", "-c", "source $argv[1]; complete -C $argv[2]", s, c.line)
			if strings.Join(got, " ") != strings.Join(c.want, " ") {
				t.Errorf("fish, %q: got %q; want %q", c.line, got, c.want)
			}
		}
	})
	t.Logf("TestShellCompletionE2E took %s", FmtDur(time.Since(start)))
}
