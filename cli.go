package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/alecthomas/kong"

	"github.com/tether-dev/tether/remote"
	"github.com/tether-dev/tether/wire"
)

// Env is what every command gets besides its flags: the build's version and where its
// output goes, so tests can capture it.
type Env struct {
	Version string
	Stdout  io.Writer
	Stderr  io.Writer
}

// CLI is the command line; each command's flags and Run live with the package that
// owns it.
type CLI struct {
	Serve   ServeCmd   `cmd:"" help:"Run a guarded server in front of an app on this machine (the remote side)."`
	Launch  LaunchCmd  `cmd:"" help:"Start a web app on a remote machine and open it in your browser, over SSH."`
	Attach  AttachCmd  `cmd:"" help:"Reopen a session running on a remote machine (from any laptop that can ssh there)."`
	Demo    DemoCmd    `cmd:"" help:"The whole flow with nothing to set up: a throwaway SSH server on 127.0.0.1 plays the remote."`
	Host    HostCmd    `cmd:"" help:"Offer this machine through a relay to launchers (--relay URL portal:ID), when it accepts no inbound SSH."`
	Ls      LsCmd      `cmd:"" help:"List your tether sessions on this machine, or on HOST."`
	Stop    StopCmd    `cmd:"" help:"Stop a tether session on this machine, or on HOST."`
	Logs    LogsCmd    `cmd:"" help:"Print a session's app output, on this machine or on HOST."`
	Forward ForwardCmd `cmd:"" help:"Forward a local port to a port of yours on HOST's loopback (raw TCP: a database, a debugger), through a session."`
	Apps    AppsCmd    `cmd:"" help:"List the app presets (jupyter, code-server, shiny, ...), or which of them HOST has."`
	HashKey HashKeyCmd `cmd:"" name:"hash-key" help:"Read an access key on stdin (or type it) and print its salted hash, for a team server's --access file."`
	Relay   RelayCmd   `cmd:"" help:"Run a relay that machines with no inbound SSH dial out to, or print a token for it."`
	Version VersionCmd `cmd:"" help:"Print the version."`
	Batch   BatchCmd   `cmd:"" hidden:"" help:"Internal: the login node's side of launch --slurm, --sge, --pbs, --lsf and --batch."`

	completionCmds // tether completion (cli_completion.go)

	ShowVersion versionFlag `name:"version" help:"Print the version, the commit and the Go version, and exit."`
}

// VersionCmd prints the version text, as --version does.
type VersionCmd struct{}

// Run prints the version.
func (VersionCmd) Run(env *Env) error {
	_, err := fmt.Fprint(env.Stdout, versionText(env.Version, commit, readBuildInfo()))
	return err
}

// LsCmd is `tether ls [--json] [--prune]` here, or `tether ls HOST [--json] [--prune]`.
type LsCmd struct {
	JSON       bool   `name:"json" help:"Print an array of ready records with their state (tokens included; with HOST, local_port where this laptop remembers one; a failure as one JSON line)."`
	JSONNotes  bool   `name:"json-notes" hidden:"" help:"Internal: notes and the failure on stderr as JSON lines, for a launcher."`
	ShowToken  bool   `name:"show-token" help:"Show each session's token in the table (hidden by default: ls output ends up in screen shares and pasted logs)."`
	Prune      bool   `help:"Remove dead, app-exited and ended sessions (their records and logs), here or on HOST."`
	ConfigFile string `short:"F" name:"ssh-config" placeholder:"FILE" help:"Read this ssh_config instead of ~/.ssh/config (with HOST)."`
	sshFlag
	Args []string `arg:"" optional:"" name:"host" help:"A remote host (an ssh destination)."`
}

// Run lists the sessions.
func (c *LsCmd) Run(ctx context.Context, env *Env) error {
	switch len(c.Args) {
	case 0:
		err := remote.Ls(ctx, remote.LsOptions{JSON: c.JSON, JSONNotes: c.JSONNotes, Prune: c.Prune, ShowToken: c.ShowToken, Stdout: env.Stdout, Stderr: env.Stderr})
		return reported(err, env, c.JSON, c.JSONNotes)
	case 1:
		return lsHost(ctx, env, c.Args[0], hostFlags{ConfigFile: c.ConfigFile, sshFlag: c.sshFlag}, c.JSON, c.Prune, c.ShowToken)
	}
	return &usageError{msg: "ls takes at most one argument, a HOST"}
}

// StopCmd is `tether stop ID|NAME|--all`, or `tether stop HOST ID|NAME|--all`.
type StopCmd struct {
	All        bool   `help:"Stop every session."`
	JSON       bool   `name:"json" hidden:"" help:"Internal: each stopped session as a JSON line on stdout, for a launcher."`
	JSONNotes  bool   `name:"json-notes" hidden:"" help:"Internal: notes and the failure on stderr as JSON lines, for a launcher."`
	ConfigFile string `short:"F" name:"ssh-config" placeholder:"FILE" help:"Read this ssh_config instead of ~/.ssh/config (with HOST)."`
	sshFlag
	Args []string `arg:"" optional:"" name:"id" help:"The session's id or name; HOST ID for a remote machine."`
}

// Run stops sessions.
func (c *StopCmd) Run(ctx context.Context, env *Env, kctx *kong.Context) error {
	switch {
	case len(c.Args) == 2 && !c.All:
		return stopHost(ctx, env, c.Args[0], hostFlags{ConfigFile: c.ConfigFile, sshFlag: c.sshFlag}, c.Args[1], false)
	case len(c.Args) == 1 && c.All:
		return stopHost(ctx, env, c.Args[0], hostFlags{ConfigFile: c.ConfigFile, sshFlag: c.sshFlag}, "", true)
	case len(c.Args) > 2 || len(c.Args) == 2 && c.All:
		return &usageError{msg: "stop takes a session id or name, or --all (and a HOST first for a remote machine)"}
	}
	target := ""
	if len(c.Args) == 1 {
		target = c.Args[0]
	}
	stop := func() error {
		err := remote.Stop(ctx, remote.StopOptions{Target: target, All: c.All, JSON: c.JSON, JSONNotes: c.JSONNotes, Stdout: env.Stdout, Stderr: env.Stderr})
		return reported(err, env, false, c.JSONNotes)
	}
	if target != "" && !dashed(kctx) {
		return oneWord("stop", target, hostFlags{ConfigFile: c.ConfigFile, sshFlag: c.sshFlag}, stop)
	}
	return stop()
}

// LogsCmd is `tether logs ID|NAME [-f]`, or `tether logs HOST ID|NAME [-f]`.
type LogsCmd struct {
	Follow     bool   `short:"f" help:"Keep printing the app's output until the session ends."`
	JSONNotes  bool   `name:"json-notes" hidden:"" help:"Internal: the failure on stderr as a JSON line, for a launcher."`
	ConfigFile string `short:"F" name:"ssh-config" placeholder:"FILE" help:"Read this ssh_config instead of ~/.ssh/config (with HOST)."`
	sshFlag
	Args []string `arg:"" name:"id" help:"The session's id or name; HOST ID for a remote machine."`
}

// Run prints the logs.
func (c *LogsCmd) Run(ctx context.Context, env *Env, kctx *kong.Context) error {
	switch len(c.Args) {
	case 1:
		logs := func() error {
			err := remote.Logs(ctx, remote.LogsOptions{Target: c.Args[0], Follow: c.Follow, Stdout: env.Stdout, Stderr: env.Stderr})
			return reported(err, env, false, c.JSONNotes)
		}
		if dashed(kctx) {
			return logs()
		}
		return oneWord("logs", c.Args[0], hostFlags{ConfigFile: c.ConfigFile, sshFlag: c.sshFlag}, logs)
	case 2:
		return logsHost(ctx, env, c.Args[0], hostFlags{ConfigFile: c.ConfigFile, sshFlag: c.sshFlag}, c.Args[1], c.Follow)
	default:
		return &usageError{msg: "logs takes a session id or name (and a HOST first for a remote machine)"}
	}
}

// ServeCmd is `tether serve`: see DESIGN.md's command-line contract.
type ServeCmd struct {
	Listen       string        `placeholder:"ADDR" help:"Also listen on this TCP address, e.g. 127.0.0.1:0 (beyond loopback only with a token)."`
	Socket       string        `placeholder:"PATH" help:"Listen on this Unix socket instead of server.sock in the session directory."`
	TokenFile    string        `name:"token-file" placeholder:"F" help:"Read the token from this file (mode 0600) instead of TETHER_TOKEN or a fresh one."`
	BaseURL      string        `name:"base-url" placeholder:"/p" default:"/" help:"Serve under this path prefix."`
	TLS          bool          `name:"tls" help:"Serve HTTPS with a self-signed certificate (its SHA-256 goes into the ready record)."`
	TLSCert      string        `name:"tls-cert" placeholder:"F" help:"Serve HTTPS with this PEM certificate (the key may sit in the same file)."`
	TLSKey       string        `name:"tls-key" placeholder:"F" help:"The PEM key for --tls-cert."`
	AllowHost    []string      `name:"allow-host" placeholder:"NAME" sep:"none" help:"Accept this Host name besides loopback ones and, with --listen beyond loopback, its address and this machine's name (repeatable)."`
	IdleTimeout  time.Duration `name:"idle-timeout" placeholder:"DUR" help:"Stop the session after this long without requests or WebSocket traffic."`
	Name         string        `placeholder:"N" help:"A name for the session, usable wherever its id is."`
	JSON         bool          `name:"json" help:"Print the ready record as one line of JSON on stdout (a failure as one line too: error, hint, app_output)."`
	JSONNotes    bool          `name:"json-notes" hidden:"" help:"Internal: progress, notes and the failure on stderr as JSON lines, for a launcher."`
	Detach       bool          `help:"Run in the background and return once ready; the session outlives this terminal and SSH connection."`
	ReadyTimeout time.Duration `name:"ready-timeout" placeholder:"DUR" default:"5m" help:"How long to wait for the app to be ready."`
	ReadyFD      int           `name:"ready-fd" hidden:"" help:"Internal: the pipe a detached server reports on."`
	CancelOnEOF  bool          `name:"cancel-on-eof" hidden:"" help:"With --detach: if stdin closes before the server is ready, stop it and leave nothing (the launcher holds stdin open while it waits)."`
	Reuse        bool          `name:"reuse" hidden:"" help:"Internal: answer with a running session of the same app, if there is one, instead of starting another."`
	BatchSession string        `name:"batch-session" hidden:"" placeholder:"DIR" help:"Internal: serve a batch session as its job's step (the job script passes it)."`
	App          []string      `name:"app" placeholder:"APP" sep:"none" help:"Run a preset app (jupyter, code-server, shiny, static, ...; see tether apps); arguments after -- go to it. For a team server, NAME=PRESET, NAME=static:DIR or NAME='COMMAND' (repeatable): each app under {base_url}NAME/."`
	Access       string        `name:"access" placeholder:"FILE" help:"Serve a team: who may come in (access keys, OIDC sign-in by e-mail) and open which --app NAME=..., from this YAML file; reloaded on SIGHUP. Beyond loopback it needs --tls-cert/--tls-key."`
	LoginShell   bool          `name:"login-shell" help:"Start the app in the environment of your login shell, as a terminal starts it (profile, bashrc/zshrc/tcshrc, modules, conda): presets are looked for on its PATH (launch always asks for this)."`
	SetupFile    string        `name:"setup-file" placeholder:"FILE" help:"Run this script (a file only you may write) in your login shell right before the app, in the same shell, e.g. module load and conda activate; implies --login-shell. A failing script ends the start with its output."`
	SetupStdin   bool          `name:"setup-stdin" hidden:"" help:"Internal: read the setup script from stdin (one frame), as the launcher sends it."`
	appFlags
	exposeFlags
	portProxyFlags
	Command []string `arg:"" optional:"" name:"command" help:"The app's command line after --; may use {port}, {host}, {base_url}, {socket} and {app_secret_file}. With --app: the preset's extra arguments. None: the built-in app."`
}

// appFlags protect a generic COMMAND the way presets protect theirs.
type appFlags struct {
	AppSecretEnv string   `name:"app-secret-env" placeholder:"NAME" help:"Give the app a fresh per-session secret in this environment variable (never on its command line)."`
	AppHeader    []string `name:"app-header" placeholder:"'H: V'" sep:"none" help:"Set this header on every request forwarded to the app, e.g. 'Authorization: Bearer {app_secret}' (repeatable)."`
}

// exposeFlags: an app listening beyond loopback is refused unless asked for.
type exposeFlags struct {
	AllowExposed bool `name:"allow-exposed" help:"Run the app even if it listens beyond loopback (0.0.0.0, ::, a real address), where anyone who can reach the machine gets to it without the token (refused otherwise)."`
}

// portProxyFlags: who serves {base_url}proxy/.
type portProxyFlags struct {
	NoPortProxy bool `name:"no-port-proxy" help:"Leave {base_url}proxy/... and absproxy/... to the app (e.g. its own jupyter-server-proxy) instead of serving your other loopback ports there; tether forward still works."`
}

// Run starts the guarded server.
func (c *ServeCmd) Run(ctx context.Context, env *Env) error {
	w, err := c.wire()
	if err != nil {
		return reported(err, env, c.JSON, c.JSONNotes)
	}
	o := remote.ServeOptionsOf(w)
	o.Version, o.Stdout, o.Stderr = env.Version, env.Stdout, env.Stderr
	return reported(remote.Serve(ctx, o), env, c.JSON, c.JSONNotes)
}

// wire is the command line kong read, as the launcher writes it (wire.Serve): one
// grammar, which TestServeGrammar holds kong's flags to.
func (c *ServeCmd) wire() (wire.Serve, error) {
	s := wire.Serve{
		Listen: c.Listen, Socket: c.Socket, TokenFile: c.TokenFile, BaseURL: c.BaseURL,
		TLS: c.TLS, TLSCert: c.TLSCert, TLSKey: c.TLSKey, AllowHosts: c.AllowHost,
		IdleTimeout: c.IdleTimeout, Name: c.Name, JSON: c.JSON, JSONNotes: c.JSONNotes, Detach: c.Detach,
		ReadyTimeout: c.ReadyTimeout, ReadyFD: c.ReadyFD, CancelOnEOF: c.CancelOnEOF, Reuse: c.Reuse, BatchSession: c.BatchSession,
		SetupStdin: c.SetupStdin, SetupFile: c.SetupFile, LoginShell: c.LoginShell, Access: c.Access,
		AppSecretEnv: c.AppSecretEnv, AppHeaders: c.AppHeader, AllowExposed: c.AllowExposed,
		NoPortProxy: c.NoPortProxy, Command: c.Command,
	}
	for _, a := range c.App {
		if err := s.AddApp(a); err != nil {
			return wire.Serve{}, err
		}
	}
	return s, nil
}

// reported prints a failed command's failure as data (wire.Failure) where its caller
// reads it: one JSON line on stdout for --json (serve, ls) and the hidden batch
// commands, and with --json-notes on stderr in place of the "tether: …" line (which
// is then not printed).
func reported(err error, env *Env, onStdout, notes bool) error {
	if err == nil {
		return nil
	}
	f := wire.FailureOf(err)
	if onStdout {
		env.Stdout.Write(f.Line())
	}
	if !notes {
		return err
	}
	if !onStdout {
		env.Stderr.Write(f.Line())
	}
	return &silentError{err: err, code: f.ExitCode()}
}

// silentError is a failure already told (as data): nothing more is printed.
type silentError struct {
	err  error
	code int
}

func (e *silentError) Error() string { return e.err.Error() }
func (e *silentError) Unwrap() error { return e.err }
func (e *silentError) Silent() bool  { return true }
func (e *silentError) ExitCode() int { return e.code }

// usageError is a mistake in how tether was called, in the CLI's words: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }
func (e *usageError) ExitCode() int { return 2 }
