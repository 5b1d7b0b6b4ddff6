// Package relay holds tether's end-to-end tests of relays (issue 18): the built
// `tether host` offering a machine, reached by the real launcher through OpenSSH. They
// use package e2e's harness and are a package of their own to stay lean and fast.
package relay
