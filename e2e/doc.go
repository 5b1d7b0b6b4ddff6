// Package e2e holds end-to-end tests of the built tether binary against a real OpenSSH
// sshd on 127.0.0.1 and headless Chromium, and the harness that starts them (also a
// single-node Slurm cluster, StartSlurm, and Grid Engine cell, StartSGE). The tests
// skip with a message naming the missing package unless TETHER_E2E=require, in which
// case a missing sshd or Chromium is a failure.
package e2e
