package launcher

import (
	"io"
	"time"

	"github.com/tether-dev/tether/tunnel"
)

// Options are what every command that talks to a HOST shares.
type Options struct {
	// Host is the ssh destination as the user typed it: an ssh_config alias, host or
	// user@host.
	Host string
	// ConfigFile replaces ~/.ssh/config and /etc/ssh/ssh_config, like `ssh -F`.
	ConfigFile string
	// RemoteBinary is uploaded instead of this executable or a cross build.
	RemoteBinary string
	// Version is this build's version; it names the remote install.
	Version string

	// SSHMode is the SSH transport: SSHNative (tether's own client), SSHOpenSSH (the
	// user's ssh, through a ControlMaster) or SSHAuto (the default: OpenSSH where the
	// host's config asks for what the native client lacks and ssh is there; native
	// otherwise).
	SSHMode string
	// ControlPersist is how long tether's own ssh master stays after its last use
	// (OpenSSH transport); 0: $TETHER_SSH_PERSIST, else 10 minutes.
	ControlPersist time.Duration

	// Relay, when set, reaches Host (portal:ID) through the relay at this URL (`tether
	// relay`) instead of ssh_config and TCP; SSH runs end to end inside its stream
	// (relay.go).
	Relay string
	// RelayToken is the client token for the portal ($TETHER_PORTAL_TOKEN): sent to
	// the relay, and to the portal's host as the SSH password.
	RelayToken string
	// RelayKnownHosts is the file portal host keys are pinned in (tether's own
	// known_hosts, in its config directory).
	RelayKnownHosts string
	// RelayDial opens the stream through the relay (relay.Dial; tests dial a
	// tunnel.Server directly).
	RelayDial RelayDialer
	// RelayTokenExpires is when RelayToken expires (zero: unknown): a connection the
	// host closed, or a login refused, after it is told as the token's expiry.
	RelayTokenExpires time.Time

	Stdout io.Writer
	Stderr io.Writer

	// SSH, when set, is used as the resolved host instead of reading ssh_config (demo,
	// tests).
	SSH *tunnel.Config
	// Prompter overrides the terminal prompter (tests).
	Prompter tunnel.Prompter
}

// ForwardOptions say how the session is brought to the local browser.
type ForwardOptions struct {
	// Port is the local port on 127.0.0.1; 0 lets the kernel choose.
	Port int
	// NoBrowser prints the URL with the token on stdout instead of opening a browser.
	NoBrowser bool
	// OpenFile opens a 0600 redirect file instead of putting the one-time code in the
	// opener's argv (laptops shared with other users).
	OpenFile bool
	// JSON prints one line {"url","local_port","session"} on stdout once the URL works.
	JSON bool
	// Rm stops the remote session when the launcher exits instead of leaving it running.
	Rm bool
	// Open opens a URL or file path in the browser; nil uses $TETHER_BROWSER,
	// $BROWSER, then the platform's opener (tests set it).
	Open func(target string) error
}

// LaunchOptions are `tether launch`'s.
type LaunchOptions struct {
	Options
	ForwardOptions
	// Name is the session's human name (serve --name).
	Name string
	// Command is the app's command line; empty for the built-in app. With App, the
	// preset's extra arguments.
	Command []string
	// App is a preset name (serve --app); empty for a command or the built-in app.
	App string
	// AppSecretEnv and AppHeaders are serve's --app-secret-env and --app-header.
	AppSecretEnv string
	AppHeaders   []string
	// AllowExposed is serve's --allow-exposed: run an app that listens beyond loopback.
	AllowExposed bool
	// NoPortProxy is serve's --no-port-proxy: {base_url}proxy/ and absproxy/ go to the app.
	NoPortProxy bool
	// Setup is a script run in the user's login shell on the remote (or in the batch
	// job on the node) right before the app, in the same shell (launch --setup). It
	// travels on the remote command's stdin, never on a command line.
	Setup string
	// ReadyTimeout is how long serve waits for the app (0: serve's default, 5 minutes).
	ReadyTimeout time.Duration
	// IdleTimeout, when set, stops the remote session after that long without use.
	IdleTimeout time.Duration
	// Batch, when its Kind is set, runs the session in a batch job on a compute node.
	Batch BatchOptions
	// New starts another session even when one of the same app runs on the host (by
	// default launch attaches to it: see reuse.go).
	New bool
	// SiteProfile, when set, is called once connected with the host's site profiles
	// (read over that connection) and returns the options to launch with and a line
	// saying what it applied. Only the remote side's options are taken from them:
	// Options and ForwardOptions stay as they were.
	SiteProfile func(SiteProfiles) (LaunchOptions, string, error)
}

// AttachOptions are `tether attach`'s.
type AttachOptions struct {
	Options
	ForwardOptions
	// Target is a session id, a unique id prefix, or a name; empty picks the only or
	// the newest running session.
	Target string
	// Batch says how a batch session is reached (ViaNodeSSH) and waited for
	// (DetachPending); Kind and Options are not used.
	Batch BatchOptions
}

// BatchOptions say how a session runs in a batch job on a compute node (launch
// --slurm, --sge, --pbs, --lsf, --batch) and how the launcher reaches it. A host
// profile sets Kind and Options as plain strings, as the flags do.
type BatchOptions struct {
	// Kind is the scheduler (slurm, sge, pbs, lsf, or a site wrapper's name, see
	// batch.Lookup); empty runs the session on the host itself.
	Kind string
	// Options are the scheduler's submit options as the user wrote them in one string
	// ("-p gpu -t 1:00:00"), split like a shell's words but never run through one
	// (SplitOptions) and checked before anything is submitted (BatchArgs).
	Options string
	// ViaNodeSSH reaches the server over SSH to its node (ProxyJump through the host)
	// and its Unix socket there, instead of host → node:port (direct-tcpip) with the
	// launcher speaking TLS pinned to the record's cert_sha256.
	ViaNodeSSH bool
	// DetachPending leaves a pending job queued on Ctrl-C instead of cancelling it.
	DetachPending bool
	// Confirm asks a yes/no question; ok is false when there is nobody to ask (no
	// terminal). nil asks on the terminal (stdin and stderr).
	Confirm func(question string) (yes, ok bool)
}

// LsOptions are `tether ls HOST`'s.
type LsOptions struct {
	Options
	JSON bool
	// Prune removes the host's dead, app-exited and ended sessions (ls --prune there).
	Prune bool
	// ShowToken shows each session's token in the table (--json always has it).
	ShowToken bool
}

// StopOptions are `tether stop HOST`'s.
type StopOptions struct {
	Options
	Target string
	All    bool
}

// LogsOptions are `tether logs HOST`'s.
type LogsOptions struct {
	Options
	Target string
	Follow bool
}

// AppsOptions are `tether apps HOST`'s.
type AppsOptions struct {
	Options
	JSON bool
	// Profiles, when set, lists the profiles after the apps (text output), given the
	// host's site profiles, read in the same exec as the apps.
	Profiles func(w io.Writer, site SiteProfiles) error
}

// DemoOptions are `tether demo`'s.
type DemoOptions struct {
	ForwardOptions
	Version string
	Stdout  io.Writer
	Stderr  io.Writer
}
