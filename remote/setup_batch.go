//go:build unix

package remote

import (
	"os"
	"path/filepath"

	"github.com/tether-dev/tether/wire"
)

// launch --setup in a batch job: `tether batch submit --setup-stdin` reads the script
// (one frame on stdin, as serve does) and keeps it in the session's 0700 directory on
// the shared home, 0600; the job's serve gets --setup-file naming it and runs it in
// the login shell on the node, right before the app.

// jobSetupFile is the setup script of a Slurm session, in its 0700 directory on the
// shared home: the job's serve runs it in the login shell on the node (--setup-file).
// It stays with the session, so a requeued job runs it again.
const jobSetupFile = "setup.sh"

// readSetup reads the setup frame from stdin when SetupStdin asks for it.
func (o *BatchSubmitOptions) readSetup() (string, error) {
	if !o.SetupStdin {
		return "", nil
	}
	r := o.Stdin
	if r == nil {
		r = os.Stdin
	}
	return wire.ReadSetupFrame(r)
}

// withJobSetup writes setup into the session directory dir and returns the job's serve
// with --setup-file naming it; serve as it is when setup is empty.
func withJobSetup(dir, setup string, serve wire.Serve) (wire.Serve, error) {
	if setup == "" {
		return serve, nil
	}
	if err := writeFileAtomic(dir, jobSetupFile, []byte(setup)); err != nil {
		return serve, err
	}
	serve.SetupFile = filepath.Join(dir, jobSetupFile)
	return serve, nil
}
