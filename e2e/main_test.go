//go:build unix

package e2e

import (
	"fmt"
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	// Sessions that need the bench app run this binary as their app.
	if len(os.Args) > 1 && os.Args[1] == BenchAppArg {
		if err := RunBenchApp(os.Args[2:]); err != nil {
			fmt.Fprintf(os.Stderr, "app: %v\n", err)
			os.Exit(1)
		}
		return
	}
	code := m.Run()
	Cleanup()
	os.Exit(code)
}
