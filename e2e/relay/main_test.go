//go:build unix

package relay

import (
	"os"
	"testing"

	"github.com/tether-dev/tether/e2e"
)

func TestMain(m *testing.M) {
	// This test binary doubles as ssh's ProxyCommand: one stream to the host.
	if os.Getenv(proxyModeEnv) == "1" {
		os.Exit(proxy(os.Args[len(os.Args)-3:]))
	}
	code := m.Run()
	e2e.Cleanup()
	os.Exit(code)
}
