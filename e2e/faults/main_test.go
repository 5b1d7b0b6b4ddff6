//go:build unix

package faults

import (
	"fmt"
	"os"
	"testing"

	"github.com/tether-dev/tether/e2e"
)

func TestMain(m *testing.M) {
	// Sessions that need the bench app run this binary as their app.
	if len(os.Args) > 1 && os.Args[1] == e2e.BenchAppArg {
		if err := e2e.RunBenchApp(os.Args[2:]); err != nil {
			fmt.Fprintf(os.Stderr, "app: %v\n", err)
			os.Exit(1)
		}
		return
	}
	code := m.Run()
	e2e.Cleanup()
	os.Exit(code)
}
