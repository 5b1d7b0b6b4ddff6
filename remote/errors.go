package remote

import (
	"fmt"

	"github.com/tether-dev/tether/internal/termsafe"
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

func (e *NoSessionError) Error() string {
	return fmt.Sprintf("no session %q on %s; run `tether ls` to see yours", termsafe.Clip(e.Ref, 64), e.Host)
}
