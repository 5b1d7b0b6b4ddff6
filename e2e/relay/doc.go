// Package relay holds tether's end-to-end tests of relays (issue 18): a real `tether
// relay`, `tether host` run by a fresh Unix user, and the launcher, as three processes
// on loopback. TestHostLaunch reaches the host through OpenSSH (a ProxyCommand);
// TestRelayPortal uses the launcher's own `--relay` (Chromium, Jupyter, 200 concurrent
// requests, attach/ls/logs/stop, bad tokens, a takeover, and a recorder in front of the
// relay showing it handles only ciphertext); TestRelayRestart kills and restarts the
// relay under a live session. They use package e2e's harness and are a package of
// their own to stay lean and fast.
package relay
