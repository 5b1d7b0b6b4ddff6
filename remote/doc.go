// Package remote is the remote side of tether: `serve`, `ls`, `stop` and `logs`,
// session directories and records, detaching, starting, supervising and stopping the
// app, readiness and idle shutdown. Its Record type (the ready record) is the contract
// with the launcher.
package remote
