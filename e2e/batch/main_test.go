//go:build unix

package batch

import (
	"os"
	"testing"

	"github.com/tether-dev/tether/e2e"
)

func TestMain(m *testing.M) {
	code := m.Run()
	e2e.Cleanup()
	os.Exit(code)
}
