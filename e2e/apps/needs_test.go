//go:build unix

package apps

import (
	"fmt"
	"os/exec"
	"testing"

	"github.com/tether-dev/tether/e2e"
)

// What a preset test needs beyond an executable on PATH: the app's UI or package in
// the environment the executable runs in. Missing, the test skips saying what to
// install (and fails under TETHER_E2E=require), instead of meeting a 404 page or an
// app that exits.

// needPythonModule skips t (fails it under TETHER_E2E=require) unless the Python that
// runs exe can import module: the app's UI lives there, and without it the test
// would only meet Jupyter's 404 page.
func needPythonModule(t *testing.T, exe, module, debianPackage string) {
	t.Helper()
	py := scriptPython(t, exe)
	if py == nil {
		t.Fatalf("%s is not a Python script", exe)
	}
	out, err := exec.Command(py[0], append(py[1:], "-c", "import "+module)...).CombinedOutput()
	if err == nil {
		return
	}
	msg := fmt.Sprintf("%s's Python (%s) cannot import %s: install it there (Debian: apt-get install -y %s): %s", exe, py[0], module, debianPackage, e2e.LastLines(string(out), 1))
	if e2e.Required() {
		t.Fatalf("TETHER_E2E=require: %s", msg)
	}
	t.Skip(msg)
}

// needClassicNotebook is the jupyter-notebook of Notebook 6 (its classic UI, which
// the tests drive in Chromium), or a skip: Notebook 7's jupyter-notebook has another UI.
func needClassicNotebook(t *testing.T) string {
	t.Helper()
	exe := e2e.Need(t, "jupyter-notebook", "jupyter-notebook")
	needPythonModule(t, exe, "notebook.notebookapp", "jupyter-notebook")
	return exe
}

// needRPackage skips t (fails it under TETHER_E2E=require) unless R can load pkg.
func needRPackage(t *testing.T, pkg, debianPackage string) {
	t.Helper()
	r := e2e.Need(t, "R", debianPackage)
	out, err := exec.Command(r, "--no-save", "--no-restore", "--quiet", "-e", "if (!requireNamespace('"+pkg+"', quietly = TRUE)) quit(status = 3)").CombinedOutput()
	if err == nil {
		return
	}
	msg := fmt.Sprintf("R (%s) cannot load the %s package: install it (Debian: apt-get install -y %s)", r, pkg, debianPackage)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		msg += fmt.Sprintf(" (R: %v: %s)", err, e2e.LastLines(string(out), 1))
	}
	if e2e.Required() {
		t.Fatalf("TETHER_E2E=require: %s", msg)
	}
	t.Skip(msg)
}
