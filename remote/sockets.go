//go:build unix

package remote

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
)

var umaskMu sync.Mutex

// listenPrivateUnix listens on a new Unix socket at path, created 0600 (the umask is
// tightened around the bind) and never replacing an existing file: a path we did not
// create is never reused or unlinked. It returns the socket's identity, so only that
// very socket is removed later.
func listenPrivateUnix(path string) (*net.UnixListener, os.FileInfo, error) {
	if _, err := os.Lstat(path); err == nil {
		return nil, nil, fmt.Errorf("%s already exists; tether never reuses or removes a socket it did not create: remove it yourself if it is stale, or choose another path", path)
	}
	umaskMu.Lock()
	old := syscall.Umask(0o177)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	syscall.Umask(old)
	umaskMu.Unlock()
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, nil, fmt.Errorf("%s already exists; tether never reuses or removes a socket it did not create: choose another path", path)
		}
		return nil, nil, fmt.Errorf("cannot listen on %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false)
	err = os.Chmod(path, 0o600)
	var fi os.FileInfo
	if err == nil {
		fi, err = os.Lstat(path)
	}
	if err == nil && fi.Mode()&os.ModeSocket == 0 {
		err = fmt.Errorf("%s is not the socket we just made", path)
	}
	if err != nil {
		ln.Close()
		return nil, nil, err
	}
	return ln, fi, nil
}

// removeSocket removes path only if it is still the socket identified by fi: same
// device and inode, and the same change time, since a freed inode number is soon
// given to a new file.
func removeSocket(path string, fi os.FileInfo) {
	cur, err := os.Lstat(path)
	if err != nil || !os.SameFile(cur, fi) {
		return
	}
	if !cur.ModTime().Equal(fi.ModTime()) {
		return
	}
	os.Remove(path)
}

// peerCheckListener closes connections from other users at once (SO_PEERCRED), a
// second wall behind the 0700 directory and the 0600 socket.
type peerCheckListener struct {
	*net.UnixListener
	logger *slog.Logger
}

func (l *peerCheckListener) Accept() (net.Conn, error) {
	for {
		c, err := l.AcceptUnix()
		if err != nil {
			return nil, err
		}
		uid, err := peerUID(c)
		if errors.Is(err, errors.ErrUnsupported) || err == nil && uid == os.Geteuid() {
			return c, nil
		}
		l.logger.Warn("closed a connection from another user", "uid", uid)
		c.Close()
	}
}
