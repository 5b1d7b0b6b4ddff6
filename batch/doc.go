// Package batch owns what tether knows of batch schedulers: for each one (Slurm, Grid
// Engine, PBS Pro/OpenPBS, LSF, and a site's own wrapper, see Site), the options of its
// submit command that tether refuses (CheckOptions, read the way that command's own
// parser reads them), the commands that submit, query and cancel a job, and how their
// answers read, mapped onto one Job in Slurm's words. It runs nothing by itself: the
// remote side gives it a Runner that runs the scheduler's commands on the login node,
// and the launcher uses it to check options before it connects and to word hints.
//
// Slurm and Grid Engine are checked against real single-node clusters in the e2e
// tests; PBS and LSF are written from their documentation and tested against outputs
// written in their documented formats (testdata/), and README marks them unverified.
//
// batch imports none of tether's packages (deps_test.go); remote and launcher import
// it.
package batch
