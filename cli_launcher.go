package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/kong"

	"github.com/tether-dev/tether/launcher"
	"github.com/tether-dev/tether/profile"
	"github.com/tether-dev/tether/relay"
	"github.com/tether-dev/tether/wire"
)

// hostFlags are the flags of every command that reaches a HOST over SSH.
type hostFlags struct {
	ConfigFile   string `short:"F" name:"ssh-config" placeholder:"FILE" help:"Read this ssh_config instead of ~/.ssh/config and /etc/ssh/ssh_config, like ssh -F."`
	RemoteBinary string `name:"remote-binary" placeholder:"FILE" type:"existingfile" help:"Upload this tether build to the remote instead of this executable or dist/tether-OS-ARCH."`
	sshFlag
}

// sshFlag picks the SSH transport (and, with --relay, the stream it rides on); every
// command that takes a HOST has it.
type sshFlag struct {
	SSH     string `name:"ssh" placeholder:"native|openssh|auto" help:"How to speak SSH: native (tether's own client), openssh (your ssh, sharing one login through a ControlMaster: MFA, Kerberos, tokens), auto (the default: openssh where your ssh config asks for what native lacks, e.g. ControlMaster or GSSAPI; otherwise native). Default: $TETHER_SSH, else auto."`
	Relay   string `name:"relay" placeholder:"URL" help:"Reach HOST, given as portal:ID, through this relay (wss://…; see tether relay), for a machine that takes no inbound SSH and runs tether host. Your client token goes in $TETHER_PORTAL_TOKEN, never on the command line; SSH runs end to end inside the relay, and the host's key is pinned on first use in tether's own known_hosts."`
	RelayCA string `name:"relay-ca" placeholder:"FILE" env:"TETHER_RELAY_CA" help:"With --relay: trust the relay's TLS certificate only if it chains to a certificate in this PEM file (a private CA, or the relay's self-signed certificate) instead of the system's roots."`
}

// forwardFlags say how a session is brought to the local browser.
type forwardFlags struct {
	Port      int  `placeholder:"N" help:"Local port on 127.0.0.1 (default: a free one)."`
	NoBrowser bool `name:"no-browser" help:"Print the URL with the token on stdout instead of opening a browser."`
	OpenFile  bool `name:"open-file" help:"Open the browser through a private redirect file, so not even the one-time code is on a command line (shared laptops)."`
	JSON      bool `name:"json" help:"Print one line of JSON {url, local_port, session} on stdout once the URL works."`
	Rm        bool `name:"rm" help:"Stop the remote session when tether exits instead of leaving it running."`
}

func (f forwardFlags) options() launcher.ForwardOptions {
	return launcher.ForwardOptions{Port: f.Port, NoBrowser: f.NoBrowser, OpenFile: f.OpenFile, JSON: f.JSON, Rm: f.Rm}
}

func hostOptions(env *Env, host string, h hostFlags) launcher.Options {
	o := launcher.Options{Host: host, ConfigFile: h.ConfigFile, RemoteBinary: h.RemoteBinary, SSHMode: h.SSH,
		Version: env.Version, Stdout: env.Stdout, Stderr: env.Stderr}
	if h.Relay != "" {
		o.Relay = h.Relay
		o.RelayToken = os.Getenv(launcher.PortalTokenEnv)
		o.RelayKnownHosts = relayKnownHosts()
		o.RelayDial = relayDialer(h.RelayCA)
		o.RelayTokenExpires = relay.Expiry(o.RelayToken)
	}
	return o
}

// relayKnownHosts is tether's own known_hosts, where portal host keys are pinned: next
// to the config file ($XDG_CONFIG_HOME/tether/known_hosts, else ~/.config/tether or
// %AppData%\tether); "" when there is no such directory.
func relayKnownHosts() string {
	p, err := profile.Path()
	if err != nil {
		return ""
	}
	return filepath.Join(filepath.Dir(p), "known_hosts")
}

// LaunchCmd is `tether launch HOST [flags] [APP] [-- COMMAND ARGS... | -- EXTRA ARGS...]`.
type LaunchCmd struct {
	hostFlags
	forwardFlags
	appFlags
	exposeFlags
	portProxyFlags
	batchFlags
	profileFlags
	lifecycleFlags
	Name         string        `placeholder:"N" help:"A name for the session, usable wherever its id is."`
	ReadyTimeout time.Duration `name:"ready-timeout" placeholder:"DUR" help:"How long to wait for the app to be ready, e.g. 15m for an app slower than the default 5m to start (with a batch job: once the job runs)."`
	Setup        string        `name:"setup" placeholder:"SCRIPT" help:"Run SCRIPT in your login shell on HOST (with a batch job: in the job, on the node) right before the app, in the same shell, e.g. 'module load cuda/12 && conda activate ml'. It travels over SSH on stdin, never on a command line; if it fails, the launch ends with its output."`
	Host         string        `arg:"" name:"host" help:"The remote machine: an ssh destination or ~/.ssh/config alias."`
	App          string        `arg:"" optional:"" name:"app" help:"A preset: jupyter, code-server, shiny, static, ... (see tether apps). None: tether's built-in app."`
	Command      []string      `arg:"" optional:"" name:"command" help:"After APP: its extra arguments (flags after --). Without APP, after --: a command line that may use {port}, {host}, {base_url}, {socket} and {app_secret_file}."`
}

// Run launches.
func (c *LaunchCmd) Run(ctx context.Context, env *Env, kctx *kong.Context) error {
	o, err := c.launchOptions(env, kctx)
	if err != nil {
		return err
	}
	o.SiteProfile = c.siteProfile(env, kctx)
	return launcher.Launch(ctx, o)
}

// launchOptions are the launcher's options from the flags (after the profiles).
func (c *LaunchCmd) launchOptions(env *Env, kctx *kong.Context) (launcher.LaunchOptions, error) {
	if err := presetTypo(c.Host, kctx.Args, c.positionals()); err != nil {
		return launcher.LaunchOptions{}, err
	}
	app, command := splitApp(kctx.Args, c.positionals())
	if app != "" && (c.AppSecretEnv != "" || len(c.AppHeader) > 0) {
		return launcher.LaunchOptions{}, &usageError{msg: "--app-secret-env and --app-header are for a command of your own (after --); the " + app + " preset guards its app itself"}
	}
	so, err := c.batchFlags.options()
	if err != nil {
		return launcher.LaunchOptions{}, err
	}
	if err := checkSetup(c.Setup, app, command); err != nil {
		return launcher.LaunchOptions{}, err
	}
	return launcher.LaunchOptions{
		Options: hostOptions(env, c.Host, c.hostFlags), ForwardOptions: c.forwardFlags.options(),
		Name: c.Name, Command: command, App: app, AppSecretEnv: c.AppSecretEnv, AppHeaders: c.AppHeader, AllowExposed: c.AllowExposed,
		ReadyTimeout: c.ReadyTimeout, Batch: so, NoPortProxy: c.NoPortProxy, Setup: c.Setup, New: c.New,
	}, nil
}

// checkSetup refuses a --setup that cannot be run, or has no app to prepare.
func checkSetup(setup, app string, command []string) error {
	if setup == "" {
		return nil
	}
	if err := wire.CheckSetup(setup); err != nil {
		return err
	}
	if p, ok := wire.LookupPreset(app); app == "" && len(command) == 0 || ok && p.Kind != wire.KindApp {
		what := "tether's built-in page"
		if app != "" {
			what = "the " + app + " preset"
		}
		return &usageError{msg: "--setup prepares the app's environment, but " + what + " runs no app; drop --setup, or name an app"}
	}
	return nil
}

// positionals are the words after HOST as given (kong splits them between App and
// Command, whatever came before or after --).
func (c *LaunchCmd) positionals() []string {
	if c.App == "" {
		return c.Command
	}
	return append([]string{c.App}, c.Command...)
}

// splitApp tells `launch HOST APP [-- EXTRA]` from `launch HOST -- COMMAND`: a preset
// name given before any -- selects the preset, and the positionals after it are its
// extra arguments. Everything after -- is taken literally, so `-- jupyter lab` runs the
// command jupyter; so does a first positional that names no preset.
func splitApp(raw, positionals []string) (app string, rest []string) {
	after := 0 // positionals that came after --
	for i, a := range raw {
		if a == "--" {
			after = len(raw) - i - 1
			break
		}
	}
	if len(positionals)-after <= 0 {
		return "", positionals
	}
	if _, ok := wire.LookupPreset(positionals[0]); !ok {
		return "", positionals
	}
	return positionals[0], positionals[1:]
}

// AppsCmd is `tether apps [--json]`, or `tether apps HOST [--json]`.
type AppsCmd struct {
	appsProfiles
	JSON       bool   `name:"json" help:"Print JSON instead of a table."`
	ConfigFile string `short:"F" name:"ssh-config" placeholder:"FILE" help:"Read this ssh_config instead of ~/.ssh/config (with HOST)."`
	sshFlag
	Args []string `arg:"" optional:"" name:"host" help:"A remote host: show which presets are installed there (over one SSH exec)."`
}

// Run lists the presets, or what HOST has of them.
func (c *AppsCmd) Run(ctx context.Context, env *Env) error {
	switch len(c.Args) {
	case 0:
		return wire.ListPresets(env.Stdout, c.JSON)
	case 1:
		return launcher.Apps(ctx, launcher.AppsOptions{Options: hostOptions(env, c.Args[0], hostFlags{ConfigFile: c.ConfigFile, sshFlag: c.sshFlag}), JSON: c.JSON,
			Profiles: c.profilesLister(env)})
	}
	return &usageError{msg: "apps takes at most one argument, a HOST"}
}

// batchFlags run the session in a batch job on a compute node, HOST being the
// cluster's login node: one flag per scheduler, each taking the submit command's
// options as one string, and --batch for a site's wrapper.
type batchFlags struct {
	Slurm         schedOptions `name:"slurm" placeholder:"\"SBATCH OPTIONS\"" help:"Run the app in a Slurm batch job on a compute node, HOST being the login node; the options are sbatch's, split like a shell's words but never run through one, e.g. \"-p gpu --gres=gpu:1 -t 4:00:00\" (\"\" for the defaults)."`
	SGE           schedOptions `name:"sge" placeholder:"\"QSUB OPTIONS\"" help:"Like --slurm, for Grid Engine: the options are its qsub's, e.g. \"-q all.q -l h_rt=4:00:00\"."`
	PBS           schedOptions `name:"pbs" placeholder:"\"QSUB OPTIONS\"" help:"Like --slurm, for PBS Pro and OpenPBS (unverified: written from their documentation): the options are its qsub's, e.g. \"-q workq -l walltime=4:00:00\"."`
	LSF           schedOptions `name:"lsf" placeholder:"\"BSUB OPTIONS\"" help:"Like --slurm, for LSF (unverified: written from its documentation): the options are bsub's, e.g. \"-q normal -W 4:00\"."`
	Batch         schedOptions `name:"batch" placeholder:"\"NAME OPTIONS\"" help:"Like --slurm, through the site's wrapper tether-batch-NAME on HOST (or a scheduler by name: slurm, sge, pbs, lsf); the first word names it, the rest are its options."`
	ViaNodeSSH    bool         `name:"via-node-ssh" help:"With a batch job: reach the node over SSH (ProxyJump through HOST, as the User HOST logs in as) and the server's Unix socket there, where the site allows SSH to nodes running your jobs."`
	DetachPending bool         `name:"detach-pending" help:"With a batch job: Ctrl-C while the job waits in the queue leaves it queued (come back with tether attach) instead of cancelling it."`
}

// options are the launcher's batch options: which scheduler, and its options as
// given (the launcher splits and checks them).
func (f batchFlags) options() (launcher.BatchOptions, error) {
	so := launcher.BatchOptions{ViaNodeSSH: f.ViaNodeSSH, DetachPending: f.DetachPending}
	set := []string{}
	for _, c := range []struct {
		flag string
		o    schedOptions
		kind string
	}{{"--slurm", f.Slurm, "slurm"}, {"--sge", f.SGE, "sge"}, {"--pbs", f.PBS, "pbs"}, {"--lsf", f.LSF, "lsf"}, {"--batch", f.Batch, ""}} {
		if !c.o.set {
			continue
		}
		set = append(set, c.flag)
		so.Kind, so.Options = c.kind, c.o.value
		if c.kind == "" {
			name, rest, _ := strings.Cut(strings.TrimSpace(c.o.value), " ")
			if name == "" {
				return so, &usageError{msg: "--batch needs the scheduler's name first, e.g. --batch \"mysite -q gpu\""}
			}
			so.Kind, so.Options = name, rest
		}
	}
	switch {
	case len(set) > 1:
		return so, &usageError{msg: strings.Join(set, " and ") + " each pick a scheduler; give one"}
	case len(set) == 0 && (f.ViaNodeSSH || f.DetachPending):
		return so, &usageError{msg: "--via-node-ssh and --detach-pending go with a batch job: --slurm, --sge, --pbs, --lsf or --batch \"OPTIONS\""}
	case len(set) == 1:
		if _, _, err := launcher.BatchArgs(so.Kind, so.Options); err != nil {
			return so, err
		}
	}
	return so, nil
}

// AttachCmd is `tether attach HOST [ID|NAME] [flags]`.
type AttachCmd struct {
	hostFlags
	forwardFlags
	attachSlurmFlags
	Host   string `arg:"" name:"host" help:"The remote machine: an ssh destination or ~/.ssh/config alias."`
	Target string `arg:"" optional:"" name:"id" help:"The session's id (or a unique prefix) or name; default: the only or newest running one."`
}

// attachSlurmFlags say how attach reaches a batch session.
type attachSlurmFlags struct {
	ViaNodeSSH bool `name:"via-node-ssh" help:"For a batch session: reach its node over SSH (ProxyJump through HOST) and the server's Unix socket there (a session launched with --via-node-ssh remembers it)."`
}

// Run attaches.
func (c *AttachCmd) Run(ctx context.Context, env *Env) error {
	return launcher.Attach(ctx, launcher.AttachOptions{
		Options: hostOptions(env, c.Host, c.hostFlags), ForwardOptions: c.forwardFlags.options(), Target: c.Target,
		Batch: launcher.BatchOptions{ViaNodeSSH: c.ViaNodeSSH},
	})
}

// ForwardCmd is `tether forward HOST [ID|NAME] PORT [--local-port N]`.
type ForwardCmd struct {
	hostFlags
	LocalPort  int      `name:"local-port" placeholder:"N" help:"Listen on this port of 127.0.0.1 (default: PORT's number when it is free here, else a free one)."`
	JSON       bool     `name:"json" help:"Print one line of JSON {local_port, port, session} on stdout once the local port listens."`
	ViaNodeSSH bool     `name:"via-node-ssh" help:"For a Slurm session: reach its node over SSH (ProxyJump through HOST) and the server's Unix socket there."`
	Host       string   `arg:"" name:"host" help:"The remote machine: an ssh destination or ~/.ssh/config alias."`
	Args       []string `arg:"" name:"id-port" help:"[ID|NAME] PORT: the session (default: the only or newest running one) and the port of yours on HOST's loopback."`
}

// Run forwards.
func (c *ForwardCmd) Run(ctx context.Context, env *Env) error {
	target, portArg := "", ""
	switch len(c.Args) {
	case 1:
		portArg = c.Args[0]
	case 2:
		target, portArg = c.Args[0], c.Args[1]
	default:
		return &usageError{msg: "forward takes HOST, then a session id or name (optional) and a PORT, e.g. tether forward gpu-box 5432"}
	}
	port, ok := parsePortArg(portArg)
	if !ok {
		return &usageError{msg: fmt.Sprintf("%q is not a port number (1-65535, plain digits); give the port on %s's loopback, e.g. tether forward %s 5432", portArg, c.Host, c.Host)}
	}
	return launcher.ForwardPort(ctx, launcher.ForwardPortOptions{
		Options: hostOptions(env, c.Host, c.hostFlags), Target: target, Port: port, LocalPort: c.LocalPort, JSON: c.JSON,
		Batch: launcher.BatchOptions{ViaNodeSSH: c.ViaNodeSSH},
	})
}

// parsePortArg reads a port as the server's forward path takes it: plain digits, no
// sign, no leading zero, 1-65535 ("+80" and "080" are not quietly port 80).
func parsePortArg(a string) (int, bool) {
	if a == "" || len(a) > 5 || a[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(a); i++ {
		if a[i] < '0' || a[i] > '9' {
			return 0, false
		}
	}
	n, _ := strconv.Atoi(a)
	return n, n <= 65535
}

// DemoCmd is `tether demo [--no-browser] [--json]`.
type DemoCmd struct {
	Port      int  `placeholder:"N" help:"Local port on 127.0.0.1 (default: a free one)."`
	NoBrowser bool `name:"no-browser" help:"Print the URL with the token on stdout instead of opening a browser."`
	OpenFile  bool `name:"open-file" help:"Open the browser through a private redirect file."`
	JSON      bool `name:"json" help:"Print one line of JSON {url, local_port, session} on stdout once the URL works."`
}

// Run runs the demo.
func (c *DemoCmd) Run(ctx context.Context, env *Env) error {
	return launcher.Demo(ctx, launcher.DemoOptions{
		ForwardOptions: launcher.ForwardOptions{Port: c.Port, NoBrowser: c.NoBrowser, OpenFile: c.OpenFile, JSON: c.JSON},
		Version:        env.Version, Stdout: env.Stdout, Stderr: env.Stderr,
	})
}

func lsHost(ctx context.Context, env *Env, host string, h hostFlags, json, prune, showToken bool) error {
	return launcher.Ls(ctx, launcher.LsOptions{Options: hostOptions(env, host, h), JSON: json, Prune: prune, ShowToken: showToken})
}

func stopHost(ctx context.Context, env *Env, host string, h hostFlags, target string, all bool) error {
	return launcher.Stop(ctx, launcher.StopOptions{Options: hostOptions(env, host, h), Target: target, All: all})
}

func logsHost(ctx context.Context, env *Env, host string, h hostFlags, target string, follow bool) error {
	return launcher.Logs(ctx, launcher.LogsOptions{Options: hostOptions(env, host, h), Target: target, Follow: follow})
}

// schedOptions is --slurm's value (and --sge's, --pbs's, --lsf's, --batch's): one
// argument holding the submit command's options, which starts with a hyphen more often
// than not (--slurm "-p gpu -t 1:00:00"), so it takes the next argument whatever it
// looks like. Set tells --slurm "" from no --slurm.
type schedOptions struct {
	set   bool
	value string
}

// Decode takes the next argument as the value.
func (o *schedOptions) Decode(ctx *kong.DecodeContext) error {
	t := ctx.Scan.Pop()
	if t.IsEOL() || t.String() == "--" {
		return fmt.Errorf("give the scheduler's options as one argument, e.g. --slurm \"-p gpu -t 1:00:00\" or --sge \"-q all.q\" (\"\" for the defaults)")
	}
	o.set, o.value = true, t.String()
	return nil
}
