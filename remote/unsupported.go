//go:build !unix

package remote

import (
	"context"
	"errors"
)

// The remote side needs Unix sockets, process groups and sessions: on other systems
// only the record type (for the launcher) is available.

var errUnsupported = errors.New("this command runs on Linux and other Unix systems only; run it on the remote machine")

// Serve is not available on this system.
func Serve(ctx context.Context, o ServeOptions) error { return errUnsupported }

// Ls is not available on this system.
func Ls(ctx context.Context, o LsOptions) error { return errUnsupported }

// Stop is not available on this system.
func Stop(ctx context.Context, o StopOptions) error { return errUnsupported }

// Logs is not available on this system.
func Logs(ctx context.Context, o LogsOptions) error { return errUnsupported }

// BatchSubmit is not available on this system.
func BatchSubmit(ctx context.Context, o BatchSubmitOptions) error { return errUnsupported }

// BatchWatch is not available on this system.
func BatchWatch(ctx context.Context, o BatchWatchOptions) error { return errUnsupported }

// LoginEnvArg is the hidden first argument of the login shell's environment dump.
const LoginEnvArg = "_login-env"

// RunLoginEnvDump exists on Unix only.
func RunLoginEnvDump(args []string) int { return 2 }
