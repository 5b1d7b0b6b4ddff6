package remote

import (
	"os"
	"os/exec"
	"os/user"
	"strings"

	"github.com/tether-dev/tether/internal/didyoumean"
	"github.com/tether-dev/tether/wire"
)

// errNotFound: none of a preset's executables is on PATH (serve's own, or the login
// shell's when shell is set).
type errNotFound struct {
	p           Preset
	path, shell string
}

func (e errNotFound) Error() string { return e.Failure().Error() }

// Failure is the error as data: the machine and `tether apps HOST` held apart.
func (e errNotFound) Failure() *wire.Failure {
	what := "none of " + strings.Join(e.p.Execs(), ", ") + " was"
	if len(e.p.Execs()) == 1 {
		what = e.p.Execs()[0] + " was not"
	}
	where, path := "PATH", e.path
	if e.shell != "" {
		where = "the PATH of your login shell (" + e.shell + ")"
	} else if path == "" {
		path = os.Getenv("PATH")
	}
	// The advice comes before the PATH, which may be long enough to be clipped.
	return wire.Fail(wire.FailAppMissing, wire.Textf("%s is not installed on %v: %s found on %s", e.p.Name, wire.ThisMachine, what, where),
		wire.Textf("install it (%s), load it with --setup 'module load NAME' (or 'conda activate ENV'), or run %v to see which apps %v has (PATH: %s)",
			e.p.Install, wire.TetherHost("apps"), wire.ThisMachine, path))
}

// resolvedPreset is a preset made concrete: the app to run (spec), or the directory
// to serve (static), or the built-in page (neither).
type resolvedPreset struct {
	preset  Preset
	flavour string
	spec    *AppSpec
	static  string
}

// resolvePreset finds the preset's app with lookPath and builds its AppSpec from the
// extra arguments. Mistakes in the arguments are usage errors.
func resolvePreset(p Preset, extra []string, baseURL string, lookPath func(string) (string, error)) (*resolvedPreset, error) {
	return resolvePresetIn(p, extra, baseURL, lookPath, nil)
}

// resolvePresetIn is resolvePreset in the login shell's environment se (nil: serve's
// own), where a flavour's executable may be asked what it has (JupyterUI).
func resolvePresetIn(p Preset, extra []string, baseURL string, lookPath func(string) (string, error), se *shellEnv) (*resolvedPreset, error) {
	arg, rest := "", extra
	if p.Arg != nil {
		arg = p.Arg.Default
		if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
			arg, rest = rest[0], rest[1:]
		}
	}
	if p.NoExtraArgs && len(rest) > 0 {
		what := "no arguments"
		if p.Arg != nil {
			what = "one argument, " + p.Arg.Name
		}
		return nil, usagef("the %s preset takes %s; got %q", p.Name, what, strings.Join(extra, " "))
	}
	if strings.ContainsRune(arg, 0) {
		return nil, usagef("the %s argument contains a NUL byte", p.Name)
	}
	if p.RootOnly && baseURL != "/" {
		return nil, usagef("%s cannot be served under a path prefix; drop --base-url %s", p.Name, baseURL)
	}
	r := &resolvedPreset{preset: p}
	switch p.Kind {
	case KindBuiltin:
		return r, nil
	case KindStatic:
		r.static = arg
		return r, nil
	}
	var noUI error
	for _, f := range p.Flavours {
		path, err := lookPath(f.Exec)
		if err != nil {
			continue
		}
		ui := flavourUI{}
		if f.JupyterUI {
			if ui, err = jupyterFlavourUI(p, path, se); err != nil {
				noUI = err
				continue
			}
		}
		r.flavour = f.Name + ui.suffix
		argv := []string{path}
		sawArgs := false
		for _, a := range f.Command[1:] {
			switch {
			case a == "{args}":
				argv = append(argv, rest...)
				sawArgs = true
			case a == "{arg}" && arg == "":
			default:
				argv = append(argv, a)
			}
		}
		if baseURL != "/" {
			argv = append(argv, p.BaseURLArgs...)
		}
		if !sawArgs {
			argv = append(argv, rest...)
		}
		vars := map[string]string{"arg": arg, "user": currentUser(), "ui_page": ui.page}
		spec := &AppSpec{Command: argv, Bind: p.Bind, Env: p.Env, Header: p.Header, ReadyPath: p.ReadyPath,
			Vars: vars, Files: p.Files, Host: p.Host, UIPath: ui.check}
		r.spec = spec
		return r, nil
	}
	if noUI != nil {
		return nil, noUI
	}
	return nil, errNotFound{p: p}
}

// currentUser is the login name rserver wants (--server-user, USER).
func currentUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return os.Getenv("USER")
}

// presetByName resolves --app NAME for serve: an unknown name is a usage error
// listing the known ones.
func presetByName(name string) (Preset, error) {
	if p, ok := wire.LookupPreset(name); ok {
		return p, nil
	}
	guess := ""
	if near := didyoumean.Closest(name, wire.PresetNames()); len(near) > 0 {
		guess = didyoumean.Phrase(near) + " "
	}
	return Preset{}, usagef("unknown app %q; %sthe presets are %s (`tether apps` describes them); to run a command use `-- COMMAND`", name, guess, strings.Join(wire.PresetNames(), ", "))
}

// lookPathFunc is exec.LookPath; tests replace it.
var lookPathFunc = exec.LookPath
