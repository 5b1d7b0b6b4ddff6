package tunnel

import "golang.org/x/sys/unix"

func queuedBytes(fd int) (int, error) { return unix.IoctlGetInt(fd, unix.SIOCOUTQ) }
