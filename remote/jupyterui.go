package remote

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/tether-dev/tether/wire"
)

// Jupyter Server without a web UI. `jupyter-server` alone serves only the REST API:
// its pages (/tree, /lab) come from extensions, NbClassic, Notebook 7 or JupyterLab,
// installed in the Python environment the server runs in. Without one, every page
// is Jupyter's 404, which is what a launch used to open. So the jupyter preset's
// Jupyter Server flavour counts only with a UI: its script's interpreter (the #! line,
// the same environment, the login shell's variables) is asked which of them it can
// import, and the session lands on that UI's page. Where the interpreter cannot be
// told (a wrapper script, a binary), the flavour is taken as before, and the page is
// checked once the server is ready (UIPath): a 404 there ends the start at once.

// jupyterUIName is a UI's name for people ("" for none).
func jupyterUIName(key string) (name, page string) {
	for _, ui := range wire.JupyterUIs {
		if ui.Key == key {
			return ui.Name, ui.Page
		}
	}
	return "", ""
}

// errNoUI: the preset's Jupyter Server was found, but its Python has no UI for it.
type errNoUI struct {
	p           Preset
	exe, python string
}

func (e errNoUI) Error() string { return e.Failure().Error() }

// Failure is the error as data: the machine held apart, for the launcher to word.
func (e errNoUI) Failure() *wire.Failure {
	return wire.Fail(wire.FailAppMissing, wire.Textf("%s is not usable on %v: Jupyter Server (%s) has no web UI (no JupyterLab, Notebook 7 or NbClassic in its Python)", e.p.Name, wire.ThisMachine, e.exe),
		wire.Textf("install one: %s -m pip install jupyterlab", e.python))
}

// scriptPython is the interpreter command of the Python script exe, from its #! line
// ("#!/usr/bin/python3", "#!/usr/bin/env python3" looked up on path from dir) or
// from pip's form for long paths (#!/bin/sh, then "”'exec' /long/path/python ...").
// An error: exe is not such a script (a wrapper, a binary), so its Python is unknown.
func scriptPython(exe, path, dir string) ([]string, error) {
	f, err := os.Open(exe)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(io.LimitReader(f, 4096), 4096)
	first, _ := br.ReadString('\n')
	second, _ := br.ReadString('\n')
	line, ok := strings.CutPrefix(strings.TrimSpace(first), "#!")
	if !ok {
		return nil, errors.New("no #! line")
	}
	argv := strings.Fields(line)
	if len(argv) == 0 {
		return nil, errors.New("an empty #! line")
	}
	if filepath.Base(argv[0]) == "env" {
		argv = argv[1:]
		for len(argv) > 0 && strings.HasPrefix(argv[0], "-") {
			argv = argv[1:] // env -S and the like
		}
		if len(argv) == 0 {
			return nil, errors.New("#! env names no program")
		}
		p, err := lookPathIn(argv[0], path, dir)
		if err != nil {
			return nil, err
		}
		argv[0] = p
	}
	if b := filepath.Base(argv[0]); b == "sh" || b == "bash" {
		rest, ok := strings.CutPrefix(strings.TrimSpace(second), "'''exec' ")
		if !ok {
			return nil, errors.New("a shell script")
		}
		rest = strings.TrimSpace(rest)
		var py string
		if q, ok := strings.CutPrefix(rest, `"`); ok {
			py, _, _ = strings.Cut(q, `"`)
		} else {
			py = strings.Fields(rest)[0]
		}
		argv = []string{py}
	}
	if !strings.Contains(filepath.Base(argv[0]), "python") {
		return nil, fmt.Errorf("its interpreter %s is not Python", argv[0])
	}
	return argv, nil
}

// probeJupyterUI asks the Python of exe which Jupyter UI it can import, in the
// environment env (nil: serve's own) from dir. python is its interpreter; err means the
// answer is unknown (key "" with no error is "none").
func probeJupyterUI(exe string, env []string, dir string) (key, python string, err error) {
	if env == nil {
		env = os.Environ()
	}
	argv, err := scriptPython(exe, pathVar(env), dir)
	if err != nil {
		return "", "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], append(argv[1:], "-c", wire.JupyterUIProbe)...)
	cmd.Env, cmd.Dir = env, dir
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		return "", argv[0], fmt.Errorf("%s: %w", argv[0], err)
	}
	key, ok := wire.ParseJupyterUI(out.String())
	if !ok {
		return "", argv[0], fmt.Errorf("%s printed no answer", argv[0])
	}
	return key, argv[0], nil
}

// flavourUI is what a flavour's UI check decided: the page the session lands on
// ({ui_page}), the flavour name's suffix, and the page to check once ready.
type flavourUI struct {
	page, suffix, check string
}

// jupyterFlavourUI decides on a Jupyter Server found at exe: its UI, or errNoUI. An
// exe that is not yet a path (the login shell has not answered) or whose Python cannot
// be asked is taken on trust, with NbClassic's page, checked once the server is ready.
func jupyterFlavourUI(p Preset, exe string, se *shellEnv) (flavourUI, error) {
	unknown := flavourUI{page: "tree", check: "tree"}
	if !filepath.IsAbs(exe) {
		return unknown, nil
	}
	var env []string
	dir := ""
	if se != nil {
		env, dir = se.env, se.dir
	}
	key, python, err := probeJupyterUI(exe, env, dir)
	switch {
	case err != nil:
		return unknown, nil
	case key == "":
		return flavourUI{}, errNoUI{p: p, exe: exe, python: python}
	}
	name, page := jupyterUIName(key)
	return flavourUI{page: page, suffix: " with " + name, check: page}, nil
}
