// Command tether puts a web app running on a remote machine into the local browser,
// over SSH, behind a token that never crosses the network in the clear.
//
// One binary holds both sides: the local commands (launch, attach, demo, and ls, stop
// and logs given a HOST) and the remote ones (serve, and ls, stop and logs without one).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"github.com/alecthomas/kong"
	"github.com/tether-dev/tether/remote"
)

// version is set at build time: -ldflags "-X main.version=$(git describe)". Without
// it, buildVersion takes the module version a `go install` recorded.
var version = "dev"

func main() {
	// The server starts apps under this hidden mode of the same binary (Linux): it is
	// dispatched before the command line is parsed, so it is in no help text.
	if len(os.Args) > 1 && os.Args[1] == remote.AppSupervisorArg {
		os.Exit(remote.RunAppSupervisor(os.Args[2:]))
	}
	// The end of the login shell serve runs for the app's environment (launch --setup):
	// the same kind of hidden mode.
	if len(os.Args) > 1 && os.Args[1] == remote.LoginEnvArg {
		os.Exit(remote.RunLoginEnvDump(os.Args[2:]))
	}
	applyPolicy = setRuntimePolicy
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopProfile := startProfile(os.Args[1:])
	stopStats := startStats(os.Args[1:])
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	stopStats()
	stopProfile()
	os.Exit(code)
}

// runtimePolicy is how the Go runtime should run a command, decided here in main for
// the command kong parsed (never from a command name's string, never by library code).
type runtimePolicy struct {
	// forwards: the command forwards traffic (serve, launch, attach, demo) and shares
	// the machine with sshd or ssh, the app and the browser: half of the OS threads
	// the runtime chose (cgroup limits and CPU affinity included). Fewer threads mean
	// fewer cross-thread wake-ups per forwarded packet: on 2 cores, small requests/s
	// +6% to +40%, p99 −16% to −32%, six parallel downloads +18% (just bench --before,
	// two runs).
	forwards bool
	// forwardGC: the laptop side of a forward (launch, attach, demo). x/crypto/ssh
	// allocates a fresh buffer for every packet it reads, so a download makes garbage
	// at the link's speed while the live heap stays a few MB: at the default GOGC=100
	// the collector runs hundreds of times a second, and returning the memory
	// (madvise) alone took 7-8% of the launcher's CPU. So GOGC=forwardGCPercent,
	// capped by forwardMemoryLimit (near it the collector runs as often as it must).
	forwardGC bool
}

const (
	forwardGCPercent   = 400
	forwardMemoryLimit = 32 << 20
)

// policied is a command with a runtime policy; commands without one leave the
// runtime's defaults.
type policied interface{ runtimePolicy() runtimePolicy }

func (ServeCmd) runtimePolicy() runtimePolicy  { return runtimePolicy{forwards: true} }
func (LaunchCmd) runtimePolicy() runtimePolicy { return runtimePolicy{forwards: true, forwardGC: true} }
func (AttachCmd) runtimePolicy() runtimePolicy { return runtimePolicy{forwards: true, forwardGC: true} }
func (DemoCmd) runtimePolicy() runtimePolicy   { return runtimePolicy{forwards: true, forwardGC: true} }

// applyPolicy applies the parsed command's runtime policy before it runs: main sets
// it to setRuntimePolicy; tests that call run leave the test process alone.
var applyPolicy = func(runtimePolicy) {}

// setRuntimePolicy sets GOMAXPROCS and the GC target for p, leaving what the user set
// in the environment.
func setRuntimePolicy(p runtimePolicy) {
	if n := procsFor(p, runtime.GOMAXPROCS(0), os.Getenv("GOMAXPROCS")); n > 0 {
		runtime.GOMAXPROCS(n)
	}
	if gcFor(p, os.Getenv("GOGC"), os.Getenv("GOMEMLIMIT")) {
		debug.SetGCPercent(forwardGCPercent)
		debug.SetMemoryLimit(forwardMemoryLimit)
	}
}

// procsFor is GOMAXPROCS for p when the runtime chose current: half for a forwarding
// command, 0 (leave it) for the others or when the user set GOMAXPROCS.
func procsFor(p runtimePolicy, current int, env string) int {
	if env != "" || !p.forwards {
		return 0
	}
	return max(1, current/2)
}

// gcFor says whether to set the forwarding GC target: not when the user set GOGC or
// GOMEMLIMIT.
func gcFor(p runtimePolicy, gogc, memlimit string) bool {
	return p.forwardGC && gogc == "" && memlimit == ""
}

// policyOf is the runtime policy of the command kctx selected.
func policyOf(kctx *kong.Context) runtimePolicy {
	if n := kctx.Selected(); n != nil && n.Target.IsValid() && n.Target.CanInterface() {
		if c, ok := n.Target.Interface().(policied); ok {
			return c.runtimePolicy()
		}
	}
	return runtimePolicy{}
}

// run parses args, runs the chosen command and maps its error to an exit code: 0 ok,
// 1 failure (one line on stderr), 2 usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	bi := readBuildInfo()
	v := buildVersion(version, bi)
	var cli CLI
	parser, err := kong.New(&cli,
		kong.Name("tether"),
		kong.Description("Put a web app running on a remote machine into your local browser, over SSH."),
		kong.UsageOnError(),
		kong.Writers(stdout, stderr),
		kong.Vars{"version": v, "versiontext": versionText(v, commit, bi)},
		kong.BindTo(ctx, (*context.Context)(nil)),
		kong.Bind(&Env{Version: v, Stdout: stdout, Stderr: stderr}),
	)
	if err != nil {
		fmt.Fprintf(stderr, "tether: %v\n", err)
		return 1
	}
	if len(args) > 0 && args[0] == completeArg {
		complete(parser.Model, args[1:], stdout)
		return 0
	}
	if len(args) == 0 {
		// Bare `tether` is how people ask what it does: the help, on stdout, and exit
		// 0 as kubectl and gh do (nothing went wrong; git's 1 and go's 2 treat it as an
		// error). A command line with words but no command is still a usage error.
		kctx, err := kong.Trace(parser, nil)
		if err == nil {
			err = kctx.PrintUsage(false)
		}
		if err != nil {
			fmt.Fprintf(stderr, "tether: %v\n", err)
			return 1
		}
		return 0
	}
	ar := arrangeArgs(parser.Model, args)
	kctx, err := parser.Parse(ar.parse)
	if kctx != nil {
		kctx.Args = ar.logical // where the user's -- was (launch: APP or COMMAND)
	}
	if errors.Is(err, errVersionShown) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "tether: %v\n", err)
		return 2
	}
	applyPolicy(policyOf(kctx))
	if err := kctx.Run(); err != nil {
		// Errors that already told the user (a remote command's own message) say so.
		var silent interface{ Silent() bool }
		if !errors.As(err, &silent) || !silent.Silent() {
			fmt.Fprintf(stderr, "tether: %v\n", err)
		}
		var coded interface{ ExitCode() int }
		if errors.As(err, &coded) {
			return coded.ExitCode()
		}
		return 1
	}
	return 0
}
