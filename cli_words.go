package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/alecthomas/kong"

	"github.com/tether-dev/tether/internal/didyoumean"
	"github.com/tether-dev/tether/internal/shquote"
	"github.com/tether-dev/tether/remote"
	"github.com/tether-dev/tether/tunnel"
	"github.com/tether-dev/tether/wire"
)

// One word after stop or logs is a session of this machine (`tether stop ID` on the
// remote itself), but on a laptop it is far more often a HOST whose session id was
// forgotten. With -F or --ssh it can only be a HOST; otherwise this machine's sessions
// are looked at first, and when none is called so the error says what is missing in
// the remote form, instead of "no session "gpu-box" on laptop; run `tether ls`".

// dashed says whether the user's words had a -- (`tether stop -- ID`: ID is taken
// literally, as this machine's session; the launcher runs the remote's so).
func dashed(kctx *kong.Context) bool { return slices.Contains(kctx.Args, "--") }

// oneWord runs local (stop or logs of this machine's session word) unless the flags
// say word is a HOST; a session not found here is explained both ways.
func oneWord(cmd, word string, h hostFlags, local func() error) error {
	// portal:ID is never a session's name (no ':' in those): a HOST behind a relay.
	if h.ConfigFile != "" || h.SSH != "" || h.Relay != "" || strings.HasPrefix(word, "portal:") {
		return &usageError{msg: fmt.Sprintf("%s %s: which session? Give its id or name after the host: `%s` (`%s` lists them)%s",
			cmd, word, hostCmd(h, cmd, word, "ID"), hostCmd(h, "ls", word), allForm(h, cmd, word))}
	}
	err := local()
	var ns *remote.NoSessionError
	if !errors.As(err, &ns) {
		return err
	}
	if isHostAlias(word) {
		return &usageError{msg: fmt.Sprintf("%s is a host in your ssh config and no session here is called so; for its sessions give the host, then the session: `%s` (`%s` lists them)%s",
			word, hostCmd(h, cmd, word, "ID"), hostCmd(h, "ls", word), allForm(h, cmd, word))}
	}
	return fmt.Errorf("no session %q on this machine (%s); for a session on a remote machine give the host first: `tether %s HOST ID` (`tether ls HOST` lists them)",
		ns.Ref, ns.Host, cmd)
}

func allForm(h hostFlags, cmd, host string) string {
	if cmd != "stop" {
		return ""
	}
	return ", or `" + hostCmd(h, "stop", host, "--all") + "`"
}

// hostCmd is a tether command line against host with the transport flags given.
func hostCmd(h hostFlags, cmd, host string, args ...string) string {
	parts := []string{"tether", cmd}
	if h.ConfigFile != "" {
		parts = append(parts, "-F", shquote.Quote(h.ConfigFile))
	}
	if h.SSH != "" {
		parts = append(parts, "--ssh", shquote.Quote(h.SSH))
	}
	switch {
	case h.Relay != "":
		parts = append(parts, "--relay", shquote.Quote(h.Relay))
	case strings.HasPrefix(host, "portal:"):
		parts = append(parts, "--relay", "URL")
	}
	parts = append(parts, shquote.Quote(host))
	return strings.Join(append(parts, args...), " ")
}

// isHostAlias says whether word is a Host named in the user's ssh config.
func isHostAlias(word string) bool {
	for _, a := range tunnel.HostAliases(tunnel.ResolveOptions{}) {
		if a == word {
			return true
		}
	}
	return false
}

// presetTypo refuses, before anything connects, an APP that names no preset but is
// near one (`launch HOST jupyterlab`): it would otherwise run as a command of that name
// and fail on the remote. A command so named runs after --.
func presetTypo(host string, raw, positionals []string) error {
	after := 0
	for i, a := range raw {
		if a == "--" {
			after = len(raw) - i - 1
			break
		}
	}
	if len(positionals)-after <= 0 {
		return nil // everything came after --: a command, taken literally
	}
	word := positionals[0]
	if _, ok := wire.LookupPreset(word); ok || strings.ContainsAny(word, "/{}=") {
		return nil
	}
	near := didyoumean.Closest(word, wire.PresetNames())
	if len(near) == 0 {
		return nil
	}
	return &usageError{msg: fmt.Sprintf("%s is not an app preset; %s (`tether apps` lists them); to run a program named %s, put it after --: `tether launch %s -- %s`",
		word, didyoumean.Phrase(near), word, shquote.Quote(host), shquote.Join(positionals))}
}
