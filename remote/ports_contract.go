package remote

import (
	"strings"

	"github.com/tether-dev/tether/tokenserver"
)

// ForwardProtocol and ForwardPath are the launcher's side of `tether forward`: a GET
// of ForwardPath with the token in Authorization and Upgrade: ForwardProtocol becomes
// a raw stream to the port; the same GET without Upgrade only checks the port (see
// ports.go).
const ForwardProtocol = tokenserver.ForwardProtocol

// ForwardPath is where a stream to port lives under a session's base URL.
func ForwardPath(baseURL string, port int) string {
	if !strings.HasSuffix(baseURL, "/") {
		baseURL += "/"
	}
	return tokenserver.ForwardPath(baseURL, port)
}
