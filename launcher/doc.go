// Package launcher is the local side of tether: `launch`, `attach`, `ls HOST`,
// `stop HOST`, `logs HOST` and `demo`. It installs the binary on the remote, starts a
// session there through the tunnel, forwards a local port to it and opens the browser
// without putting the token on any command line. A batch session (launch --slurm,
// --sge, --pbs, --lsf, --batch; batch.go) is submitted and watched on the login node
// through `tether batch submit|watch` there, its options judged first with package
// batch, and reached through the login node (or by SSH to its node).
//
// It knows the remote only by package wire, the vocabulary both sides import: the
// ready record, serve's command line (wire.Serve), and the remote's failures, notes and
// batch events as data, which it words for the laptop (words.go: the host as the user
// typed it, each tether command as it runs from here) and decides by their kinds, never
// by the remote's words (prose_test.go checks that).
package launcher
