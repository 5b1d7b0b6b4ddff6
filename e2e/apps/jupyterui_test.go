//go:build unix

package apps

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tether-dev/tether/e2e"
)

// scriptPython is the interpreter of the Python script exe, from its #! line (a path,
// or env and a name on PATH); "" when it has none.
func scriptPython(t *testing.T, exe string) []string {
	t.Helper()
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	line, ok := strings.CutPrefix(first, "#!")
	f := strings.Fields(line)
	if !ok || len(f) == 0 {
		return nil
	}
	if filepath.Base(f[0]) == "env" && len(f) > 1 {
		p, err := exec.LookPath(f[1])
		if err != nil {
			return nil
		}
		f = append([]string{p}, f[2:]...)
	}
	return f
}

// firstPageOK loads url in the browser and fails at once (through fail) when the page
// it lands on is a 404: an app with no page to show, which no waiting will change.
func firstPageOK(t *testing.T, ctx context.Context, url string, fail func(string, error)) {
	t.Helper()
	resp, err := chromedp.RunResponse(ctx, chromedp.Navigate(url))
	if err != nil {
		fail("loading the first page", err)
	}
	if resp != nil && resp.Status == 404 {
		fail("the first page", fmt.Errorf("%s answered 404: the app has no page there", resp.URL))
	}
}

// jupyterServerOnlyVenv makes a virtualenv whose Python has Jupyter Server and its
// dependencies (links into the system's site-packages) but no UI (no nbclassic,
// notebook or jupyterlab), with jupyter-server in its bin, as `pip install
// jupyter_server` alone gives. It returns the venv's bin directory.
func jupyterServerOnlyVenv(t *testing.T, real string) string {
	t.Helper()
	py := scriptPython(t, real)
	if py == nil {
		t.Skipf("%s is not a Python script", real)
	}
	out, err := exec.Command(py[0], "-c", "import jupyter_server, os; print(os.path.dirname(os.path.dirname(jupyter_server.__file__)))").Output()
	if err != nil {
		t.Fatalf("finding jupyter_server's site-packages: %v", err)
	}
	site := strings.TrimSpace(string(out))
	venv := filepath.Join(t.TempDir(), "venv")
	if out, err := exec.Command(py[0], "-m", "venv", "--without-pip", venv).CombinedOutput(); err != nil {
		msg := fmt.Sprintf("%s -m venv: %v: %s", py[0], err, e2e.LastLines(string(out), 1))
		if e2e.Required() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dirs, _ := filepath.Glob(filepath.Join(venv, "lib", "python*", "site-packages"))
	if len(dirs) != 1 {
		t.Fatalf("the venv's site-packages: %q", dirs)
	}
	ents, err := os.ReadDir(site)
	if err != nil {
		t.Fatal(err)
	}
	ui := regexp.MustCompile(`^(nbclassic|notebook|jupyterlab)([-.]|$)`)
	for _, e := range ents {
		if !ui.MatchString(e.Name()) {
			os.Symlink(filepath.Join(site, e.Name()), filepath.Join(dirs[0], e.Name()))
		}
	}
	b, err := os.ReadFile(real)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(b), "\n")
	bin := filepath.Join(venv, "bin")
	e2e.WriteFile(t, filepath.Join(bin, "jupyter-server"), "#!"+filepath.Join(bin, "python3")+"\n"+rest, 0o755)
	return bin
}

// TestJupyterServerWithoutUIE2E: on a host whose only Jupyter is a Jupyter Server with
// no UI in its Python (a venv with jupyter_server alone), `tether apps HOST` says the
// jupyter preset is not usable and why, and `tether launch HOST jupyter` fails within
// seconds saying what to install, leaving nothing; on the old code apps listed it and
// launch opened Jupyter's 404 page. A jupyter-server behind a wrapper script (its
// Python unknown) starts, and its 404 on /tree ends the launch once the server is
// ready. The same Jupyter Server with NbClassic on the PYTHONPATH that only the login
// shell sets (~/.profile) has its UI, for apps and launch: the question is asked in
// that environment.
func TestJupyterServerWithoutUIE2E(t *testing.T) {
	real := e2e.Need(t, "jupyter-server", "jupyter-server")
	venvBin := jupyterServerOnlyVenv(t, real)
	// Everything of /usr/bin but the Jupyter entry points; the venv's jupyter-server.
	bin := t.TempDir()
	ents, err := os.ReadDir("/usr/bin")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "jupyter-") {
			os.Symlink(filepath.Join("/usr/bin", e.Name()), filepath.Join(bin, e.Name()))
		}
	}
	os.Symlink(filepath.Join(venvBin, "jupyter-server"), filepath.Join(bin, "jupyter-server"))
	s := e2e.StartSSHD(t, e2e.SSHDOptions{Env: map[string]string{"PATH": bin}})
	setLoginPATH(t, s, bin)
	e2e.StopAllOnCleanup(t, s)
	e2e.Binary(t)

	start := time.Now()
	out, errOut, code := e2e.RunTether(t, "apps", "-F", s.Config, s.Alias)
	row := ""
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "jupyter ") {
			row = l
		}
	}
	t.Logf("tether apps (%s): %s", e2e.FmtDur(time.Since(start)), row)
	if code != 0 || !strings.Contains(row, "not usable: Jupyter Server ("+filepath.Join(bin, "jupyter-server")+") has no web UI") ||
		!strings.Contains(row, "JupyterLab, Notebook 7 or NbClassic") {
		t.Errorf("tether apps: exit %d; the jupyter row %q; want it not usable, saying why\n%s%s", code, row, out, errOut)
	}

	launch := func(t *testing.T) (string, time.Duration) {
		t.Helper()
		start := time.Now()
		l := e2e.StartLauncher(t, []string{"launch", "-F", s.Config, s.Alias, "jupyter", "--no-browser", "--json"}, false)
		if !e2e.WaitFor(60*time.Second, func() bool {
			select {
			case <-l.Proc.Done():
				return true
			default:
				return strings.Contains(l.Stdout.String(), "\n")
			}
		}) || l.Stdout.String() != "" {
			t.Fatalf("launch jupyter on a Jupyter Server without a UI got ready (it opens a 404): %q\n%s", l.Stdout.String(), l.Stderr.String())
		}
		err, _ := l.Proc.Wait(10 * time.Second)
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Errorf("launch: %v; want exit 1", err)
		}
		if list := e2e.SessionsOn(t, s); len(list) != 0 {
			t.Errorf("sessions left: %v", list)
		}
		return e2e.LastLines(l.Stderr.String(), 1), time.Since(start)
	}
	t.Run("its Python known", func(t *testing.T) {
		last, took := launch(t)
		t.Logf("launch jupyter (%s): %s", e2e.FmtDur(took), last)
		e2e.MustContain(t, "the error", last, "jupyter is not usable", "has no web UI", filepath.Join(venvBin, "python3"), "pip install jupyterlab")
		if took > 20*time.Second {
			t.Errorf("took %s; want seconds", e2e.FmtDur(took))
		}
	})
	t.Run("behind a wrapper", func(t *testing.T) {
		os.Remove(filepath.Join(bin, "jupyter-server"))
		e2e.WriteFile(t, filepath.Join(bin, "jupyter-server"), "#!/bin/sh\nexec "+filepath.Join(venvBin, "jupyter-server")+" \"$@\"\n", 0o755)
		last, took := launch(t)
		t.Logf("launch jupyter (%s): %s", e2e.FmtDur(took), last)
		e2e.MustContain(t, "the error", last, "answers 404 on /tree", "has no web UI")
		if took > 30*time.Second {
			t.Errorf("took %s; want seconds", e2e.FmtDur(took))
		}
	})
	t.Run("its UI on the login shell's PYTHONPATH", func(t *testing.T) {
		// NbClassic (and the Notebook 6 it builds on) only where ~/.profile points.
		site, err := exec.Command(scriptPython(t, real)[0], "-c", "import nbclassic, os; print(os.path.dirname(os.path.dirname(os.path.realpath(nbclassic.__file__))))").Output()
		if err != nil {
			msg := fmt.Sprintf("%s's Python has no nbclassic to put on the login shell's PYTHONPATH (Debian: apt-get install -y python3-nbclassic): %v", real, err)
			if e2e.Required() {
				t.Fatalf("TETHER_E2E=require: %s", msg)
			}
			t.Skip(msg)
		}
		lib := t.TempDir()
		ents, _ := os.ReadDir(strings.TrimSpace(string(site)))
		for _, e := range ents {
			if regexp.MustCompile(`^(nbclassic|notebook)([-.]|$)`).MatchString(e.Name()) {
				os.Symlink(filepath.Join(strings.TrimSpace(string(site)), e.Name()), filepath.Join(lib, e.Name()))
			}
		}
		os.Remove(filepath.Join(bin, "jupyter-server"))
		os.Symlink(filepath.Join(venvBin, "jupyter-server"), filepath.Join(bin, "jupyter-server"))
		e2e.WriteFile(t, filepath.Join(s.Home, ".profile"), "PATH='"+bin+"'\nPYTHONPATH='"+lib+"'\nexport PATH PYTHONPATH\n", 0o600)
		out, _, _ := e2e.RunTether(t, "apps", "-F", s.Config, s.Alias)
		e2e.MustContain(t, "tether apps", out, "Jupyter Server with NbClassic: "+filepath.Join(bin, "jupyter-server"))
		start := time.Now()
		l := launchPreset(t, s, "jupyter")
		took := time.Since(start)
		if c := l.Line.Session.Command; len(c) == 0 || c[0] != filepath.Join(bin, "jupyter-server") {
			t.Errorf("the session runs %q; want the venv's Jupyter Server", c)
		}
		base := strings.TrimSuffix(l.Line.URL[:strings.Index(l.Line.URL, "?")], "/") + "/"
		if status, body, _ := e2e.Fetch(t, base+"tree", "Authorization", "token "+l.Line.Session.Token); status != 200 || !strings.Contains(body, "notebook_list") {
			t.Errorf("GET /tree through the gate: %d %.200q; want NbClassic's page", status, body)
		}
		t.Logf("launch jupyter with NbClassic from the login shell's PYTHONPATH: URL working after %s", e2e.FmtDur(took))
		l.Interrupt(t)
	})
}
