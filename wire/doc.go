// Package wire is the vocabulary of what crosses SSH between the launcher and the
// remote tether, in the spirit of tailscale's tailcfg: both sides import it, and
// neither parses the other's prose.
//
// It holds the ready record and the session states (record.go), the rules for a
// session's id, name and base URL (rules.go; the base URL's is the gate's), serve's
// command line as a type that both builds and parses it (serve.go), the failure
// record that a command run for a launcher prints instead of a message to parse, and
// the text it holds, whose references to the machine and to tether commands are data
// each side words its own way (failure.go, text.go), the events of a batch job with
// their typed kinds (batch.go), what `stop --json` stopped (stop.go), and the setup
// frame (setup.go).
//
// It depends only on leaves: the gate's rules (tokenserver) and the scheduler's job
// (batch).
package wire
