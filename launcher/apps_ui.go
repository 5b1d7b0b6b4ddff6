package launcher

import (
	"slices"
	"strings"

	"github.com/tether-dev/tether/wire"
)

// `tether apps HOST` and Jupyter Server's UI. A Jupyter Server with no UI in its Python
// environment (no JupyterLab, Notebook 7 or NbClassic) serves only 404 pages, so the
// jupyter preset does not count it (remote/jupyterui.go). The detection script asks the
// same question as serve: it reads the #! line of the jupyter-server it found (a
// Python, `/usr/bin/env python3` looked up on the same PATH, or pip's `'''exec'` form
// for long paths), runs that Python with wire.JupyterUIProbe, and passes its one
// line through. A jupyter-server whose Python it cannot tell (a wrapper script) is
// listed as found, as serve would take it.

// uiScript is the part of the detection script for the executables in execs that are
// Jupyter Servers: for the first found, the probe's line. Like the rest of the script
// it holds no backslash and no newline.
func uiScript(execs []string) string {
	name := ""
	for _, p := range wire.Presets() {
		for _, f := range p.Flavours {
			if f.JupyterUI && slices.Contains(execs, f.Exec) && name == "" {
				name = f.Exec
			}
		}
	}
	if name == "" {
		return ""
	}
	return `J=$(command -v ` + name + ` 2>/dev/null); if [ -f "$J" ] && [ -r "$J" ]; then L1=; L2=; { IFS= read -r L1; IFS= read -r L2; } < "$J"; I=; ` +
		`case "$L1" in "#!"*) set -- ${L1#??};; *) set --;; esac; ` +
		`case "${1##*/}" in ` +
		`env) shift; while [ $# -gt 0 ]; do case "$1" in -*) shift;; *) break;; esac; done; [ $# -gt 0 ] && I=$(command -v "$1" 2>/dev/null) && shift;; ` +
		`sh|bash) case "$L2" in "'''exec' "*) set -- ${L2#"'''exec' "}; I=$(printf '%s' "$1" | tr -d '"'); set --;; esac;; ` +
		`*) [ $# -gt 0 ] && I=$1 && shift;; esac; ` +
		`case "${I##*/}" in *python*) $T "$I" "$@" -c '` + wire.JupyterUIProbe + `' </dev/null 2>/dev/null | grep '^` + wire.JupyterUITag + `' | head -n 1;; esac; fi; `
}

// parseUI takes the probe's line for d; it reports whether line was one.
func (d *detection) parseUI(line string) bool {
	if !strings.HasPrefix(line, wire.JupyterUITag) {
		return false
	}
	d.ui, d.uiKnown = wire.ParseJupyterUI(line)
	return true
}

// matchPresetsUI is matchPresets with what the probe said: a Jupyter Server is named
// with its UI, or, with none, skipped for the preset's next flavour found, and the
// preset says what is missing when there is none.
func matchPresetsUI(d *detection) []AppFound {
	list := matchPresets(d.found)
	if !d.uiKnown {
		return list
	}
	for i, a := range list {
		p, _ := wire.LookupPreset(a.App)
		for j, f := range p.Flavours {
			if !f.JupyterUI || !a.Found || a.Flavour != f.Name {
				continue
			}
			if name := uiName(d.ui); name != "" {
				list[i].Flavour += " with " + name
				continue
			}
			next := AppFound{App: a.App, LooksFor: p.Execs(),
				Problem: f.Name + " (" + a.Path + ") has no web UI: none of JupyterLab, Notebook 7 or NbClassic in its Python; install one there"}
			for _, g := range p.Flavours[j+1:] {
				if path, ok := d.found[g.Exec]; ok {
					next = AppFound{App: a.App, Found: true, Flavour: g.Name, Path: path}
					break
				}
			}
			list[i] = next
		}
	}
	return list
}

// uiName is a UI's name for people, "" for none.
func uiName(key string) string {
	for _, ui := range wire.JupyterUIs {
		if ui.Key == key {
			return ui.Name
		}
	}
	return ""
}
