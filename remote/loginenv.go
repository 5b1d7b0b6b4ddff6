//go:build unix

package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tether-dev/tether/internal/shquote"
	"github.com/tether-dev/tether/internal/termsafe"
	"github.com/tether-dev/tether/wire"
)

// The environment before the app. On an HPC login node or a GPU box the app a user
// means exists in the environment their terminal has: after `module load`, `conda
// activate`, or the `conda init` block in ~/.bashrc. `ssh HOST COMMAND`, which is how
// tether reaches the remote, gets none of that: sshd runs `$SHELL -c COMMAND`, neither
// a login shell (no /etc/profile, ~/.profile, ~/.bash_profile, so no /etc/profile.d
// module setup) nor interactive (bash reads ~/.bashrc there only on some builds, and
// Debian's and Ubuntu's ~/.bashrc returns at once when not interactive, above the
// lines `conda init` appends). So serve asks the user's login shell itself, started as
// a terminal starts it (interactive and login, as VS Code does to resolve its shell
// environment), and starts the app with what that shell would give a program typed at
// its prompt: environment, working directory and umask.
//
// The shell runs with stdin on /dev/null, in a session of its own (no controlling
// terminal: nothing in a startup file can wait on the user's terminal), with a bounded
// time. Its command line holds only paths: the setup script sits in a 0600 file in the
// session's 0700 directory and is sourced from there, in that same shell, followed by
// this binary's hidden `_login-env` mode (exec'd, so it inherits exactly what the app
// would), which writes the environment to a 0600 file. The exit status of the setup
// travels as that mode's argument ($? or $status), since tcsh does not honour `exit`
// part-way through a -c string. Whatever the shell or the setup left running in its
// process group is killed when it is done.

// LoginEnvArg is the hidden first argument that makes the binary write its environment
// for serve (see RunLoginEnvDump). main dispatches on it before parsing the command
// line, so it is in no help text.
const LoginEnvArg = "_login-env"

// loginShellTimeout bounds a login shell run without a setup (the setup gets the ready
// timeout): startup files that take longer are stuck (a prompt, a hung NFS home).
var loginShellTimeout = 30 * time.Second

const envFileMagic = "tether-env v1"

// loginShell is the user's login shell and the syntax it speaks.
type loginShell struct {
	path string
	name string // base name: bash, zsh, tcsh...
	csh  bool   // csh or tcsh syntax
}

// Shells by the syntax tether writes for them: POSIX (source is ".") or csh.
var (
	posixShells = map[string]bool{"sh": true, "bash": true, "dash": true, "zsh": true, "ksh": true, "ksh93": true, "mksh": true, "pdksh": true, "ash": true, "yash": true}
	cshShells   = map[string]bool{"csh": true, "tcsh": true}
)

// findLoginShell is $SHELL (sshd and Slurm set it from the passwd entry), else the
// passwd entry itself, else /bin/sh.
func findLoginShell() (loginShell, error) {
	p := os.Getenv("SHELL")
	if p == "" {
		p = passwdShell()
	}
	if p == "" {
		p = "/bin/sh"
	}
	name := filepath.Base(p)
	if !filepath.IsAbs(p) || !executable(p) {
		return loginShell{}, fmt.Errorf("your login shell %q is not an executable file", p)
	}
	switch {
	case posixShells[name]:
		return loginShell{path: p, name: name}, nil
	case cshShells[name]:
		return loginShell{path: p, name: name, csh: true}, nil
	}
	return loginShell{path: p, name: name}, errUnsupportedShell{name}
}

// errUnsupportedShell: a login shell whose syntax tether does not write (fish, nu...).
type errUnsupportedShell struct{ name string }

func (e errUnsupportedShell) Error() string {
	return fmt.Sprintf("your login shell is %s, whose syntax tether does not speak (it runs sh, bash, dash, zsh, ksh, csh and tcsh)", e.name)
}

// passwdShell is this user's shell from the passwd database (getent, for LDAP and
// the like; else /etc/passwd), or "".
func passwdShell() string {
	uid := strconv.Itoa(os.Getuid())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "getent", "passwd", uid).Output()
	if err != nil {
		out, _ = os.ReadFile("/etc/passwd")
	}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Split(l, ":")
		if len(f) == 7 && f[2] == uid {
			return f[6]
		}
	}
	return ""
}

// loginEnvError is a login shell (or a setup in it) that did not give tether its
// environment; tail is what it printed (its last lines, without the shell's own
// complaints about having no terminal).
type loginEnvError struct {
	msg   string
	setup bool // the setup itself failed (not only the shell)
	tail  []string
}

func (e *loginEnvError) Error() string { return e.msg }

// captureLoginEnv runs the user's login shell (with setup sourced in it when not
// empty) and returns the environment it would give the app. The shell's output goes
// to out as it comes (the app log). Temporary files live in dir (the session's 0700
// directory) and are gone when it returns. ctx bounds the whole run.
func captureLoginEnv(ctx context.Context, dir, setup string, out io.Writer, progress func(wire.Note)) (*shellEnv, error) {
	sh, err := findLoginShell()
	if err != nil {
		return nil, &loginEnvError{msg: err.Error()}
	}
	bin, err := os.Executable()
	if err != nil {
		return nil, &loginEnvError{msg: "cannot find the tether binary: " + err.Error()}
	}
	id, err := newID()
	if err != nil {
		return nil, err
	}
	envFile := filepath.Join(dir, ".login-env-"+id)
	defer os.Remove(envFile)
	setupFile := ""
	if setup != "" {
		name := ".setup-" + id
		if !strings.HasSuffix(setup, "\n") {
			setup += "\n"
		}
		if err := writeFileAtomic(dir, name, []byte(setup)); err != nil {
			return nil, err
		}
		setupFile = filepath.Join(dir, name)
		defer os.Remove(setupFile)
	}
	driver, err := loginDriver(sh, bin, setupFile, envFile)
	if err != nil {
		return nil, &loginEnvError{msg: err.Error()}
	}

	// The shell gets serve's environment without tether's own variables (TETHER_TOKEN
	// above all): startup files have no business with them, and the app never sees them.
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "TETHER_") {
			env = append(env, e)
		}
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer devnull.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer pr.Close()
	// "-bash", "-tcsh": a login shell by the name it is started under, the one
	// convention every shell shares (tcsh takes -l only as its sole argument); -i as a
	// terminal's shell is interactive, so ~/.bashrc and ~/.zshrc are read in full.
	cmd := exec.CommandContext(ctx, sh.path)
	cmd.Args = []string{"-" + sh.name, "-i", "-c", driver}
	cmd.Env, cmd.Stdin, cmd.Stdout, cmd.Stderr = env, devnull, pw, pw
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	// Interactive shells ignore SIGTERM: the whole session goes by SIGKILL.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	tail := newTail(16 << 10)
	filter := &noiseFilter{w: io.MultiWriter(tail, out)}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		pw.Close()
		return nil, &loginEnvError{msg: fmt.Sprintf("cannot start your login shell %s: %v", sh.path, err)}
	}
	pw.Close()
	copied := make(chan struct{})
	go func() {
		io.Copy(filter, pr)
		close(copied)
	}()
	stopTicks := make(chan struct{})
	var ticks sync.WaitGroup
	ticks.Add(1)
	go func() {
		defer ticks.Done()
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stopTicks:
				return
			case <-t.C:
				progress(wire.Stepf("still waiting for your login shell (%s) (%s)", sh.name, time.Since(start).Round(time.Second)))
			}
		}
	}()
	werr := cmd.Wait()
	close(stopTicks)
	ticks.Wait()
	// What the startup files or the setup left in the shell's session (a `sleep &`
	// without job control stays in it) goes now; the session id cannot be reused while
	// any of them lives.
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-copied:
		pr.Close()
	case <-time.After(2 * time.Second): // a daemon of its own holds the pipe
		pr.Close() // ends the copy's read (the pipe is in the poller)
		<-copied
	}
	filter.flush()
	took := time.Since(start)

	lines := tail.Lines(20)
	fail := func(setupFailed bool, format string, args ...any) (*shellEnv, error) {
		return nil, &loginEnvError{msg: fmt.Sprintf(format, args...), setup: setupFailed, tail: lines}
	}
	if ctx.Err() != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			what := "its startup files"
			if setup != "" {
				what = "its startup files and the setup"
			}
			return fail(setup != "", "your login shell (%s) did not finish %s within %s (does a startup file wait for input?)", sh.name, what, took.Round(time.Second))
		}
		return nil, ctx.Err()
	}
	b, rerr := readEnvFile(envFile)
	if rerr != nil {
		status := "ended"
		var ee *exec.ExitError
		if errors.As(werr, &ee) {
			status = describeExit(werr)
		}
		if setup != "" {
			return fail(true, "your login shell (%s) %s before the setup was done (an `exit` in the setup or in a startup file?)", sh.name, status)
		}
		return fail(false, "your login shell (%s) %s without running tether's command (an `exec` or `exit` in a startup file?)", sh.name, status)
	}
	se, status, err := parseEnvFile(b)
	if err != nil {
		return fail(false, "your login shell (%s) gave a malformed environment: %v", sh.name, err)
	}
	if status != "0" {
		return fail(true, "the setup failed in your login shell (%s) with status %s", sh.name, termsafe.Clip(status, 64))
	}
	se.shell, se.took = sh.name, took
	return se, nil
}

// loginDriver is the shell's -c string: only paths, quoted in the shell's syntax.
func loginDriver(sh loginShell, bin, setupFile, envFile string) (string, error) {
	quote := shquote.Quote
	if sh.csh {
		quote = cshQuote
	}
	for _, p := range []string{bin, setupFile, envFile} {
		if p != "" && quote(p) == "" {
			return "", fmt.Errorf("the path %q cannot be quoted for %s", p, sh.name)
		}
	}
	dump := "exec " + quote(bin) + " " + LoginEnvArg + " " + quote(envFile)
	switch {
	case setupFile == "":
		return dump + " 0", nil
	case sh.csh:
		return "source " + quote(setupFile) + "; " + dump + " $status", nil
	default:
		return ". " + quote(setupFile) + "; " + dump + " $?", nil
	}
}

// cshQuote single-quotes s for csh, or returns "" when s holds what csh takes even
// inside single quotes (! history, a newline) or a quote.
func cshQuote(s string) string {
	if strings.ContainsAny(s, "'!\n\r\x00") {
		return ""
	}
	return "'" + s + "'"
}

// readEnvFile reads the env file (at most 16 MiB), refusing a symlink.
func readEnvFile(p string) ([]byte, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 16<<20))
}

// parseEnvFile reads what RunLoginEnvDump wrote: fields ending in NUL, the magic, the
// setup's status, the working directory, the umask (octal), then the environment.
func parseEnvFile(b []byte) (*shellEnv, string, error) {
	f := strings.Split(string(b), "\x00")
	if len(f) < 5 || f[0] != envFileMagic || f[len(f)-1] != "" {
		return nil, "", errors.New("not an environment file of this tether")
	}
	se := &shellEnv{dir: f[2], umask: -1}
	if m, err := strconv.ParseUint(f[3], 8, 32); err == nil && m <= 0o777 {
		se.umask = int(m)
	}
	for _, e := range f[4 : len(f)-1] {
		k, _, ok := strings.Cut(e, "=")
		// "_" is the shell's last command (our dump); TETHER_ is ours.
		if !ok || k == "" || k == "_" || strings.HasPrefix(k, "TETHER_") {
			continue
		}
		se.env = append(se.env, e)
	}
	if se.dir != "" && !filepath.IsAbs(se.dir) {
		se.dir = ""
	}
	return se, f[1], nil
}

// RunLoginEnvDump is the binary run at the end of the login shell:
//
//	tether _login-env FILE STATUS
//
// It writes STATUS (the setup's), its working directory, umask and environment to FILE
// (created 0600, never over an existing file or through a symlink) and exits 0.
func RunLoginEnvDump(args []string) int {
	if len(args) != 2 {
		fmt.Fprintf(os.Stderr, "tether: %s is internal to tether serve\n", LoginEnvArg)
		return 2
	}
	dir, _ := os.Getwd()
	um := syscall.Umask(0)
	syscall.Umask(um)
	var b bytes.Buffer
	status := strings.TrimSpace(args[1])
	if _, err := strconv.Atoi(status); err != nil {
		status = "?" + termsafe.Clip(status, 64)
	}
	for _, s := range []string{envFileMagic, status, dir, strconv.FormatInt(int64(um), 8)} {
		b.WriteString(s)
		b.WriteByte(0)
	}
	for _, e := range os.Environ() {
		if !strings.ContainsRune(e, 0) {
			b.WriteString(e)
			b.WriteByte(0)
		}
	}
	f, err := os.OpenFile(args[0], os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		fmt.Fprintf(os.Stderr, "tether: %v\n", err)
		return 1
	}
	_, err = f.Write(b.Bytes())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "tether: %v\n", err)
		os.Remove(args[0])
		return 1
	}
	return 0
}

// noiseFilter passes lines on, without what an interactive shell with no terminal
// says about it (bash: "cannot set terminal process group", "no job control in this
// shell"; dash: "can't access tty; job control turned off"; tcsh: "Warning: no access
// to tty", "Thus no job control…"; "logout"): tether caused those, not the user's files.
type noiseFilter struct {
	w       io.Writer
	partial []byte
}

func (n *noiseFilter) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			if len(n.partial) < 64<<10 {
				n.partial = append(n.partial, p...)
			}
			break
		}
		n.partial = append(n.partial, p[:i+1]...)
		n.emit()
		p = p[i+1:]
	}
	return total, nil
}

func (n *noiseFilter) emit() {
	if !shellNoise(string(n.partial)) {
		n.w.Write(n.partial)
	}
	n.partial = n.partial[:0]
}

func (n *noiseFilter) flush() {
	if len(n.partial) > 0 {
		n.emit()
	}
}

func shellNoise(l string) bool {
	t := strings.TrimSpace(l)
	return t == "logout" || strings.Contains(t, "cannot set terminal process group") ||
		strings.Contains(t, "no job control in this shell") ||
		strings.Contains(t, "can't access tty; job control turned off") || strings.HasPrefix(t, "Warning: no access to tty")
}

// loadSetup reads the setup script from --setup-file or the stdin frame, and makes
// the login shell's environment the app's. Mistakes are usage errors.
func (o *ServeOptions) loadSetup() error {
	switch {
	case o.SetupFile != "" && o.SetupStdin:
		return usagef("--setup-file and --setup-stdin both give the setup; use one")
	case o.SetupFile != "":
		s, err := readSetupFile(o.SetupFile)
		if err != nil {
			return err
		}
		o.Setup = s
	case o.SetupStdin:
		r := o.Stdin
		if r == nil {
			r = os.Stdin
		}
		s, err := wire.ReadSetupFrame(r)
		if err != nil {
			return err
		}
		o.Setup = s
	}
	if o.Setup != "" {
		if err := wire.CheckSetup(o.Setup); err != nil {
			return err
		}
		o.LoginShell = true
	}
	return nil
}

// readSetupFile reads a setup script that only this user (or root) may write: anyone
// else who could would run commands as this user.
func readSetupFile(path string) (string, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
	if err != nil {
		return "", usagef("reading --setup-file: %v", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.Mode().IsRegular():
		return "", usagef("--setup-file %s is not a regular file", path)
	case ok && int(st.Uid) != os.Getuid() && st.Uid != 0:
		return "", usagef("--setup-file %s belongs to another user (uid %d), who could make it run anything as you; use a file of your own", path, st.Uid)
	case fi.Mode().Perm()&0o022 != 0:
		return "", usagef("--setup-file %s can be written by other users (mode %04o), who could make it run anything as you; run `chmod go-w %s`", path, fi.Mode().Perm(), path)
	case fi.Size() > wire.MaxSetup:
		return "", usagef("--setup-file %s is larger than %d bytes", path, wire.MaxSetup)
	}
	b, err := io.ReadAll(io.LimitReader(f, wire.MaxSetup+1))
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// prepareShellEnv runs the login shell (and the setup) for the app's environment, then
// finds the preset on that shell's PATH. Without a setup, a login shell that fails
// leaves the plain environment, with a note; with one, the start fails with the
// shell's output.
func (o *ServeOptions) prepareShellEnv(ctx context.Context, dir string, out io.Writer, rep reporter, progress func(wire.Note)) error {
	timeout := loginShellTimeout
	if o.Setup != "" {
		timeout = o.ReadyTimeout
		progress(wire.Stepf("running the setup in your login shell"))
	} else {
		progress(wire.Stepf("reading your login shell's environment for the app"))
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	se, err := captureLoginEnv(cctx, dir, o.Setup, out, progress)
	var le *loginEnvError
	switch {
	case err == nil:
		o.shellEnv = se
		progress(wire.Stepf("the app's environment is your login shell's (%s, %s)", se.shell, se.took.Round(time.Millisecond)))
	case ctx.Err() != nil:
		return errors.New("interrupted while the login shell ran")
	case o.Setup == "" && errors.As(err, &le):
		progress(wire.Notef("%s; the app starts in the environment of a plain SSH command instead", le.msg))
		o.LoginShell = false
	default:
		f := wire.FailureOf(err)
		if le != nil || errors.As(err, &le) {
			// The setup failed, or the login shell it runs in: the advice is about --setup.
			f = wire.Fail(wire.FailSetupFailed, wire.Plain(le.msg), nil)
			f.AppOutput, f.OutputOf = le.tail, wire.OutputSetup
		}
		rep.failed(f)
		return f
	}
	if o.AppName != "" {
		return o.resolveApp()
	}
	return nil
}
