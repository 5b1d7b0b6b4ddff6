//go:build !linux

package remote

import (
	"fmt"
	"os"
)

// AppSupervisorArg is the hidden first argument of the Linux app supervisor.
const AppSupervisorArg = "_app-supervisor"

// RunAppSupervisor exists on Linux only: elsewhere the server starts the app itself.
func RunAppSupervisor(args []string) int {
	fmt.Fprintf(os.Stderr, "tether: %s is internal to tether serve on Linux\n", AppSupervisorArg)
	return 2
}
