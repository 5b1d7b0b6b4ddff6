package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestRelayFlags: --relay on every command that takes a HOST; the token comes from
// TETHER_PORTAL_TOKEN only, and a missing one, a HOST that is not portal:ID, a portal
// without --relay, --ssh openssh and a token in the URL are each one line saying what
// to do, before anything is dialled.
func TestRelayFlags(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("TETHER_STATE_DIR", t.TempDir())
	t.Setenv("TETHER_PORTAL_TOKEN", "")
	const r = "wss://relay.example.test"
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"launch", "--relay", r, "portal:lab"}, "tether: --relay needs your client token for portal:lab in TETHER_PORTAL_TOKEN (never on the command line)"},
		{[]string{"attach", "--relay", r, "portal:lab"}, "in TETHER_PORTAL_TOKEN"},
		{[]string{"ls", "--relay", r, "portal:lab"}, "in TETHER_PORTAL_TOKEN"},
		{[]string{"stop", "--relay", r, "portal:lab", "--all"}, "in TETHER_PORTAL_TOKEN"},
		{[]string{"logs", "--relay", r, "portal:lab", "abc"}, "in TETHER_PORTAL_TOKEN"},
		{[]string{"forward", "--relay", r, "portal:lab", "5432"}, "in TETHER_PORTAL_TOKEN"},
		{[]string{"apps", "--relay", r, "portal:lab"}, "in TETHER_PORTAL_TOKEN"},
		{[]string{"launch", "--relay", r, "gpu-box"}, "--relay reaches a portal: give the host as portal:ID"},
		{[]string{"launch", "portal:lab"}, "portal:lab names a portal behind a relay: add --relay URL"},
		{[]string{"ls", "portal:lab"}, "portal:lab names a portal behind a relay: add --relay URL"},
		{[]string{"launch", "--ssh", "openssh", "--relay", r, "portal:lab"}, "--ssh openssh cannot go through a relay"},
		{[]string{"launch", "--relay", r + "/?token=abc", "portal:lab"}, "--relay takes the relay's address only"},
		{[]string{"stop", "portal:lab"}, "`tether stop --relay URL portal:lab ID`"},
		{[]string{"logs", "--relay", r, "portal:lab"}, "`tether logs --relay wss://relay.example.test portal:lab ID`"},
	}
	for _, tt := range tests {
		var out, errb bytes.Buffer
		code := run(context.Background(), tt.args, &out, &errb)
		if code != 2 || strings.Count(errb.String(), "\n") != 1 || !strings.Contains(errb.String(), tt.want) {
			t.Errorf("for %q, got %d %q; want 2 and one line with %q", tt.args, code, errb.String(), tt.want)
		}
	}
	// With the token set, the HOST goes to the relay (a closed port on loopback); the
	// token is in no message.
	t.Setenv("TETHER_PORTAL_TOKEN", "secret-client-token-0123456789")
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"ls", "--relay", "ws://127.0.0.1:1", "portal:lab"}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "cannot reach portal:lab: cannot reach the relay at 127.0.0.1:1") ||
		strings.Contains(errb.String(), "secret-client-token") {
		t.Errorf("ls with a token: %d %q", code, errb.String())
	}
}
