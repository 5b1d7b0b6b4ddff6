//go:build unix

package host

import (
	"os"
	"syscall"
)

// fileOwner is the user ID that owns a file.
func fileOwner(fi os.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return -1, false
	}
	return int(st.Uid), true
}
