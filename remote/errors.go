package remote

import (
	"fmt"

	"github.com/tether-dev/tether/internal/termsafe"
	"github.com/tether-dev/tether/wire"
)

// UsageError is a mistake in how a command was called. Its ExitCode is 2, which the
// root command maps to the process's exit status.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// ExitCode is 2: the command line was wrong.
func (e *UsageError) ExitCode() int { return 2 }

func usagef(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}

// NoSessionError: no session of this user here has the id, name or id prefix Ref.
type NoSessionError struct{ Ref, Host string }

func (e *NoSessionError) Error() string { return e.Failure().Error() }

// Failure is the error as data: the machine and the command to list sessions held
// apart, for the launcher to word.
func (e *NoSessionError) Failure() *wire.Failure {
	return wire.Fail(wire.FailNoSession, wire.Textf("no session %q on %v", termsafe.Clip(e.Ref, 64), wire.Machine(e.Host)),
		wire.Textf("run %v to see yours", wire.Tether("ls")))
}
