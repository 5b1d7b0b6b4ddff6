//go:build unix

package faults

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tether-dev/tether/e2e"
)

// distantLaunch is a launch of the bench app through a real sshd reached through
// Toxiproxy with oneWayMS of latency each way (added before the launch, so the
// launcher's first channel opens see the round trip), under the ssh alias name.
type distantLaunch struct {
	sshd *e2e.SSHD
	cfg  string // the ssh config file that reaches sshd through the proxy as name
	l    *e2e.Launched
}

func launchDistant(t *testing.T, name string, oneWayMS int) distantLaunch {
	t.Helper()
	tp := e2e.StartToxiproxy(t) // first: it may skip the test
	s := e2e.StartSSHD(t, e2e.SSHDOptions{})
	e2e.StopAllOnCleanup(t, s)
	proxy := tp.Proxy("sshd-"+name, s.Addr())
	for _, stream := range []string{"upstream", "downstream"} {
		if err := proxy.AddToxic("latency_"+stream, "latency", stream, map[string]any{"latency": oneWayMS}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := s.ThroughProxy(t, proxy, name)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	portFile := filepath.Join(t.TempDir(), "app.port")
	l := e2e.StartLauncher(t, []string{"launch", "-F", cfg, name, "--json", "--no-browser", "--", self, e2e.BenchAppArg, "{port}", portFile}, true)
	return distantLaunch{sshd: s, cfg: cfg, l: l}
}
