//go:build !linux

package main

import (
	"fmt"
	"os"
)

// The bench reads /proc and drives sshd's process tree: it runs on Linux only.
func main() {
	fmt.Fprintln(os.Stderr, "bench: runs on Linux only (it reads /proc and starts a throwaway sshd); run it on a Linux machine with openssh-server")
	os.Exit(1)
}
