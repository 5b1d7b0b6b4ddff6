package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
)

// startProfile writes a CPU profile of this process to DIR/tether-COMMAND-PID.prof
// when TETHER_PPROF=DIR is set (for `just bench --pprof DIR`). The returned function
// stops it; it does nothing when profiling is off or could not start.
func startProfile(args []string) func() {
	dir := os.Getenv("TETHER_PPROF")
	if dir == "" {
		return func() {}
	}
	cmd := "none"
	if len(args) > 0 {
		cmd = filepath.Base(args[0])
	}
	f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("tether-%s-%d.prof", cmd, os.Getpid())), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		fmt.Fprintf(os.Stderr, "tether: TETHER_PPROF: %v\n", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		fmt.Fprintf(os.Stderr, "tether: TETHER_PPROF: %v\n", err)
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}
