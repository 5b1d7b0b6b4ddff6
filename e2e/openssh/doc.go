// Package openssh holds tether's end-to-end tests of its SSH transports against the
// real OpenSSH: --ssh openssh with the user's and tether's own ControlMaster, MFA
// (TOTP through PAM) and Kerberos logins, prompts, host profiles, TCP_NODELAY. They use
// package e2e's harness and are a package of their own so that each test binary stays
// well inside go test's per-package time limit.
package openssh
