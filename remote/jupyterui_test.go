//go:build unix

package remote

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tether-dev/tether/wire"
)

func needPython3(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("needs python3")
	}
}

func TestScriptPython(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	os.Mkdir(bin, 0o755)
	os.WriteFile(filepath.Join(bin, "python3"), []byte("#!/bin/sh\n"), 0o755)
	for _, c := range []struct {
		name, content string
		want          []string // nil: unknown
	}{
		{"plain", "#!/usr/bin/python3\n# EASY-INSTALL\n", []string{"/usr/bin/python3"}},
		{"with a flag", "#!/opt/conda/bin/python3.11 -s\n", []string{"/opt/conda/bin/python3.11", "-s"}},
		{"env", "#!/usr/bin/env python3\n", []string{filepath.Join(bin, "python3")}},
		{"env -S", "#!/usr/bin/env -S python3 -I\n", []string{filepath.Join(bin, "python3"), "-I"}},
		{"pip's long path", "#!/bin/sh\n'''exec' \"/very/long/env/bin/python3.12\" \"$0\" \"$@\"\n' '''\n", []string{"/very/long/env/bin/python3.12"}},
		{"pip's long path unquoted", "#!/bin/sh\n'''exec' /very/long/env/bin/python \"$0\" \"$@\"\n", []string{"/very/long/env/bin/python"}},
		{"a shell wrapper", "#!/bin/bash\nexport PYTHONPATH=/x\nexec /nix/store/x/.jupyter-server-wrapped \"$@\"\n", nil},
		{"not python", "#!/usr/bin/perl\n", nil},
		{"a binary", "\x7fELF\x02\x01\x01", nil},
		{"env of nothing on PATH", "#!/usr/bin/env python9\n", nil},
	} {
		exe := filepath.Join(dir, "jupyter-server")
		os.WriteFile(exe, []byte(c.content), 0o755)
		got, err := scriptPython(exe, bin, dir)
		switch {
		case c.want == nil && err == nil:
			t.Errorf("%s: got %q; want no interpreter", c.name, got)
		case c.want != nil && (err != nil || !slices.Equal(got, c.want)):
			t.Errorf("%s: got %q, %v; want %q", c.name, got, err, c.want)
		}
	}
}

func TestParseJupyterUI(t *testing.T) {
	for _, c := range []struct {
		out, want string
		ok        bool
	}{
		{"tether-jupyter-ui v1 - - nbclassic\n", "nbclassic", true},
		{"banner from a sitecustomize\ntether-jupyter-ui v1 jupyterlab - nbclassic\n", "jupyterlab", true},
		{"tether-jupyter-ui v1 - notebook7 nbclassic", "notebook7", true},
		{"tether-jupyter-ui v1 - - -\n", "", true},
		{"('tether-jupyter-ui v1', '-', '-', 'nbclassic')\n", "", false}, // Python 2
		{"", "", false},
	} {
		got, ok := wire.ParseJupyterUI(c.out)
		if got != c.want || ok != c.ok {
			t.Errorf("ParseJupyterUI(%q) = %q, %v; want %q, %v", c.out, got, ok, c.want, c.ok)
		}
	}
}

// fakeJupyterServer is a jupyter-server script whose interpreter, a shell script named
// python, answers JupyterUIProbe with answer (or exits 1 when answer is "").
func fakeJupyterServer(t *testing.T, answer string) string {
	t.Helper()
	dir := t.TempDir()
	py := filepath.Join(dir, "python")
	body := "#!/bin/sh\nexit 1\n"
	if answer != "" {
		body = "#!/bin/sh\n[ \"$1\" = -c ] && echo '" + answer + "'\n"
	}
	os.WriteFile(py, []byte(body), 0o755)
	exe := filepath.Join(dir, "jupyter-server")
	os.WriteFile(exe, []byte("#!"+py+"\nimport sys\n"), 0o755)
	return exe
}

// foundAt is a lookPath that finds the executables of m where m says.
func foundAt(m map[string]string) func(string) (string, error) {
	return func(n string) (string, error) {
		if p, ok := m[n]; ok {
			return p, nil
		}
		return "", exec.ErrNotFound
	}
}

// TestJupyterServerFlavourNeedsUI: the jupyter preset takes Jupyter Server only with a
// UI its Python can import, lands on that UI's page, and says what is missing
// otherwise; a Python that cannot be asked leaves the flavour as before, with its page
// checked once ready.
func TestJupyterServerFlavourNeedsUI(t *testing.T) {
	p, _ := wire.LookupPreset("jupyter")
	for _, c := range []struct {
		answer, flavour, page string
	}{
		{"tether-jupyter-ui v1 jupyterlab - nbclassic", "Jupyter Server with JupyterLab", "lab"},
		{"tether-jupyter-ui v1 - notebook7 -", "Jupyter Server with Notebook 7", "tree"},
		{"tether-jupyter-ui v1 - - nbclassic", "Jupyter Server with NbClassic", "tree"},
		{"", "Jupyter Server", "tree"},
		{"tether-jupyter-ui v1 - - -", "", ""},
	} {
		exe := fakeJupyterServer(t, c.answer)
		r, err := resolvePreset(p, nil, "/", foundAt(map[string]string{"jupyter-server": exe}))
		if c.flavour == "" {
			var nu errNoUI
			if !errors.As(err, &nu) {
				t.Errorf("%q: got %v, %v; want errNoUI", c.answer, r, err)
				continue
			}
			msg := err.Error()
			for _, want := range []string{"jupyter is not usable", exe, filepath.Join(filepath.Dir(exe), "python") + " -m pip install jupyterlab", "no web UI", "JupyterLab, Notebook 7 or NbClassic"} {
				if !strings.Contains(msg, want) {
					t.Errorf("the error %q lacks %q", msg, want)
				}
			}
			continue
		}
		if err != nil || r.flavour != c.flavour || r.spec.UIPath != c.page || !slices.Contains(r.spec.Command, "--ServerApp.default_url=/{ui_page}") || r.spec.Vars["ui_page"] != c.page {
			t.Errorf("%q: got %+v, %v; want %s on /%s", c.answer, r, err, c.flavour, c.page)
		}
	}
	// The notebook found first is used as before, with no question to its Python.
	r, err := resolvePreset(p, nil, "/", foundAt(map[string]string{"jupyter-notebook": "/opt/bin/jupyter-notebook", "jupyter-server": fakeJupyterServer(t, "tether-jupyter-ui v1 - - -")}))
	if err != nil || r.flavour != "Jupyter Notebook" || r.spec.UIPath != "" {
		t.Errorf("with jupyter-notebook: %+v, %v", r, err)
	}
}

// TestProbeJupyterUIInItsEnvironment: the question goes to the script's own Python,
// in the environment given (the login shell's), not to the python3 on serve's PATH.
func TestProbeJupyterUIInItsEnvironment(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("needs python3")
	}
	// The interpreter itself (python3 on PATH may be a pyenv shim), alone on PATH.
	out, err := exec.Command("python3", "-c", "import sys; print(sys.executable)").Output()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "bin"), 0o755)
	py := filepath.Join(dir, "bin", "python3")
	os.Symlink(strings.TrimSpace(string(out)), py)
	// A package "nbclassic" that only the given environment's PYTHONPATH holds.
	os.MkdirAll(filepath.Join(dir, "site", "nbclassic"), 0o755)
	os.WriteFile(filepath.Join(dir, "site", "nbclassic", "__init__.py"), nil, 0o644)
	exe := filepath.Join(dir, "jupyter-server")
	os.WriteFile(exe, []byte("#!/usr/bin/env python3\n"), 0o755)
	env := []string{"PATH=" + filepath.Join(dir, "bin"), "PYTHONPATH=" + filepath.Join(dir, "site"), "PYTHONNOUSERSITE=1"}
	key, python, err := probeJupyterUI(exe, env, dir)
	if err != nil || key != "nbclassic" || python != py {
		t.Errorf("with nbclassic on PYTHONPATH: %q by %s, %v; want nbclassic by %s", key, python, err, py)
	}
	env[1] = "PYTHONPATH=" + filepath.Join(dir, "empty")
	if out, _ := exec.Command(py, "-s", "-c", "import nbclassic").CombinedOutput(); strings.Contains(string(out), "Error") {
		key, _, err = probeJupyterUI(exe, env, dir)
		if err != nil || key != "" {
			t.Errorf("without nbclassic: %q, %v; want none", key, err)
		}
	}
}
