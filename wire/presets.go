package wire

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tether-dev/tether/tokenserver"
)

// Presets: the apps people launch, as data, and their names: what `launch HOST APP`
// sends (serve --app NAME), what `tether apps HOST` looks for on a remote without
// running tether there, and what serve runs. Running them is remote's (its
// resolvePreset). `tether serve --app NAME [-- EXTRA ARGS]`
// and `tether launch HOST NAME [-- EXTRA ARGS]` pick one; `tether apps` lists them.
// Each says how to find the app on the machine, the command line (a template expanded
// like AppSpec's), how the app is bound, how its own door is kept shut, its base-URL
// flag, its readiness path, its WebSocket subprotocols, which Host header it must see,
// and its idle behaviour. Nothing here is run through a shell.

// Bind says how an app is reached.
type Bind int

const (
	// BindAuto binds by socket when the command mentions {socket}, else by TCP port.
	BindAuto Bind = iota
	// BindTCP gives the app a free port on 127.0.0.1 ({port}, $PORT).
	BindTCP
	// BindSocket gives the app a Unix socket path in the session's private directory
	// ({socket}): other users of the machine cannot reach it.
	BindSocket
)

// AppFile is a file written into the session directory for the app.
type AppFile struct {
	// Name is a relative path inside the session directory (no "..").
	Name string
	// Content is written as is after placeholder expansion.
	Content string
}

// PresetKind says what a preset runs.
type PresetKind int

const (
	// KindApp runs a program found on PATH.
	KindApp PresetKind = iota
	// KindStatic serves a directory read-only with tether's own file server: no app
	// process at all.
	KindStatic
	// KindBuiltin is tether's built-in page (what serve runs when nothing is named).
	KindBuiltin
)

// Flavour is one way to run a preset's app; the first whose executable is found wins.
type Flavour struct {
	// Name says which app this is ("JupyterLab", "Jupyter Notebook").
	Name string
	// Exec is looked up on PATH (or is an absolute path), in the order of the list.
	Exec string
	// Command is the argv template. Its first element is replaced by the path found.
	// An element "{args}" is replaced by the user's extra arguments (none: removed);
	// without it they are appended. An element that is exactly "{arg}" is removed when
	// the preset's argument is empty.
	Command []string
	// JupyterUI: the executable is Jupyter Server, which has pages only with a UI in
	// its Python environment (jupyterui.go); {ui_page} is that UI's page.
	JupyterUI bool
}

// PresetArg is a preset's one optional positional argument: the first extra argument
// unless it starts with "-", else Default. It is the placeholder {arg}.
type PresetArg struct {
	Name    string // e.g. DIR, SCRIPT
	Default string
	Help    string
}

// Preset is an app tether knows how to start and guard.
type Preset struct {
	Name        string
	Description string
	Kind        PresetKind
	Flavours    []Flavour
	Bind        Bind
	// Env, Header, Files, ReadyPath and Host are as in remote's AppSpec: the app's own secret
	// ({app_secret}, {app_secret_file}) goes by Env or Files and comes back by Header.
	Env       []string
	Header    http.Header
	Files     []AppFile
	ReadyPath string
	Host      tokenserver.HostPolicy
	// BaseURLArgs are added after the command when --base-url is not "/". RootOnly
	// apps cannot live under a prefix: any other --base-url is refused.
	BaseURLArgs []string
	RootOnly    bool
	// Arg is the preset's positional argument, if any; NoExtraArgs refuses anything
	// beyond it.
	Arg         *PresetArg
	NoExtraArgs bool
	// Subprotocols are the WebSocket subprotocols the app's pages offer (the gate
	// relays them untouched, after taking out its own).
	Subprotocols []string
	// IdleTimeout is the session's default --idle-timeout (0: runs until stopped);
	// Idle says why, and what the app itself does when unused.
	IdleTimeout time.Duration
	Idle        string
	// Door says how the app's own door stays shut to other users of the machine.
	Door string
	// Verified says against which real app this preset was tested; empty when it was
	// built from documentation only.
	Verified string
	// Install says how to get the app.
	Install string
}

// jupyterEnv: the token by a 0600 file read verbatim (no newline), and Jupyter's
// runtime files (nbserver-PID.json holds the token; kernel connection files hold
// their keys) in the session directory, gone with it.
var jupyterEnv = []string{"JUPYTER_TOKEN_FILE={app_secret_file}", "JUPYTER_RUNTIME_DIR={session_dir}/jupyter"}

const jupyterDoor = "Unix socket in the 0700 session directory, and Jupyter's own token (a per-session secret in a 0600 file, JUPYTER_TOKEN_FILE) injected as `Authorization: token …` on every proxied request; the gate cuts it out of the pages Jupyter writes it into"

// shinyCode runs a Shiny app on a Unix socket (httpuv's pipe server, umask 077) with
// Shiny's shared secret. Paths and the secret come by environment, never spliced into
// the R code; the secret is removed from the environment before the app's code runs.
const shinyCode = `secret <- Sys.getenv("TETHER_APP_SECRET"); Sys.unsetenv("TETHER_APP_SECRET"); ` +
	`options(shiny.sharedSecret = secret); rm(secret); ` +
	`shiny::runApp(Sys.getenv("TETHER_APP_DIR"), port = structure(Sys.getenv("TETHER_APP_SOCKET"), mask = strtoi("077", 8L)), launch.browser = FALSE)`

// presets is the table. Order is the order `tether apps` lists.
var presets = []Preset{
	{
		Name:        "jupyter",
		Description: "Jupyter: JupyterLab, else the Notebook, else Jupyter Server with a UI",
		Flavours: []Flavour{
			{Name: "JupyterLab", Exec: "jupyter-lab", Command: []string{"jupyter-lab", "--no-browser", "--allow-root", "--sock={socket}", "--ServerApp.base_url={base_url}", "{args}"}},
			{Name: "Jupyter Notebook", Exec: "jupyter-notebook", Command: []string{"jupyter-notebook", "--no-browser", "--allow-root", "--sock={socket}", "--NotebookApp.base_url={base_url}", "--ServerApp.base_url={base_url}", "{args}"}},
			{Name: "Jupyter Server", Exec: "jupyter-server", Command: []string{"jupyter-server", "--no-browser", "--allow-root", "--sock={socket}", "--ServerApp.base_url={base_url}", "--ServerApp.default_url=/{ui_page}", "{args}"}, JupyterUI: true},
		},
		Bind:         BindSocket,
		Env:          jupyterEnv,
		Header:       http.Header{"Authorization": {"token {app_secret}"}},
		ReadyPath:    "api",
		Host:         tokenserver.HostLoopback,
		Subprotocols: []string{"v1.kernel.websocket.jupyter.org"},
		Idle:         "runs until stopped: kernels keep computing with no browser open (Jupyter culls nothing by default)",
		Door:         jupyterDoor,
		Verified:     "Jupyter Notebook 6.4.12 and Jupyter Server 1.23.3 with nbclassic 0.3.2 (Debian 12); JupyterLab not verified (not packaged in Debian 12)",
		Install:      "Debian: apt install jupyter-notebook (or jupyter-server python3-nbclassic); pip: pip install jupyterlab",
	},
	{
		Name:        "notebook",
		Description: "the Jupyter Notebook (6 or 7), else NbClassic",
		Flavours: []Flavour{
			{Name: "Jupyter Notebook", Exec: "jupyter-notebook", Command: []string{"jupyter-notebook", "--no-browser", "--allow-root", "--sock={socket}", "--NotebookApp.base_url={base_url}", "--ServerApp.base_url={base_url}", "{args}"}},
			{Name: "NbClassic", Exec: "jupyter-nbclassic", Command: []string{"jupyter-nbclassic", "--no-browser", "--allow-root", "--sock={socket}", "--ServerApp.base_url={base_url}", "{args}"}},
		},
		Bind:         BindSocket,
		Env:          jupyterEnv,
		Header:       http.Header{"Authorization": {"token {app_secret}"}},
		ReadyPath:    "api",
		Host:         tokenserver.HostLoopback,
		Subprotocols: []string{"v1.kernel.websocket.jupyter.org"},
		Idle:         "runs until stopped: kernels keep computing with no browser open",
		Door:         jupyterDoor,
		Verified:     "Jupyter Notebook 6.4.12 (Debian 12); Notebook 7 and NbClassic's own entry point not verified",
		Install:      "Debian: apt install jupyter-notebook; pip: pip install notebook",
	},
	{
		Name:        "code-server",
		Description: "VS Code in the browser; argument: a folder to open",
		Flavours: []Flavour{
			{Name: "code-server", Exec: "code-server", Command: []string{"code-server", "--config={session_dir}/code-server.yaml", "--auth=none", "--socket={socket}", "--socket-mode=600", "--disable-telemetry", "--disable-update-check", "{args}"}},
		},
		Bind: BindSocket,
		// Written first, so code-server never writes a config with a password of its own.
		Files:     []AppFile{{Name: "code-server.yaml", Content: ""}},
		ReadyPath: "healthz",
		Host:      tokenserver.HostPassThrough, // it compares WebSocket Origin with Host
		RootOnly:  true,
		Idle:      "runs until stopped: terminals and tasks keep running with no browser open",
		Door:      "Unix socket (mode 0600) in the 0700 session directory; code-server's own auth is off (--auth none), so the socket is the only way in",
		Verified:  "code-server 4.100.3 (npm, Node 20)",
		Install:   "npm: npm install --prefix DIR code-server@4.100.3 (Node 20), or code-server's own packages",
	},
	{
		Name:        "shiny",
		Description: "a Shiny app directory, run by R",
		Flavours: []Flavour{
			{Name: "R Shiny", Exec: "R", Command: []string{"R", "--no-save", "--no-restore", "--quiet", "-e", shinyCode}},
		},
		Bind:        BindSocket,
		Env:         []string{"TETHER_APP_DIR={arg}", "TETHER_APP_SOCKET={socket}", "TETHER_APP_SECRET={app_secret}"},
		Header:      http.Header{"Shiny-Shared-Secret": {"{app_secret}"}},
		ReadyPath:   "/",
		RootOnly:    true,
		Arg:         &PresetArg{Name: "DIR", Default: ".", Help: "the app's directory"},
		NoExtraArgs: true,
		Idle:        "runs until stopped; a browser session ends when its WebSocket closes",
		Door:        "Unix socket (httpuv pipe server, umask 077) in the 0700 session directory, and Shiny's shared secret (environment, removed before the app's code runs) injected as `Shiny-Shared-Secret` on every proxied request",
		Verified:    "R 4.2.2 with shiny 1.7.4 and httpuv 1.6.9 (Debian 12)",
		Install:     "Debian: apt install --no-install-recommends r-cran-shiny",
	},
	{
		Name:        "rstudio",
		Description: "RStudio Server, single-user (rserver)",
		Flavours: []Flavour{
			{Name: "RStudio Server", Exec: "rserver", Command: rserverCommand("rserver")},
			{Name: "RStudio Server", Exec: "/usr/lib/rstudio-server/bin/rserver", Command: rserverCommand("/usr/lib/rstudio-server/bin/rserver")},
		},
		Bind:     BindSocket,
		Env:      []string{"USER={user}"},
		Files:    []AppFile{{Name: "rstudio/db.conf", Content: "provider=sqlite\ndirectory={session_dir}/rstudio\n"}},
		Host:     tokenserver.HostPassThrough,
		Idle:     "runs until stopped (rsession has its own suspend timeout)",
		Door:     "Unix socket (--www-socket) in the 0700 session directory with --auth-none=1: the socket is the only way in. An rserver without --www-socket fails to start rather than listen on TCP unauthenticated",
		Verified: "",
		Install:  "Posit's rstudio-server package (not in Debian)",
	},
	{
		Name:        "tensorboard",
		Description: "TensorBoard on a log directory",
		Flavours: []Flavour{
			{Name: "TensorBoard", Exec: "tensorboard", Command: []string{"tensorboard", "--logdir={arg}", "--host=127.0.0.1", "--port={port}", "--load_fast=false", "{args}"}},
		},
		Bind:        BindTCP,
		BaseURLArgs: []string{"--path_prefix={base_path}"},
		ReadyPath:   "data/environment",
		Host:        tokenserver.HostPassThrough,
		Arg:         &PresetArg{Name: "LOGDIR", Default: ".", Help: "the log directory"},
		Idle:        "runs until stopped; nothing runs in the background but log reading",
		Door:        "OPEN: TensorBoard has neither a Unix socket nor auth, so it listens on 127.0.0.1:PORT where other users of the machine can read the dashboards (read-only); tether warns. --load_fast=false avoids a second unauthenticated port (the Rust data server)",
		Verified:    "",
		Install:     "pip: pip install tensorboard",
	},
	{
		Name:        "streamlit",
		Description: "a Streamlit script",
		Flavours: []Flavour{
			{Name: "Streamlit", Exec: "streamlit", Command: []string{"streamlit", "run", "{arg}", "--server.address=unix://{socket}", "--server.headless=true", "--server.baseUrlPath={base_url}", "--browser.gatherUsageStats=false", "{args}"}},
		},
		Bind:         BindSocket,
		ReadyPath:    "_stcore/health",
		Host:         tokenserver.HostPassThrough, // tornado compares WebSocket Origin with Host
		Arg:          &PresetArg{Name: "SCRIPT", Default: "app.py", Help: "the script to run"},
		Subprotocols: []string{"streamlit"},
		Idle:         "runs until stopped; a browser session lingers for server.disconnectedSessionTTL",
		Door:         "Unix socket (--server.address unix://…) in the 0700 session directory; Streamlit has no auth of its own, so the socket is the only way in",
		Verified:     "",
		Install:      "pip: pip install streamlit",
	},
	{
		Name:        "marimo",
		Description: "a marimo notebook (marimo edit)",
		Flavours: []Flavour{
			{Name: "marimo", Exec: "marimo", Command: []string{"marimo", "edit", "{arg}", "--headless", "--host=127.0.0.1", "--port={port}", "--token-password-file={app_secret_file}", "--skip-update-check", "{args}"}},
		},
		Bind:        BindTCP,
		BaseURLArgs: []string{"--base-url={base_path}"},
		Header:      http.Header{"Authorization": {"Basic {app_secret_basic}"}},
		ReadyPath:   "health",
		Host:        tokenserver.HostPassThrough,
		Arg:         &PresetArg{Name: "NOTEBOOK", Default: "", Help: "the notebook file (none: marimo's file browser)"},
		Idle:        "runs until stopped (marimo edit --timeout MINUTES stops it when idle)",
		Door:        "127.0.0.1:PORT with marimo's own token (a per-session secret in a 0600 file, --token-password-file) injected as HTTP Basic auth on every proxied request",
		Verified:    "",
		Install:     "pip: pip install marimo",
	},
	{
		Name:        "static",
		Description: "a directory, read-only, by tether's own file server",
		Kind:        KindStatic,
		Arg:         &PresetArg{Name: "DIR", Default: ".", Help: "the directory to serve"},
		NoExtraArgs: true,
		Idle:        "no process: the session runs until stopped",
		Door:        "no app process and nothing listening besides tether's own gate",
		Verified:    "built into tether",
		Install:     "nothing to install",
	},
	{
		Name:        "builtin",
		Description: "tether's built-in page (the default)",
		Kind:        KindBuiltin,
		NoExtraArgs: true,
		Idle:        "no process: the session runs until stopped",
		Door:        "no app process and nothing listening besides tether's own gate",
		Verified:    "built into tether",
		Install:     "nothing to install",
	},
}

func rserverCommand(exe string) []string {
	return []string{exe, "--server-user={user}", "--auth-none=1", "--www-socket={socket}", "--www-root-path={base_url}",
		"--www-frame-origin=same", "--www-verify-user-agent=0", "--server-data-dir={session_dir}/rstudio",
		"--database-config-file={session_dir}/rstudio/db.conf", "--secure-cookie-key-file={session_dir}/rstudio/secure-cookie-key", "{args}"}
}

// Presets returns the preset table (a copy).
func Presets() []Preset {
	out := make([]Preset, len(presets))
	copy(out, presets)
	return out
}

// LookupPreset finds a preset by name.
func LookupPreset(name string) (Preset, bool) {
	for _, p := range presets {
		if p.Name == name {
			return p, true
		}
	}
	return Preset{}, false
}

// PresetNames lists the presets' names.
func PresetNames() []string {
	var out []string
	for _, p := range presets {
		out = append(out, p.Name)
	}
	return out
}

// Execs lists the executables detection looks for, in order.
func (p Preset) Execs() []string {
	var out []string
	for _, f := range p.Flavours {
		out = append(out, f.Exec)
	}
	return out
}

// PresetInfo is a preset as `tether apps --json` prints it.
type PresetInfo struct {
	Name         string   `json:"name"`
	Description  string   `json:"description"`
	Looks        []string `json:"looks_for,omitempty"`
	Bind         string   `json:"bind"`
	Door         string   `json:"door"`
	ReadyPath    string   `json:"ready_path,omitempty"`
	BaseURL      string   `json:"base_url"`
	Host         string   `json:"host_header,omitempty"`
	Subprotocols []string `json:"subprotocols,omitempty"`
	Argument     string   `json:"argument,omitempty"`
	Idle         string   `json:"idle"`
	Verified     string   `json:"verified"`
	Install      string   `json:"install"`
}

// Info describes the preset for listings.
func (p Preset) Info() PresetInfo {
	in := PresetInfo{Name: p.Name, Description: p.Description, Looks: p.Execs(), Door: p.Door, ReadyPath: p.ReadyPath,
		Subprotocols: p.Subprotocols, Idle: p.Idle, Verified: p.Verified, Install: p.Install}
	switch {
	case p.Kind != KindApp:
		in.Bind = "none (served by tether itself)"
	case p.Bind == BindSocket:
		in.Bind = "unix socket {socket}"
	default:
		in.Bind = "127.0.0.1:{port}"
	}
	switch {
	case p.RootOnly:
		in.BaseURL = "/ only"
	case len(p.BaseURLArgs) > 0:
		in.BaseURL = strings.Join(p.BaseURLArgs, " ")
	default:
		in.BaseURL = "any (in the command line)"
	}
	if p.Kind == KindApp {
		in.Host = "pass-through"
		if p.Host == tokenserver.HostLoopback {
			in.Host = "loopback"
		}
	}
	if p.Arg != nil {
		in.Argument = p.Arg.Name + ": " + p.Arg.Help
		if p.Arg.Default != "" {
			in.Argument += " (default " + p.Arg.Default + ")"
		}
	}
	if in.Verified == "" {
		in.Verified = "not verified against the real app (built from its documentation)"
	}
	return in
}

// ListPresets is `tether apps`: the presets, as a table or JSON.
func ListPresets(w io.Writer, asJSON bool) error {
	var infos []PresetInfo
	for _, p := range presets {
		infos = append(infos, p.Info())
	}
	if asJSON {
		b, err := json.Marshal(infos)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "APP\tDESCRIPTION\tLOOKS FOR\tBIND")
	for _, in := range infos {
		looks := strings.Join(in.Looks, ", ")
		if looks == "" {
			looks = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", in.Name, in.Description, looks, in.Bind)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, "\n`tether launch HOST APP [-- EXTRA ARGS]` starts one; `tether apps HOST` shows which HOST has; `tether apps --json` says how each is guarded.")
	return err
}
