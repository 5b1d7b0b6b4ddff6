//go:build unix

package profile

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// unsafeOwner says why a config file someone else could have written is refused, or
// "": as ssh does for ~/.ssh/config, it must be owned by the user (or root) and
// writable by no one else.
func unsafeOwner(fi fs.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	if uid := int(st.Uid); uid != os.Getuid() && uid != 0 {
		return fmt.Sprintf("owned by uid %d, not by you: tether takes no settings from a file someone else can change (it could run commands as you); take it over or remove it", uid)
	}
	if m := fi.Mode().Perm(); m&0o022 != 0 {
		return fmt.Sprintf("writable by others (mode %04o): tether takes no settings from a file someone else can change (it could run commands as you); chmod go-w it", m)
	}
	return ""
}
