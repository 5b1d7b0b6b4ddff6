package launcher

import (
	"fmt"
)

// launch --setup on the launcher's side: the script goes to the remote tether on the
// command's stdin (wire.SetupFrame, sent by runScriptInput), never in its argv; a
// setup that failed there says so by its kind (wire.FailSetupFailed), and the user is pointed at
// --setup rather than at the command.

// setupHint is the advice after a start that failed because of the setup: where to try
// it by hand (a login on host, or a job on the node), and that nothing was left.
func setupHint(host string, batch bool) string {
	if batch {
		return "fix --setup (it runs in your login shell on the node, inside the job: try it in `srun --pty $SHELL -l`) and launch again (nothing was left queued or running)"
	}
	return fmt.Sprintf("fix --setup (it runs in your login shell on %s; try it in `ssh %s` first) and launch again (nothing was left running)", host, host)
}
