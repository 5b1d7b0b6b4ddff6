//go:build unix

package e2e

import "path/filepath"

// SessionRoot is where tether on the remote keeps the sessions of a user whose HOME is
// home and who sets neither TETHER_STATE_DIR nor XDG_STATE_HOME (the tests' sshds):
// ~/.local/state/tether/sessions.
func SessionRoot(home string) string {
	return filepath.Join(home, ".local", "state", "tether", "sessions")
}

// SlurmSessionRoot is where the login node keeps batch (Slurm, Grid Engine...) sessions
// for such a user: ~/.local/state/tether/batch.
func SlurmSessionRoot(home string) string {
	return filepath.Join(home, ".local", "state", "tether", "batch")
}
