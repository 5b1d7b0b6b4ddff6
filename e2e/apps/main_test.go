//go:build unix

package apps

import (
	"os"
	"testing"

	"github.com/tether-dev/tether/e2e"
)

func TestMain(m *testing.M) {
	code := m.Run()
	e2e.Cleanup()
	if releaseDir != "" {
		os.RemoveAll(releaseDir) // the release archives (release_test.go)
	}
	os.Exit(code)
}
