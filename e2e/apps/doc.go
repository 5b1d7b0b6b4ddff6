// Package apps holds tether's end-to-end tests of real apps in a real browser (Jupyter,
// code-server, Shiny, static files, secondary ports) and of the release archives
// (the arm64 remote under qemu, the Windows launcher under wine). They use package
// e2e's harness and are a package of their own so that each test binary stays well
// inside go test's per-package time limit, and so that `go test ./...` runs them beside
// the others.
package apps
