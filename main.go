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
	"syscall"

	"github.com/alecthomas/kong"
	"github.com/tether-dev/tether/remote"
)

// version is set at build time: -ldflags "-X main.version=$(git describe)".
var version = "dev"

func main() {
	// The server starts apps under this hidden mode of the same binary (Linux): it is
	// dispatched before the command line is parsed, so it is in no help text.
	if len(os.Args) > 1 && os.Args[1] == remote.AppSupervisorArg {
		os.Exit(remote.RunAppSupervisor(os.Args[2:]))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopProfile := startProfile(os.Args[1:])
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	stopProfile()
	os.Exit(code)
}

// run parses args, runs the chosen command and maps its error to an exit code: 0 ok,
// 1 failure (one line on stderr), 2 usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cli CLI
	parser, err := kong.New(&cli,
		kong.Name("tether"),
		kong.Description("Put a web app running on a remote machine into your local browser, over SSH."),
		kong.UsageOnError(),
		kong.Writers(stdout, stderr),
		kong.Vars{"version": version},
		kong.BindTo(ctx, (*context.Context)(nil)),
		kong.Bind(&Env{Version: version, Stdout: stdout, Stderr: stderr}),
	)
	if err != nil {
		fmt.Fprintf(stderr, "tether: %v\n", err)
		return 1
	}
	kctx, err := parser.Parse(args)
	if err != nil {
		fmt.Fprintf(stderr, "tether: %v\n", err)
		return 2
	}
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
