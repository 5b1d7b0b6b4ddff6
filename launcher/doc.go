// Package launcher is the local side of tether: `launch`, `attach`, `ls HOST`,
// `stop HOST`, `logs HOST` and `demo`. It installs the binary on the remote, starts a
// session there through the tunnel, forwards a local port to it and opens the browser
// without putting the token on any command line.
package launcher
