package remote

import (
	"io"
	"time"

	"github.com/tether-dev/tether/wire"
)

// ServeOptions are the options of `tether serve` (see DESIGN.md's command-line
// contract).
type ServeOptions struct {
	// Listen adds a TCP listener (e.g. 127.0.0.1:0). Beyond loopback it needs a token.
	Listen string
	// Socket listens on this Unix socket path instead of server.sock in the session
	// directory. The path must not exist.
	Socket string
	// TokenFile holds the token (else $TETHER_TOKEN, else a fresh one is generated).
	TokenFile string
	// BaseURL is the path prefix to serve under; default "/".
	BaseURL string
	// TLS serves HTTPS with a self-signed certificate, or TLSCert/TLSKey when given
	// (the key may sit in the certificate file).
	TLS             bool
	TLSCert, TLSKey string
	// AllowHosts are Host header names accepted besides loopback ones.
	AllowHosts []string
	// IdleTimeout stops the session after this long without a request or WebSocket
	// traffic; 0 never.
	IdleTimeout time.Duration
	// Name is a human name usable wherever the session id is.
	Name string
	// JSON prints the ready record as one line on Stdout instead of a banner on Stderr
	// (and a failure as one line too: the caller prints wire.FailureOf the error).
	// JSONNotes prints progress and notes on Stderr as JSON lines (wire.Note).
	JSON, JSONNotes bool
	// Detach runs the server in the background (a new session, detached from the
	// terminal and the SSH connection) and returns once it is ready.
	Detach bool
	// ReadyTimeout bounds the wait for the app to be ready; default 5 minutes.
	ReadyTimeout time.Duration
	// Command is the app's command line with placeholders; empty for the built-in app.
	Command []string
	// App, when set, describes the app instead of Command (presets).
	App *AppSpec
	// AppName picks a preset (`--app NAME`); Command then holds only the extra
	// arguments given after --.
	AppName string
	// AppSecretEnv and AppHeaders protect a generic COMMAND the way presets protect
	// theirs: the app gets a fresh secret in the environment variable AppSecretEnv, and
	// each "Name: value" header (value may use {app_secret}) is set on every request the
	// proxy forwards.
	AppSecretEnv string
	AppHeaders   []string
	// AllowExposed lets an app run that listens beyond loopback (0.0.0.0, ::, a real
	// address), where anyone who can reach the machine gets to it around the gate; it is
	// refused otherwise. Serve warns.
	AllowExposed bool
	// NoPortProxy leaves {base_url}proxy/ and absproxy/ to the app (its own jupyter-server-proxy, say)
	// instead of serving the user's other loopback ports there (ports.go); forward
	// streams (`tether forward`) are served either way.
	NoPortProxy bool
	// LoginShell starts the app in the environment of the user's login shell, as a
	// terminal starts it (interactive and login: /etc/profile and its profile.d, the
	// module system, ~/.profile, ~/.bashrc with its conda block, ~/.zshrc, ~/.tcshrc):
	// presets are looked for on that shell's PATH, and the app gets its environment,
	// working directory and umask. The launcher always asks for it: the environment of
	// an SSH exec has none of this. A shell that fails or hangs (30 s) falls back to
	// the plain environment with a note, unless there is a Setup.
	LoginShell bool
	// Setup is a script run in that login shell right before the app, in the same
	// shell (module load, conda activate, cd); a failing Setup ends the start with its
	// output. It comes from SetupFile (a file no one else may write) or SetupStdin (a
	// frame on stdin, see SetupFrame), never from a command line; it implies LoginShell.
	Setup      string
	SetupFile  string
	SetupStdin bool
	// Version is the tether version recorded in the ready record.
	Version string
	// CancelOnEOF, with Detach, abandons the start when stdin reaches EOF before the
	// server is ready: the caller (the launcher, over an SSH exec channel) went away,
	// so nobody would learn of the session. The background server is stopped and
	// nothing is left. Stdin is not read after ready.
	CancelOnEOF bool
	// Reuse, when a session of this user on this host runs the same app the same way
	// (reuse.go), answers with that session's record (Reused set) instead of starting
	// another: launch's "same app twice". A matching session still starting is waited
	// for.
	Reuse bool
	// Stdin is watched for CancelOnEOF; nil means os.Stdin.
	Stdin io.Reader
	// ReadyFD is set only in the background server that Detach starts: the file
	// descriptor on which it reports progress and then ready or failure.
	ReadyFD int
	// BatchSession is set only in a Slurm job's step (the script `tether slurm submit`
	// wrote): the session directory the submit made. The server then listens on the
	// node's address (TLS, token required) besides its Unix socket, records the node,
	// address and job id, and keeps the directory when it ends.
	BatchSession string
	// Apps are a team server's apps, "NAME=SPEC" each (wire.TeamApp), and Access its
	// --access file (team.go).
	Apps   []string
	Access string

	Stdout io.Writer
	Stderr io.Writer

	preset    *resolvedPreset // the resolved --app
	staticDir string          // the static preset's directory (absolute)
	shellEnv  *shellEnv       // the login shell's environment, once known
	team      *teamServe      // a team server's apps and policy (serve_team.go)
}

// LsOptions are the options of `tether ls`. JSONNotes, here and for stop and logs,
// says notes (and the main's failure line) on Stderr as JSON lines, for a launcher.
type LsOptions struct {
	JSON      bool // an array of ready records with state, on one line
	JSONNotes bool
	Prune     bool // remove dead and app-exited sessions first
	// ShowToken shows each session's token in the table (JSON always has it).
	ShowToken bool
	Stdout    io.Writer
	Stderr    io.Writer
}

// StopOptions are the options of `tether stop`.
type StopOptions struct {
	Target    string // id or name
	JSONNotes bool
	// JSON prints each stopped session as a wire.Stopped line on Stdout, and nothing
	// else there (not "no tether sessions on HOST"): the launcher words them.
	JSON   bool
	All    bool // every session of this user on this host
	Stdout io.Writer
	Stderr io.Writer
}

// LogsOptions are the options of `tether logs`.
type LogsOptions struct {
	Target string // id or name
	Follow bool   // keep printing what the app writes until the session ends
	Stdout io.Writer
	Stderr io.Writer
}

// wire is serve's command line for these options (the background server's, when
// detaching: see childArgs).
func (o *ServeOptions) wire() wire.Serve {
	return wire.Serve{
		Listen: o.Listen, Socket: o.Socket, TokenFile: o.TokenFile, BaseURL: o.BaseURL,
		TLS: o.TLS && o.TLSCert == "", TLSCert: o.TLSCert, TLSKey: o.TLSKey, AllowHosts: o.AllowHosts,
		IdleTimeout: o.IdleTimeout, Name: o.Name, JSON: o.JSON, JSONNotes: o.JSONNotes, Detach: o.Detach,
		ReadyTimeout: o.ReadyTimeout, ReadyFD: o.ReadyFD, CancelOnEOF: o.CancelOnEOF, Reuse: o.Reuse, BatchSession: o.BatchSession,
		SetupStdin: o.SetupStdin, SetupFile: o.SetupFile, LoginShell: o.LoginShell, App: o.AppName,
		AppSecretEnv: o.AppSecretEnv, AppHeaders: o.AppHeaders, AllowExposed: o.AllowExposed,
		NoPortProxy: o.NoPortProxy, Command: o.Command, Apps: o.Apps, Access: o.Access,
	}
}

// ServeOptionsOf is the options of serve's command line s.
func ServeOptionsOf(s wire.Serve) ServeOptions {
	return ServeOptions{
		Listen: s.Listen, Socket: s.Socket, TokenFile: s.TokenFile, BaseURL: s.BaseURL,
		TLS: s.TLS, TLSCert: s.TLSCert, TLSKey: s.TLSKey, AllowHosts: s.AllowHosts,
		IdleTimeout: s.IdleTimeout, Name: s.Name, JSON: s.JSON, JSONNotes: s.JSONNotes, Detach: s.Detach,
		ReadyTimeout: s.ReadyTimeout, ReadyFD: s.ReadyFD, CancelOnEOF: s.CancelOnEOF, Reuse: s.Reuse, BatchSession: s.BatchSession,
		SetupStdin: s.SetupStdin, SetupFile: s.SetupFile, LoginShell: s.LoginShell, AppName: s.App,
		AppSecretEnv: s.AppSecretEnv, AppHeaders: s.AppHeaders, AllowExposed: s.AllowExposed,
		NoPortProxy: s.NoPortProxy, Command: s.Command, Apps: s.Apps, Access: s.Access,
	}
}
