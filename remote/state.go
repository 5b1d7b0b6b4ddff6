//go:build unix

package remote

import (
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/tether-dev/tether/wire"
)

// Where sessions live. Each session is a directory named by its id under a per-user
// root; the root and every session directory are 0700 and owned by the user, so other
// users of the machine can reach neither the records (which hold tokens) nor the
// sockets.
const (
	recordFile    = "session.json"
	appLogFile    = "app.log"
	serverLogFile = "server.log"
	serverSocket  = "server.sock"
	appSocket     = "app.sock"
	appSecretFile = "app-secret"
)

// stateRoot returns the per-user root of session directories: $TETHER_STATE_DIR, else
// $XDG_STATE_HOME/tether/sessions (~/.local/state/tether/sessions; see statedirs.go).
// When create is set a missing root is made (0700). The root is refused when it is a
// symlink, not a directory, owned by another user or writable by group or others.
func stateRoot(create bool) (string, error) {
	root, err := stateRootPath()
	if err != nil {
		return "", err
	}
	return privateRoot(root, create)
}

// privateRoot makes root (0700) when create is set, and refuses it unless it is a
// private directory of this user in a safe place (checkAncestors). It returns root as
// a physical path. A missing root is returned as is when not creating.
func privateRoot(root string, create bool) (string, error) {
	if create {
		if err := os.MkdirAll(root, 0o700); err != nil {
			return "", fmt.Errorf("cannot create the session directory %s: %w; set TETHER_STATE_DIR to a private directory", root, err)
		}
	} else if _, err := os.Lstat(root); errors.Is(err, fs.ErrNotExist) {
		return root, nil
	}
	if err := checkPrivateDir(root); err != nil {
		return "", err
	}
	return checkAncestors(root)
}

// checkAncestors refuses dir when a directory above it lets another user replace it,
// and returns dir with its parent's symlinks resolved, so that what was checked is what
// is used. The rules are OpenSSH's safe_path (misc.c), as the launcher's probe applies
// them to the install directory: walking the physical path up, each directory must be
// owned by this user or root, and writable by no one else unless it has the sticky bit
// (in a 1777 directory others may add names but not rename or remove ours). A directory
// writable by others without it lets them rename dir away and put their own, with their
// sockets, in its place between a check and a use. The walk stops at the home directory:
// whoever can rename entries above it can replace the home itself, ~/.ssh included.
func checkAncestors(dir string) (string, error) {
	parent, err := filepath.EvalSymlinks(filepath.Dir(dir))
	if err != nil {
		return "", fmt.Errorf("cannot use %s for session state: %w", dir, err)
	}
	home := ""
	if h, err := os.UserHomeDir(); err == nil && h != "" {
		home, _ = filepath.EvalSymlinks(h)
	}
	uid := os.Geteuid()
	for d := parent; ; d = filepath.Dir(d) {
		fi, err := os.Lstat(d)
		if err != nil {
			return "", fmt.Errorf("cannot use %s for session state: %w", dir, err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return "", fmt.Errorf("cannot check the owner of %s", d)
		}
		if st.Uid != 0 && int(st.Uid) != uid {
			return "", fmt.Errorf("refusing session directory %s: %s above it is owned by uid %d, who could replace it; set TETHER_STATE_DIR to a directory of your own", dir, d, st.Uid)
		}
		if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&fs.ModeSticky == 0 {
			return "", fmt.Errorf("refusing session directory %s: %s above it is writable by others without the sticky bit (mode %04o); run `chmod go-w %s` or set TETHER_STATE_DIR to a private directory", dir, d, fi.Mode().Perm(), d)
		}
		if d == home || d == filepath.Dir(d) {
			break
		}
	}
	return filepath.Join(parent, filepath.Base(dir)), nil
}

// checkPrivateDir refuses a directory that another user could tamper with: a symlink,
// a non-directory, one owned by someone else, or one writable by group or others. A
// directory of ours that is merely readable by others is tightened to 0700.
func checkPrivateDir(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("cannot use %s for session state: %w", path, err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("refusing session directory %s: it is a symlink; remove it or set TETHER_STATE_DIR to a real private directory", path)
	}
	if !fi.IsDir() {
		return fmt.Errorf("refusing session directory %s: it is not a directory; remove it or set TETHER_STATE_DIR", path)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("cannot check the owner of %s", path)
	}
	if int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("refusing session directory %s: it is owned by uid %d, not by you (uid %d); set TETHER_STATE_DIR to a directory of your own", path, st.Uid, os.Geteuid())
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("refusing session directory %s: it is writable by group or others (mode %04o); run `chmod 700 %s` or set TETHER_STATE_DIR", path, fi.Mode().Perm(), path)
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(path, 0o700); err != nil {
			return fmt.Errorf("cannot make %s private: %w", path, err)
		}
	}
	return nil
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newID returns a short random session id: 8 characters of [a-z2-7] (40 bits).
func newID() (string, error) {
	b := make([]byte, 5)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return idEncoding.EncodeToString(b), nil
}

// session is one session's place on disk.
type session struct {
	ID   string
	Root string
	Dir  string // Root/ID: the record and the logs
	// SockDir holds the sockets: Dir itself, or a short private directory when Dir's
	// path is too long for a Unix socket.
	SockDir string
}

func (s *session) recordPath() string { return filepath.Join(s.Dir, recordFile) }
func (s *session) logPath() string    { return filepath.Join(s.Dir, appLogFile) }
func (s *session) serverLog() string  { return filepath.Join(s.Dir, serverLogFile) }
func (s *session) socketPath() string { return filepath.Join(s.SockDir, serverSocket) }
func (s *session) appSocket() string  { return filepath.Join(s.SockDir, appSocket) }

// newSession makes a fresh private directory for a new session under root.
func newSession(root string) (*session, error) {
	for range 16 {
		id, err := newID()
		if err != nil {
			return nil, err
		}
		dir := filepath.Join(root, id)
		if err := os.Mkdir(dir, 0o700); errors.Is(err, fs.ErrExist) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("cannot create a session directory: %w", err)
		}
		s := &session{ID: id, Root: root, Dir: dir, SockDir: dir}
		if err := checkPrivateDir(dir); err != nil {
			os.Remove(dir)
			return nil, err
		}
		if len(s.socketPath()) > wire.MaxSocketPath || !socketsWork(dir) {
			sd, err := shortSocketDir(id)
			if err != nil {
				os.Remove(dir)
				return nil, err
			}
			s.SockDir = sd
		}
		return s, nil
	}
	return nil, errors.New("cannot pick a fresh session id")
}

// shortSocketDir makes a new private directory with a short path for the sockets of a
// session whose directory's path is too long for a Unix socket. MkdirTemp never reuses
// an existing entry, so another user cannot plant it in advance.
func shortSocketDir(id string) (string, error) {
	base := os.TempDir()
	if len(base) > 40 {
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, "tether-"+id+"-")
	if err != nil {
		return "", fmt.Errorf("the session directory cannot hold a Unix socket (its path is too long, or its file system takes none) and no short private directory could be made in %s: %w; set TETHER_STATE_DIR to a shorter path on a local disk", base, err)
	}
	if err := checkPrivateDir(dir); err != nil {
		os.Remove(dir)
		return "", err
	}
	phys, err := checkAncestors(dir)
	if err != nil {
		os.Remove(dir)
		return "", err
	}
	dir = phys
	if len(filepath.Join(dir, serverSocket)) > wire.MaxSocketPath {
		os.Remove(dir)
		return "", fmt.Errorf("no short enough directory for a Unix socket (%s); set TETHER_STATE_DIR or TMPDIR to a shorter path", dir)
	}
	return dir, nil
}

// isShortSocketDir reports whether dir looks like a directory shortSocketDir made for
// session id, so a tampered record cannot make cleanup remove anything else.
func isShortSocketDir(dir, id string) bool {
	return filepath.IsAbs(dir) && strings.HasPrefix(filepath.Base(dir), "tether-"+id+"-") &&
		filepath.Clean(dir) == dir
}

// remove deletes everything of the session on disk: its socket directory (when
// separate) and its directory with the record and logs. It never follows a symlink and
// leaves alone a directory that is not ours.
func (s *session) remove() error {
	var errs []error
	if s.SockDir != "" && s.SockDir != s.Dir && isShortSocketDir(s.SockDir, s.ID) {
		if err := checkPrivateDir(s.SockDir); err == nil {
			errs = append(errs, os.RemoveAll(s.SockDir))
		} else if !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := checkPrivateDir(s.Dir); err == nil {
		errs = append(errs, os.RemoveAll(s.Dir))
	} else if !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
