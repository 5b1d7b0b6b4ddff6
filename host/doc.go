// Package host is `tether host`: this machine offered as an SSH server through a relay
// (to launchers that reach it as portal:ID), for machines that accept no inbound
// connection. It owns the host's side of the relay contract: the host token read from
// the environment and checked with the relay key it names, the persistent host key,
// the authorized_keys file, client authentication (a client token for this portal as
// the SSH password, and a listed key too when a file is given), and the banner. The
// SSH server itself is tunnel.Server; the streams come from relay.Listen.
package host
