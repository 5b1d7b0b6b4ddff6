package tunnel

import "golang.org/x/sys/unix"

func queuedBytes(fd int) (int, error) { return unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_NWRITE) }
