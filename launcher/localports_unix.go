//go:build unix

package launcher

import (
	"os"
	"syscall"
)

// checkOwnDir refuses a directory that is a symlink, not a directory, or not this
// user's; one readable or writable by others is made 0700 (it is ours).
func checkOwnDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() || fi.Mode()&os.ModeSymlink != 0 {
		return notPrivate(dir, "not a directory")
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != os.Geteuid() {
		return notPrivate(dir, "not owned by you")
	}
	if fi.Mode().Perm() != 0o700 {
		return os.Chmod(dir, 0o700)
	}
	return nil
}
