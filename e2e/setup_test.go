//go:build unix

package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The environment before the app (launch --setup, issue 14), against the real peers:
// environment-modules (Debian's package: /etc/profile.d/modules.sh and
// /etc/csh/login.d/modules set it up in every login shell) and Lmod (unpacked beside it
// by .ci/run; set up by a user's startup file, as a site's profile.d would), with
// modulefiles the test writes; users whose login shells are bash, zsh and tcsh; a
// venv activated from ~/.bashrc as conda's `conda init` block would be; and Slurm with
// the setup inside the job.

// lmodInit is where Lmod's per-shell init files are (see .ci/run).
const lmodInit = "/usr/share/lmod/lmod/init"

// needLmod skips (or fails under TETHER_E2E=require) without Lmod.
func needLmod(t *testing.T) {
	t.Helper()
	if !IsExecutable("/usr/share/lmod/lmod/libexec/lmod") {
		msg := "Lmod not found under /usr/share/lmod: .ci/run unpacks Debian's lmod package there (it conflicts with environment-modules as a package)"
		if Required() {
			t.Fatalf("TETHER_E2E=require: %s", msg)
		}
		t.Skip(msg)
	}
}

// needEnvModules skips (or fails) without environment-modules.
func needEnvModules(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/etc/profile.d/modules.sh"); err != nil {
		Need(t, "environment-modules-init", "environment-modules")
	}
}

// envAppSource is the app the test's module puts on PATH: a Python HTTP server that
// answers every GET with its environment, working directory and umask as JSON, so that
// what the app saw is checked through tether's gate.
const envAppSource = `#!/usr/bin/python3
import http.server, json, os, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        m = os.umask(0)
        os.umask(m)
        b = json.dumps({"env": dict(os.environ), "cwd": os.getcwd(), "umask": m}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
`

// envAppName is the app's name: on no PATH but the one the module makes.
const envAppName = "tether-e2e-envapp"

// moduleTree is a directory every user may read, holding the app (bin/) and a module
// tether-e2e/1.0 that puts it on PATH and sets E2E_MODULE_SYSTEM to the module
// system's name: modulefiles/ for environment-modules (Tcl), lmodfiles/ for Lmod (Lua).
type moduleTree struct{ dir string }

func (m moduleTree) envModules() string { return filepath.Join(m.dir, "modulefiles") }
func (m moduleTree) lmod() string       { return filepath.Join(m.dir, "lmodfiles") }
func (m moduleTree) bin() string        { return filepath.Join(m.dir, "bin") }

func newModuleTree(t *testing.T) moduleTree {
	t.Helper()
	dir, err := os.MkdirTemp("", "tether-modules-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	m := moduleTree{dir}
	for _, d := range []string{m.bin(), filepath.Join(m.envModules(), "tether-e2e"), filepath.Join(m.lmod(), "tether-e2e")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	WriteFile(t, filepath.Join(m.bin(), envAppName), envAppSource, 0o755)
	WriteFile(t, filepath.Join(m.envModules(), "tether-e2e", "1.0"), "#%Module1.0\n"+
		"setenv E2E_MODULE_SYSTEM environment-modules\nprepend-path PATH "+m.bin()+"\n", 0o644)
	WriteFile(t, filepath.Join(m.lmod(), "tether-e2e", "1.0.lua"),
		`setenv("E2E_MODULE_SYSTEM", "lmod")`+"\n"+`prepend_path("PATH", "`+m.bin()+`")`+"\n", 0o644)
	return m
}

// appendTo appends text to a file of u's home (created if missing, owned by u).
func appendTo(t *testing.T, u User, name, text string) {
	t.Helper()
	p := filepath.Join(u.Home, name)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString(text)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, u.UID, u.GID); err != nil {
		t.Fatal(err)
	}
}

// appSaw is what envApp answered through the gate.
type appSaw struct {
	Env   map[string]string `json:"env"`
	Cwd   string            `json:"cwd"`
	Umask int               `json:"umask"`
}

// askApp GETs the app through the launcher's local URL, with the token.
func askApp(t *testing.T, l *Launched) appSaw {
	t.Helper()
	base := fmt.Sprintf("http://127.0.0.1:%d/", l.Line.LocalPort)
	code, body, _ := Fetch(t, base, "Authorization", "token "+l.Line.Session.Token)
	var saw appSaw
	if code != 200 || json.Unmarshal([]byte(body), &saw) != nil {
		t.Fatalf("GET through the gate: %d %.300q", code, body)
	}
	return saw
}

// randomMarker is a string no process has on its command line unless we put it there.
func randomMarker(prefix string) string {
	var b [6]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// watchCommandLines polls every process's command line for marker until stop is
// called, and returns what it saw then.
func watchCommandLines(marker string) (stop func() []string) {
	done := make(chan struct{})
	var mu sync.Mutex
	var seen []string
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			if p := ProcessesWith(marker); len(p) > 0 {
				mu.Lock()
				seen = append(seen, p...)
				mu.Unlock()
			}
			select {
			case <-done:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	return func() []string {
		close(done)
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return seen
	}
}

// TestLaunchSetupModules: `tether launch HOST --setup 'module use …; module load
// tether-e2e/1.0' -- tether-e2e-envapp {port}` for a bash user (environment-modules,
// set up by /etc/profile.d as Debian installs it), a zsh user (Lmod, set up by
// ~/.zshrc) and a tcsh user (environment-modules, set up by /etc/csh/login.d; the
// setup in csh syntax; the zsh user's launch goes through OpenSSH's ssh, --ssh
// openssh). The app exists only on the PATH the module makes; through the
// gate it shows the module's variable, and the setup's cd and umask. The setup is on
// no command line while it runs (polled in every process's argv), and its file is gone
// once the app runs. A setup whose `module load` fails (Lmod in bash, an unknown
// version) ends the launch at once with one `tether:` error line and Lmod's own words,
// and leaves no process, session or file.
func TestLaunchSetupModules(t *testing.T) {
	NeedPython(t)
	needEnvModules(t)
	needLmod(t)
	m := newModuleTree(t)
	bashU := OtherUserWithShell(t, "bash")
	zshU := OtherUserWithShell(t, "zsh")
	tcshU := OtherUserWithShell(t, "tcsh")
	failU := OtherUserWithShell(t, "bash")
	s, cfgs := sshdForUsers(t, SSHDOptions{}, bashU, zshU, tcshU, failU)
	Binary(t)

	// zsh: Lmod from ~/.zshrc (Debian's zsh reads no /etc/profile, so no system module
	// setup reaches it). bash with Lmod, for the failing setup: from ~/.bashrc, below
	// Debian's "not interactive: return" guard, where `conda init` writes too.
	appendTo(t, zshU, ".zshrc", "source "+lmodInit+"/zsh\n")
	appendTo(t, failU, ".bashrc", "source "+lmodInit+"/bash\n")

	mkdir := func(u User, name string) string {
		p := filepath.Join(u.Home, name)
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
		os.Chown(p, u.UID, u.GID)
		return p
	}
	cases := []struct {
		name, system string
		u            User
		cfg          string
		setup        string
		openssh      bool // through the user's own ssh (--ssh openssh): its argv is checked too
	}{
		{"bash, environment-modules", "environment-modules", bashU, cfgs[0],
			"module use " + m.envModules() + "\nmodule load tether-e2e/1.0 && cd ~/work && umask 027\n", false},
		{"zsh, Lmod, --ssh openssh", "lmod", zshU, cfgs[1],
			"module use " + m.lmod() + " && module load tether-e2e/1.0 && cd ~/work && umask 027", true},
		{"tcsh, environment-modules", "environment-modules", tcshU, cfgs[2],
			"module use " + m.envModules() + "\nmodule load tether-e2e/1.0\ncd ~/work\numask 027\n", false},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			work := mkdir(c.u, "work")
			marker := randomMarker("setup-marker-")
			setup := c.setup
			if i == 0 {
				// A second in which a command line holding the script would be seen.
				setup = "# " + marker + "\nsleep 1\n" + setup
			} else {
				setup = "echo " + marker + "\n" + setup
			}
			args := []string{"launch", "-F", c.cfg, s.Alias, "--no-browser", "--json", "--setup", setup, "--", envAppName, "{port}"}
			var env []string
			if c.openssh {
				env, _ = OpenSSHEnv(t, s)
				args = append([]string{args[0], "--ssh", "openssh"}, args[1:]...)
			}
			stop := watchCommandLines(marker)
			start := time.Now()
			l := StartLauncher(t, args, true, env...)
			took := time.Since(start)
			seen := stop()
			t.Logf("%s: URL ready %s after the launch", c.name, FmtDur(took))
			// The launcher's own argv holds the script (the user typed it there); no
			// other process may: not ssh (--ssh openssh), not the remote side.
			var remote []string
			for _, p := range seen {
				if !strings.HasPrefix(p, fmt.Sprint(l.Proc.Cmd.Process.Pid)+": ") {
					remote = append(remote, p)
				}
			}
			if len(remote) > 0 {
				t.Errorf("the setup script is on a command line: %q", remote)
			}
			saw := askApp(t, l)
			if got := saw.Env["E2E_MODULE_SYSTEM"]; got != c.system {
				t.Errorf("the app saw E2E_MODULE_SYSTEM=%q; want %q (the module's)", got, c.system)
			}
			if p := saw.Env["PATH"]; !strings.HasPrefix(p, m.bin()+":") {
				t.Errorf("the app's PATH %q does not start with the module's %s", p, m.bin())
			}
			if saw.Cwd != work || saw.Umask != 0o027 {
				t.Errorf("the app ran in %q with umask %04o; want the setup's %s and 0027", saw.Cwd, saw.Umask, work)
			}
			if saw.Env["HOME"] != c.u.Home || saw.Env["USER"] != c.u.Name {
				t.Errorf("the app ran with HOME %q, USER %q; want %s's", saw.Env["HOME"], saw.Env["USER"], c.u.Name)
			}
			for k := range saw.Env {
				if strings.HasPrefix(k, "TETHER_") {
					t.Errorf("the app's environment holds tether's %s", k)
				}
			}
			// The script's temporary file is gone; what it printed is in the app's log.
			dir := filepath.Dir(l.Line.Session.Socket)
			if ents, err := os.ReadDir(dir); err == nil {
				for _, e := range ents {
					if strings.HasPrefix(e.Name(), ".setup-") || strings.HasPrefix(e.Name(), ".login-env-") {
						t.Errorf("left in the session directory: %s", e.Name())
					}
				}
			}
			if i > 0 {
				out, errOut, code := RunTether(t, "logs", "-F", c.cfg, s.Alias, l.Line.Session.ID)
				if code != 0 || !strings.Contains(out, marker) {
					t.Errorf("tether logs: exit %d, %q %q; want the setup's output", code, out, errOut)
				}
			}
			l.Interrupt(t)
			if _, errOut, code := RunTether(t, "stop", "-F", c.cfg, s.Alias, "--all"); code != 0 {
				t.Errorf("stop --all: %d %s", code, errOut)
			}
		})
	}

	t.Run("a failing setup ends the launch with its output", func(t *testing.T) {
		start := time.Now()
		_, errOut, code := RunTether(t, "launch", "-F", cfgs[3], s.Alias, "--no-browser",
			"--setup", "echo loading the toolchain\nmodule use "+m.lmod()+" && module load tether-e2e/9.9", "--", envAppName, "{port}")
		t.Logf("failed in %s; stderr:\n%s", FmtDur(time.Since(start)), errOut)
		if code != 1 {
			t.Errorf("exit %d; want 1", code)
		}
		var errLines []string
		for _, l := range strings.Split(strings.TrimSpace(errOut), "\n") {
			if strings.HasPrefix(l, "tether: could not") {
				errLines = append(errLines, l)
			}
		}
		if len(errLines) != 1 {
			t.Errorf("error lines %q; want one", errLines)
		} else {
			MustContain(t, "the error", errLines[0], "could not start "+envAppName+" {port} on "+s.Alias, "the setup failed in your login shell (bash) with status 1", "fix --setup", "nothing was left running")
		}
		MustContain(t, "stderr", errOut, "the setup's output", "loading the toolchain", "tether-e2e/9.9")
		if time.Since(start) > 15*time.Second {
			t.Errorf("the failed setup took %s to report", FmtDur(time.Since(start)))
		}
		if p := ProcessesWith(envAppName); len(p) > 0 {
			t.Errorf("left running: %q", p)
		}
		as := *s // the same sshd, as that user
		as.Home, as.Config = failU.Home, cfgs[3]
		noSessionLeft(t, &as)
	})
}

// TestLaunchPresetFromLoginShell: a user whose only Jupyter of their own is in a
// Python environment that ~/.bashrc activates (a venv made with the system's packages,
// the conda stand-in: `conda init` writes its block to ~/.bashrc the same way, below
// Debian's guard that returns when the shell is not interactive). Their ~/.bashrc
// also talks on stdout and stderr, prints a fake tether marker and PATH, and asks a
// question. `tether apps HOST` finds Jupyter in the venv; `tether launch HOST jupyter`
// runs the venv's, not the system's /usr/bin/jupyter-notebook that a plain `ssh HOST
// COMMAND` finds, and through the gate Jupyter lists the kernel the venv holds (it
// looks in its own sys.prefix).
func TestLaunchPresetFromLoginShell(t *testing.T) {
	Need(t, "jupyter-notebook", "jupyter-notebook")
	u := OtherUserWithShell(t, "bash")
	s, cfgs := sshdForUsers(t, SSHDOptions{}, u)
	cfg := cfgs[0]
	Binary(t)

	venv := filepath.Join(u.Home, "venv")
	mk := u.Command("/usr/bin/python3", "-m", "venv", "--without-pip", "--system-site-packages", venv)
	if out, err := mk.CombinedOutput(); err != nil {
		Need(t, "python3-venv-module", "python3-venv")
		t.Fatalf("python3 -m venv: %v\n%s", err, out)
	}
	// jupyter-notebook as pip installs a console script into an environment; and a
	// kernel of the environment's own, as `python -m ipykernel install --sys-prefix`.
	py := filepath.Join(venv, "bin", "python3")
	WriteFile(t, filepath.Join(venv, "bin", "jupyter-notebook"), "#!"+py+"\nimport sys\nfrom notebook.notebookapp import main\nsys.exit(main())\n", 0o755)
	kdir := filepath.Join(venv, "share", "jupyter", "kernels", "tether-venv")
	if err := os.MkdirAll(kdir, 0o755); err != nil {
		t.Fatal(err)
	}
	WriteFile(t, filepath.Join(kdir, "kernel.json"), `{"argv": ["`+py+`", "-m", "ipykernel_launcher", "-f", "{connection_file}"], "display_name": "Python (tether venv)", "language": "python"}`, 0o644)
	if out, err := exec.Command("chown", "-R", fmt.Sprintf("%d:%d", u.UID, u.GID), venv).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}
	appendTo(t, u, ".bashrc", "echo 'Welcome to the cluster'\necho 'rc: a warning' >&2\n"+
		"echo tether-login-path; echo /not/the/path\nprintf 'Project to charge? '; read -r project\n"+
		". "+filepath.Join(venv, "bin", "activate")+"\n")

	// A plain `ssh HOST COMMAND` has the system's Jupyter only.
	if out, err := s.SSH("-F", cfg, "command -v jupyter-notebook"); strings.TrimSpace(out) != "/usr/bin/jupyter-notebook" {
		t.Fatalf("ssh %s command -v jupyter-notebook: %q %v; want the system's", s.Alias, out, err)
	}

	start := time.Now()
	out, errOut, code := RunTether(t, "apps", "-F", cfg, s.Alias)
	t.Logf("tether apps took %s:\n%s", FmtDur(time.Since(start)), out)
	if code != 0 {
		t.Fatalf("tether apps: exit %d: %s", code, errOut)
	}
	MustContain(t, "tether apps", out, "Jupyter Notebook: "+filepath.Join(venv, "bin", "jupyter-notebook"))
	if strings.Contains(out, "did not answer") {
		t.Errorf("tether apps fell back to the plain PATH:\n%s", out)
	}

	start = time.Now()
	l := StartLauncher(t, []string{"launch", "-F", cfg, s.Alias, "jupyter", "--no-browser", "--json"}, true)
	t.Logf("launch jupyter: URL ready after %s", FmtDur(time.Since(start)))
	t.Cleanup(func() { RunTether(t, "stop", "-F", cfg, s.Alias, "--all") })
	if c := l.Line.Session.Command; len(c) == 0 || c[0] != filepath.Join(venv, "bin", "jupyter-notebook") {
		t.Errorf("launch jupyter ran %q; want the venv's jupyter-notebook", c)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d/", l.Line.LocalPort)
	code, body, _ := Fetch(t, base+"api/kernelspecs", "Authorization", "token "+l.Line.Session.Token)
	if code != 200 || !strings.Contains(body, `"tether-venv"`) || !strings.Contains(body, py) {
		t.Errorf("GET api/kernelspecs through the gate: %d %.500q; want the venv's kernel", code, body)
	}
	// The startup files' chatter is in the app's log, not in the launcher's output.
	if strings.Contains(l.Stderr.String(), "Welcome to the cluster") || strings.Contains(l.Stdout.String(), "Welcome") {
		t.Errorf("the login shell's output reached the launcher:\n%s", l.Stderr.String())
	}
	l.Interrupt(t)
}

// TestSlurmSetupInJob: `launch --slurm … --setup 'module use …; module load
// tether-e2e/1.0' -- tether-e2e-envapp {port}` runs the setup in the login shell inside
// the batch job, on the node, right before the app: through the gate the app shows the
// module's variable and PATH and the job's SLURM_JOB_ID. The script waits in the
// session's 0600 file (never on a command line, polled while the launch runs). A setup
// that fails in the job ends the launch with its output and leaves no job queued and
// no session.
func TestSlurmSetupInJob(t *testing.T) {
	NeedPython(t)
	needEnvModules(t)
	site := StartSlurmSite(t, SlurmOptions{})
	m := newModuleTree(t)
	Binary(t)

	t.Run("module load in the job", func(t *testing.T) {
		marker := randomMarker("setup-marker-")
		setup := "echo " + marker + "\nmodule use " + m.envModules() + " && module load tether-e2e/1.0"
		stop := watchCommandLines(marker)
		l := site.Launch(t, "-t 5", "--no-browser", "--setup", setup, "--", envAppName, "{port}")
		seen := stop()
		for _, p := range seen {
			if !strings.HasPrefix(p, fmt.Sprint(l.Proc.Cmd.Process.Pid)+": ") {
				t.Errorf("the setup script is on a command line: %q", p)
			}
		}
		saw := askApp(t, l)
		if got := saw.Env["E2E_MODULE_SYSTEM"]; got != "environment-modules" || !strings.HasPrefix(saw.Env["PATH"], m.bin()+":") {
			t.Errorf("the app saw E2E_MODULE_SYSTEM=%q, PATH=%q; want the module's", got, saw.Env["PATH"])
		}
		id := l.Line.Session.ID
		j, ok := site.JobNamed(t, id)
		if !ok || saw.Env["SLURM_JOB_ID"] != j.ID || j.State != "RUNNING" {
			t.Errorf("the app saw SLURM_JOB_ID=%q; the session's job is %+v (found %v)", saw.Env["SLURM_JOB_ID"], j, ok)
		}
		fi, err := os.Stat(filepath.Join(site.SessionDir(id), "setup.sh"))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("the job's setup file: %v %v; want mode 0600", fi, err)
		}
		if b, _ := os.ReadFile(filepath.Join(site.SessionDir(id), "job.out")); !strings.Contains(string(b), "environment is your login shell's") {
			t.Logf("job output:\n%s", b)
		}
		l.Interrupt(t)
		if _, errOut, code := RunTether(t, site.Args("stop", id)...); code != 0 {
			t.Errorf("stop: exit %d: %s", code, errOut)
		}
	})

	t.Run("a failing setup in the job", func(t *testing.T) {
		start := time.Now()
		_, errOut, code := RunTether(t, site.Args("launch", "--slurm", "-t 5", "--no-browser",
			"--setup", "echo preparing the node\nmodule load no-such-module/1.0", "--", envAppName, "{port}")...)
		t.Logf("failed in %s; stderr:\n%s", FmtDur(time.Since(start)), errOut)
		if code != 1 {
			t.Errorf("exit %d; want 1", code)
		}
		MustContain(t, "stderr", errOut, "preparing the node", "no-such-module/1.0")
		MustContain(t, "the error", LastLine(errOut), "the setup failed in your login shell (bash) with status 1", "fix --setup", "nothing was left queued or running")
		if q := site.ActiveJobs(t); len(q) > 0 {
			t.Errorf("jobs left in the queue: %v", q)
		}
		if list := site.Sessions(t); len(list) > 0 {
			t.Errorf("sessions left: %v", list)
		}
	})
}

// TestLaunchSetupModuleJupyter is issue 14's own command: `tether launch HOST --setup
// 'module load python' jupyter`, where the only Jupyter the preset may pick is the one
// the module puts first on PATH (a wrapper in the module's bin, so the session's command
// names it): the preset is looked for after the setup ran, in the same login shell.
func TestLaunchSetupModuleJupyter(t *testing.T) {
	real := Need(t, "jupyter-notebook", "jupyter-notebook")
	needEnvModules(t)
	u := OtherUserWithShell(t, "bash")
	s, cfgs := sshdForUsers(t, SSHDOptions{}, u)
	Binary(t)

	dir, err := os.MkdirTemp("", "tether-modules-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	bin, mods := filepath.Join(dir, "python", "bin"), filepath.Join(dir, "modulefiles", "python")
	for _, d := range []string{bin, mods} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	jupyter := filepath.Join(bin, "jupyter-notebook")
	WriteFile(t, jupyter, "#!/bin/sh\nexec "+real+` "$@"`+"\n", 0o755)
	WriteFile(t, filepath.Join(mods, "3.11"), "#%Module1.0\nprepend-path PATH "+bin+"\n", 0o644)
	// The site's module path, as a site's profile.d would set it for every login shell.
	appendTo(t, u, ".bashrc", "module use "+filepath.Join(dir, "modulefiles")+"\n")

	start := time.Now()
	l := StartLauncher(t, []string{"launch", "-F", cfgs[0], s.Alias, "--setup", "module load python", "jupyter", "--no-browser", "--json"}, true)
	t.Logf("launch --setup 'module load python' jupyter: URL ready after %s", FmtDur(time.Since(start)))
	t.Cleanup(func() { RunTether(t, "stop", "-F", cfgs[0], s.Alias, "--all") })
	if c := l.Line.Session.Command; len(c) == 0 || c[0] != jupyter {
		t.Errorf("the jupyter preset ran %q; want the module's %s", c, jupyter)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d/", l.Line.LocalPort)
	if code, body, _ := Fetch(t, base+"api/kernels", "Authorization", "token "+l.Line.Session.Token); code != 200 {
		t.Errorf("GET api/kernels through the gate: %d %.300q", code, body)
	}
	l.Interrupt(t)

	// Without the setup, the plain login shell has only the system's Jupyter.
	l2 := StartLauncher(t, []string{"launch", "-F", cfgs[0], s.Alias, "jupyter", "--no-browser", "--json"}, true)
	if c := l2.Line.Session.Command; len(c) == 0 || c[0] == jupyter {
		t.Errorf("without --setup the preset ran %q; want the system's Jupyter", c)
	}
	l2.Interrupt(t)
}
