//go:build unix

package remote

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
)

// Where session state lives, and why there.
//
// A detached session must outlive the login that started it: a Jupyter server left
// running overnight is reached again the next day, after the SSH connection, the login
// and (on systemd hosts) the user's runtime directory are gone. So its state is XDG
// *state* ("data that should persist between restarts", $XDG_STATE_HOME, default
// ~/.local/state), never $XDG_RUNTIME_DIR: systemd-logind removes /run/user/UID when the
// user's last login ends, taking the sockets and records of every session with it.
// Nor is it cache ($XDG_CACHE_HOME): a cache may be wiped at any time; the install
// (${XDG_CACHE_HOME:-~/.cache}/tether/bin) is one, a session is not.
//
//	$TETHER_STATE_DIR                         everything, when set (as before)
//	$XDG_STATE_HOME/tether/sessions           sessions on this machine
//	$XDG_STATE_HOME/tether/batch              batch sessions (on the home the nodes share)
//
// XDG puts sockets in the runtime directory, for its short path and private mode; tether
// keeps them in the session's own 0700 directory instead (same privacy, the lifetime of
// the session). Where that path is too long for a Unix socket, or its file system takes
// no sockets (AFS homes), they go to a fresh 0700 directory under $TMPDIR or /tmp that
// the record names (shortSocketDir).
//
// Sessions started by earlier versions live in $XDG_RUNTIME_DIR/tether or
// ~/.cache/tether/run (batch sessions: ~/.cache/tether/slurm). A running server keeps writing
// where it started, so they are not moved: ls, stop, logs, attach and launch's reuse
// still find them there (legacyRoots) until they end, and nothing new goes there.

// stateRootPath is the root of this machine's sessions: $TETHER_STATE_DIR, else
// $XDG_STATE_HOME/tether/sessions.
func stateRootPath() (string, error) {
	if d := os.Getenv("TETHER_STATE_DIR"); d != "" {
		if !filepath.IsAbs(d) {
			abs, err := filepath.Abs(d)
			if err != nil {
				return "", fmt.Errorf("TETHER_STATE_DIR=%q: %w", d, err)
			}
			d = abs
		}
		return filepath.Clean(d), nil
	}
	base, err := xdgStateHome()
	if err != nil {
		return "", err
	}
	return filepath.Join(base, "tether", "sessions"), nil
}

// slurmRootPath is the root of batch sessions (Slurm, Grid Engine, PBS, LSF, a site's
// wrapper) when TETHER_STATE_DIR is not set: $XDG_STATE_HOME/tether/batch, on the home
// directory the compute nodes share.
func slurmRootPath() (string, error) {
	base, err := xdgStateHome()
	if err != nil {
		return "", errors.New("cannot find a place for batch sessions: HOME is not set; set TETHER_STATE_DIR to a private directory on a file system the nodes share")
	}
	return filepath.Join(base, "tether", "batch"), nil
}

// xdgStateHome is $XDG_STATE_HOME when it is an absolute path (the XDG base directory
// specification says to ignore a relative one), else ~/.local/state.
func xdgStateHome() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Clean(d), nil
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return "", errors.New("cannot find a place for session state: HOME is not set; set TETHER_STATE_DIR to a private directory")
	}
	return filepath.Join(home, ".local", "state"), nil
}

// legacyRoots are where earlier versions kept sessions (slurm: Slurm sessions), for
// finding the ones still running there. None when TETHER_STATE_DIR is set: that has
// always been the only place then.
func legacyRoots(slurm bool) []string {
	if os.Getenv("TETHER_STATE_DIR") != "" {
		return nil
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return nil
	}
	if slurm {
		return []string{filepath.Join(home, ".cache", "tether", "slurm")}
	}
	var out []string
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" && filepath.IsAbs(d) {
		out = append(out, filepath.Join(d, "tether"))
	}
	return append(out, filepath.Join(home, ".cache", "tether", "run"))
}

// scanRoots scans root and the legacy roots of its kind (slurm: Slurm sessions) that
// pass the same checks as root (one that does not is skipped), oldest session first.
func scanRoots(root string, slurm bool) ([]entry, error) {
	all, err := scan(root)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{root: true}
	for _, old := range legacyRoots(slurm) {
		phys, err := privateRoot(old, false)
		if err != nil || seen[old] || seen[phys] {
			continue
		}
		seen[old], seen[phys] = true, true
		if more, err := scan(phys); err == nil {
			all = append(all, more...)
		}
	}
	sortEntries(all)
	return all, nil
}

// sortEntries orders sessions oldest first (by id when a record is missing).
func sortEntries(es []entry) {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i].rec, es[j].rec
		if a != nil && b != nil && !a.Started.Equal(b.Started) {
			return a.Started.Before(b.Started)
		}
		return es[i].s.ID < es[j].s.ID
	})
}

// findSlurmSession is Slurm session id's place: under root, else under a legacy Slurm
// root that passes root's checks; root/id when it is nowhere (the caller says so).
func findSlurmSession(root, id string) *session {
	at := func(r string) *session {
		dir := filepath.Join(r, id)
		return &session{ID: id, Root: r, Dir: dir, SockDir: dir}
	}
	if _, err := os.Lstat(at(root).recordPath()); err == nil {
		return at(root)
	}
	for _, old := range legacyRoots(true) {
		phys, err := privateRoot(old, false)
		if err != nil {
			continue
		}
		if s := at(phys); checkPrivateDir(s.Dir) == nil {
			return s
		}
	}
	return at(root)
}

// socketsWork reports whether a Unix socket can be made in dir (AFS, and some network
// file systems, take none). A variable for tests.
var socketsWork = func(dir string) bool {
	p := filepath.Join(dir, ".probe.sock")
	ln, err := net.Listen("unix", p)
	if err != nil {
		return false
	}
	ln.Close() // removes the socket file, which it made
	return true
}
