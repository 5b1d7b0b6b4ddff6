package launcher

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// The detection script quotes every name (a name with a space, a quote, a $ or a
// backtick is looked up as that name, never run or expanded), holds no backslash and
// no newline (so any login shell passes it through), and its output parses back.
func TestDetectScript(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("runs /bin/sh")
	}
	names := []string{"jupyter-lab", "it's here", "$(touch pwned)", "`touch pwned`", "a;touch pwned", "absent", "tool"}
	if script := detectScript(presetExecs(), "0123456789abcdef"); strings.ContainsAny(script, "\\\n") {
		t.Errorf("the script holds a backslash or newline: %s", script)
	}
	bin := t.TempDir()
	work := t.TempDir()
	for _, n := range []string{"jupyter-lab", "it's here", "$(touch pwned)", "`touch pwned`", "a;touch pwned"} {
		if err := os.WriteFile(filepath.Join(bin, n), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(bin, "tool"), []byte("not executable"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sh", "-c", detectCommand(names, "0123456789abcdef"))
	cmd.Dir = work
	cmd.Env = []string{"PATH=" + bin}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("running %s: %v", detectCommand(names, "0123456789abcdef"), err)
	}
	found, err := parseDetection(strings.NewReader(string(out)), names)
	if err != nil {
		t.Fatalf("%v in %q", err, out)
	}
	for _, n := range []string{"jupyter-lab", "it's here", "$(touch pwned)", "`touch pwned`", "a;touch pwned"} {
		if found[n] != filepath.Join(bin, n) {
			t.Errorf("%q: found %q; want %q (output %q)", n, found[n], filepath.Join(bin, n), out)
		}
	}
	if _, ok := found["absent"]; ok {
		t.Error("an absent name was found")
	}
	if _, ok := found["tool"]; ok {
		t.Error("a file that is not executable was found")
	}
	if _, err := os.Stat(filepath.Join(work, "pwned")); err == nil {
		t.Error("a name was run as a command")
	}
}

// The detection script looks on the PATH of the user's login shell, read past what its
// startup files print (a fake marker too) and whatever they ask; a login shell that
// hangs is cut off (where `timeout` exists) and the script falls back to its own PATH,
// saying so; so does a shell it does not speak.
func TestDetectScriptLoginShell(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("runs /bin/sh")
	}
	sysPath := "/usr/local/bin:/usr/bin:/bin"
	type shellCase struct {
		shell, file, rc string
		wantLogin       bool
	}
	const noise = "echo tether-login-path; echo /fake/path; echo tether-login-path-0000000000000000; echo /fake/path; echo noise >&2; "
	cases := []shellCase{
		{"bash", ".bashrc", "case $- in *i*) ;; *) return;; esac\n" + noise + "printf 'Project? '; read -r answer\nPATH=\"$HOME/rcbin:$PATH\"\n", true},
		{"zsh", ".zshrc", noise + "read -r answer\npath=($HOME/rcbin $path)\n", true},
		{"tcsh", ".login", "echo tether-login-path-0000000000000000\necho noise\nsetenv PATH $HOME/rcbin:$PATH\n", true},
		{"bash", ".bashrc", "sleep 300.125\n", false}, // hangs
	}
	for _, c := range cases {
		name := c.shell
		if !c.wantLogin {
			name += "-hangs"
		}
		t.Run(name, func(t *testing.T) {
			shell, err := exec.LookPath(c.shell)
			if err != nil {
				t.Skipf("%s is not installed", c.shell)
			}
			if !c.wantLogin {
				if _, err := exec.LookPath("timeout"); err != nil {
					t.Skip("no timeout(1) here: Apps' deadline is the bound")
				}
				old := loginShellWait
				loginShellWait = 1
				t.Cleanup(func() { loginShellWait = old })
			}
			home := t.TempDir()
			rcbin := filepath.Join(home, "rcbin")
			os.Mkdir(rcbin, 0o700)
			if err := os.WriteFile(filepath.Join(rcbin, "marimo"), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(home, ".profile"), []byte(". \"$HOME/.bashrc\"\n"), 0o600)
			if err := os.WriteFile(filepath.Join(home, c.file), []byte(c.rc), 0o600); err != nil {
				t.Fatal(err)
			}
			names := []string{"marimo", "sh"}
			cmd := exec.Command("/bin/sh", "-c", detectCommand(names, "0123456789abcdef"))
			cmd.Env = []string{"PATH=" + sysPath, "HOME=" + home, "SHELL=" + shell}
			start := time.Now()
			out, err := cmd.Output()
			took := time.Since(start)
			if err != nil {
				t.Fatalf("running the script: %v", err)
			}
			d, err := parseDetectionEnv(strings.NewReader(string(out)), names)
			if err != nil {
				t.Fatalf("%v in %q", err, out)
			}
			if d.login != c.wantLogin || (d.found["marimo"] != "") != c.wantLogin || d.found["sh"] == "" {
				t.Errorf("login %v, found %q; want login %v (output %q)", d.login, d.found, c.wantLogin, out)
			}
			if took > 10*time.Second {
				t.Errorf("took %s", took)
			}
		})
	}
}

// parseDetection takes only lines for names it asked about with clean absolute paths,
// whatever a login shell or a hostile remote prints around them, and wants the
// closing line.
func TestParseDetection(t *testing.T) {
	asked := []string{"jupyter-notebook", "R", "code-server", "marimo", "tensorboard"}
	out := "Welcome to the cluster!\n" +
		appTag + "1 /usr/bin/jupyter-notebook\n" +
		appTag + "2 relative/R\n" +
		appTag + "3 /opt/cs/../../etc/code-server\n" +
		appTag + "9 /usr/bin/evil\n" +
		appTag + "0 /usr/bin/evil\n" +
		appTag + "R /usr/bin/R\n" +
		appTag + "1 /second/one\n" +
		appTag + "4 /usr/bin/marimo\x1b[31m\n" +
		appDoneTag + "\n" + appTag + "5 /after/done\n"
	got, err := parseDetection(strings.NewReader(out), asked)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got["jupyter-notebook"] != "/usr/bin/jupyter-notebook" {
		t.Errorf("got %q", got)
	}
	if _, err := parseDetection(strings.NewReader(appTag+"1 /usr/bin/R\n"), asked); err == nil {
		t.Error("output without the closing line was accepted")
	}
}

// matchPresets picks each preset's first flavour found, as serve does, and says what
// it looked for when nothing was.
func TestMatchPresets(t *testing.T) {
	list := matchPresets(map[string]string{"jupyter-notebook": "/usr/bin/jupyter-notebook", "jupyter-server": "/usr/bin/jupyter-server", "R": "/usr/bin/R"})
	by := map[string]AppFound{}
	for _, a := range list {
		by[a.App] = a
	}
	if a := by["jupyter"]; !a.Found || a.Flavour != "Jupyter Notebook" || a.Path != "/usr/bin/jupyter-notebook" {
		t.Errorf("jupyter: %+v", a)
	}
	if a := by["shiny"]; !a.Found || a.Path != "/usr/bin/R" {
		t.Errorf("shiny: %+v", a)
	}
	if a := by["code-server"]; a.Found || strings.Join(a.LooksFor, ",") != "code-server" {
		t.Errorf("code-server: %+v", a)
	}
	if a := by["static"]; !a.Found || !a.BuiltIn {
		t.Errorf("static: %+v", a)
	}
}
