// Package launcher is the local side of tether: `launch`, `attach`, `ls HOST`,
// `stop HOST`, `logs HOST` and `demo`. It installs the binary on the remote, starts a
// session there through the tunnel, forwards a local port to it and opens the browser
// without putting the token on any command line. A batch session (launch --slurm,
// --sge, --pbs, --lsf, --batch; batch.go) is submitted and watched on the login node
// through `tether batch submit|watch` there, its options judged first with package
// batch, and reached through the login node (or by SSH to its node).
package launcher
