// Package faults holds tether's long end-to-end runs under faults and load: the
// Toxiproxy fault campaign, the soak, a thousand connections at once. They are a package
// of their own so that `go test ./...` runs them beside the rest of e2e (two test
// binaries in parallel) and each stays well inside go test's per-package time limit.
package faults
