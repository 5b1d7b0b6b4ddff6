// Package batch holds tether's end-to-end tests of launches through batch schedulers:
// --slurm and --sge on real Slurm and Grid Engine clusters behind a real sshd (jobs,
// partitions, pending jobs, cancellation, what ls, logs and stop show). They use package
// e2e's harness (slurm.go, slurmsite.go, sge.go) and are a package of their own so that
// each test binary stays well inside go test's per-package time limit.
package batch
