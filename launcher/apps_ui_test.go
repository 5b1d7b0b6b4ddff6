package launcher

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/tether-dev/tether/wire"
)

// The detection script asks the Python named by jupyter-server's #! line (directly,
// through env on the same PATH, or pip's ”'exec' form) with the probe, and passes its
// answer on; a wrapper it cannot read gives no answer. The fake Python answers only
// when it gets -c and the probe itself.
func TestDetectScriptJupyterUI(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("runs /bin/sh")
	}
	execs := presetExecs()
	for _, c := range []struct {
		name, shebang, answer string
		want                  string // "": no answer
	}{
		{"direct", "#!{py}\n", "- - nbclassic", "nbclassic"},
		{"env", "#!/usr/bin/env mypython3\n", "jupyterlab - nbclassic", "jupyterlab"},
		{"pip's long path", "#!/bin/sh\n'''exec' \"{py}\" \"$0\" \"$@\"\n' '''\n", "- notebook7 -", "notebook7"},
		{"none", "#!{py}\n", "- - -", "none"},
		{"a wrapper", "#!/bin/sh\nexec /somewhere/else \"$@\"\n", "- - nbclassic", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			bin := t.TempDir()
			py := filepath.Join(bin, "mypython3")
			probe := filepath.Join(bin, "probe")
			os.WriteFile(probe, []byte(wire.JupyterUIProbe), 0o644)
			os.WriteFile(py, []byte("#!/bin/sh\n[ \"$1\" = -c ] && [ \"$2\" = \"$(cat "+probe+")\" ] && echo 'tether-jupyter-ui v1 "+c.answer+"'\n"), 0o755)
			os.WriteFile(filepath.Join(bin, "jupyter-server"), []byte(strings.ReplaceAll(c.shebang, "{py}", py)), 0o755)
			cmd := exec.Command("/bin/sh", "-c", detectCommand(execs, "0123456789abcdef"))
			cmd.Env = []string{"PATH=" + bin + ":/usr/bin:/bin", "SHELL=/nonexistent"}
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("running the script: %v", err)
			}
			d, err := parseDetectionEnv(strings.NewReader(string(out)), execs)
			if err != nil {
				t.Fatalf("%v in %q", err, out)
			}
			got := d.ui
			if got == "" && d.uiKnown {
				got = "none"
			}
			if got != c.want || d.found["jupyter-server"] == "" {
				t.Errorf("ui %q (known %v), found %q; want %q (output %q)", d.ui, d.uiKnown, d.found, c.want, out)
			}
		})
	}
}

// A Jupyter Server whose Python has no UI does not count for the jupyter preset: the
// preset says what is missing, or takes its next flavour found; with a UI it is named
// with it; without an answer it counts as before.
func TestMatchPresetsJupyterUI(t *testing.T) {
	server := map[string]string{"jupyter-server": "/venv/bin/jupyter-server"}
	jupyter := func(d *detection) AppFound {
		for _, a := range matchPresetsUI(d) {
			if a.App == "jupyter" {
				return a
			}
		}
		return AppFound{}
	}
	a := jupyter(&detection{found: server, uiKnown: true})
	if a.Found || !strings.Contains(a.Problem, "Jupyter Server (/venv/bin/jupyter-server) has no web UI") || !strings.Contains(a.Problem, "JupyterLab, Notebook 7 or NbClassic") {
		t.Errorf("without a UI: %+v", a)
	}
	if a := jupyter(&detection{found: server, uiKnown: true, ui: "nbclassic"}); !a.Found || a.Flavour != "Jupyter Server with NbClassic" {
		t.Errorf("with NbClassic: %+v", a)
	}
	if a := jupyter(&detection{found: server}); !a.Found || a.Flavour != "Jupyter Server" {
		t.Errorf("no answer: %+v", a)
	}
	both := map[string]string{"jupyter-notebook": "/usr/bin/jupyter-notebook", "jupyter-server": "/venv/bin/jupyter-server"}
	if a := jupyter(&detection{found: both, uiKnown: true}); !a.Found || a.Flavour != "Jupyter Notebook" {
		t.Errorf("the Notebook beside a Jupyter Server without a UI: %+v", a)
	}
}

// The Python is asked with the PYTHONPATH of the login shell, as serve asks it (a UI
// that only ~/.profile puts on PYTHONPATH counts), for each shell syntax.
func TestDetectScriptJupyterUILoginPYTHONPATH(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("runs /bin/sh")
	}
	execs := presetExecs()
	for _, c := range []struct{ shell, file, rc string }{
		{"bash", ".profile", "PATH=BIN:$PATH; PYTHONPATH=/login/pp; export PATH PYTHONPATH\n"},
		{"zsh", ".zshrc", "export PATH=BIN:$PATH PYTHONPATH=/login/pp\n"},
		{"tcsh", ".login", "setenv PATH BIN:$PATH\nsetenv PYTHONPATH /login/pp\n"},
	} {
		t.Run(c.shell, func(t *testing.T) {
			shell, err := exec.LookPath(c.shell)
			if err != nil {
				t.Skipf("%s is not installed", c.shell)
			}
			home, bin := t.TempDir(), t.TempDir()
			// The startup files may reset PATH (Debian's /etc/profile does): ours first.
			os.WriteFile(filepath.Join(home, c.file), []byte(strings.ReplaceAll(c.rc, "BIN", bin)), 0o600)
			py := filepath.Join(bin, "python3")
			os.WriteFile(py, []byte("#!/bin/sh\n[ \"$PYTHONPATH\" = /login/pp ] && echo 'tether-jupyter-ui v1 - - nbclassic' || echo 'tether-jupyter-ui v1 - - -'\n"), 0o755)
			os.WriteFile(filepath.Join(bin, "jupyter-server"), []byte("#!"+py+"\n"), 0o755)
			cmd := exec.Command("/bin/sh", "-c", detectCommand(execs, "0123456789abcdef"))
			cmd.Env = []string{"PATH=" + bin + ":/usr/bin:/bin", "HOME=" + home, "SHELL=" + shell, "PYTHONPATH=/plain"}
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("running the script: %v", err)
			}
			d, err := parseDetectionEnv(strings.NewReader(string(out)), execs)
			if err != nil {
				t.Fatalf("%v in %q", err, out)
			}
			if !d.login || d.ui != "nbclassic" || d.found["jupyter-server"] != filepath.Join(bin, "jupyter-server") {
				t.Errorf("login %v, ui %q (known %v); want the login shell's PYTHONPATH to reach the Python (output %q)", d.login, d.ui, d.uiKnown, out)
			}
		})
	}
}
