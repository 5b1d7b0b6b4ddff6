// Package team holds tether's end-to-end tests of the team server (issue 17): sign-in
// with a real OpenID provider (npm oidc-provider on loopback, e2e.StartOIDCProvider).
// They use package e2e's harness and are a package of their own to keep each test
// binary well inside go test's per-package time limit.
package team
