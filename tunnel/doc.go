// Package tunnel is tether's SSH client: it resolves ssh_config the way OpenSSH does,
// authenticates with the agent, keys and prompts, verifies host keys against
// known_hosts, connects through ProxyJump and ProxyCommand, runs remote commands,
// uploads files, forwards local connections to remote Unix sockets and TCP addresses,
// keeps the connection alive and reconnects by itself. It imports none of tether's
// other packages.
package tunnel
