package remote

import (
	"os"
	"syscall"
)

// redirectStderr points file descriptor 2 at f, so a background server's own crash
// output lands in its log rather than nowhere.
func redirectStderr(f *os.File) { syscall.Dup3(int(f.Fd()), 2, 0) }
