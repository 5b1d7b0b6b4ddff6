// Package tunnel is tether's SSH client: it resolves ssh_config the way OpenSSH does,
// authenticates with the agent, keys and prompts, verifies host keys against
// known_hosts, connects through ProxyJump and ProxyCommand, runs remote commands,
// uploads files, forwards local connections to remote Unix sockets and TCP addresses,
// keeps the connection alive and reconnects by itself. It imports none of tether's
// other packages.
package tunnel

import "strings"

// prefix starts the text of this package's errors, as Go's packages name themselves
// ("ssh: handshake failed").
const prefix = "tunnel: "

// Message is err's text without this package's prefix, for a message that names the
// connection in its own words ("cannot reach gpu-box: dial tcp …"). Errors from
// elsewhere are returned whole.
func Message(err error) string {
	if err == nil {
		return ""
	}
	return strings.TrimPrefix(err.Error(), prefix)
}
