//go:build unix && !linux

package remote

import (
	"net/netip"

	"github.com/tether-dev/tether/internal/localpeer"
)

// Without socket owners (not Linux) the app's listener cannot be told from another
// user's: it is taken on trust, and README says so.

func verifyListener(netip.AddrPort, *appProc) (bool, error) { return true, nil }

func appListeners(*appProc) ([]localpeer.Socket, error) { return nil, localpeer.ErrUnsupported }

func appListenersIn([]localpeer.Socket, *appProc) ([]localpeer.Socket, error) {
	return nil, localpeer.ErrUnsupported
}
