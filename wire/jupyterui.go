package wire

import "strings"

// Jupyter Server's UI, as a probe run in its Python says it (remote/jupyterui.go): serve
// runs the probe before it picks the jupyter preset's flavour, and the launcher's `tether
// apps HOST` script runs the same probe over SSH without tether there; both read its
// one line here.

// JupyterUITag starts the probe's line.
const JupyterUITag = jupyterUIWords + " "

const jupyterUIWords = "tether-jupyter-ui v1"

// JupyterUIProbe is Python that prints one line, "tether-jupyter-ui v1 LAB NB7
// CLASSIC", each field the UI's name when its package can be imported in the
// environment it runs in, else "-". Notebook 7 is told from Notebook 6 (whose package
// serves no jupyter_server extension) by its files: 7 has notebook/app.py and no
// notebookapp.py. It holds no backslash, newline, single quote or '!', so any login
// shell passes it through a single-quoted argument unchanged (`tether apps HOST` runs
// it too).
const JupyterUIProbe = `import importlib.util as u, os; f = u.find_spec; n = f("notebook"); ` +
	`d = n and n.origin and os.path.dirname(n.origin); ` +
	`e = lambda x: bool(d) and os.path.exists(os.path.join(d, x)); ` +
	`print("` + jupyterUIWords + `", "jupyterlab" if f("jupyterlab") else "-", ` +
	`"notebook7" if e("app.py") and not e("notebookapp.py") else "-", "nbclassic" if f("nbclassic") else "-")`

// JupyterUIs are the UIs JupyterUIProbe names, in the order they are preferred, with
// the page a session lands on and their names for people.
var JupyterUIs = []struct{ Key, Page, Name string }{
	{"jupyterlab", "lab", "JupyterLab"},
	{"notebook7", "tree", "Notebook 7"},
	{"nbclassic", "tree", "NbClassic"},
}

// ParseJupyterUI reads JupyterUIProbe's line from out: the first UI of JupyterUIs it
// names, or "" when it names none. ok is false when out holds no such line.
func ParseJupyterUI(out string) (key string, ok bool) {
	for _, l := range strings.Split(out, "\n") {
		rest, found := strings.CutPrefix(strings.TrimSpace(l), JupyterUITag)
		if !found {
			continue
		}
		ok = true
		have := strings.Fields(rest)
		for _, ui := range JupyterUIs {
			for _, h := range have {
				if h == ui.Key {
					return ui.Key, true
				}
			}
		}
	}
	return "", ok
}
