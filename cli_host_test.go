package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestHostCommandLine: the host token never comes from argv (a --token flag is refused
// with the reason, exit 2), and a missing TETHER_PORTAL_TOKEN is one line (exit 1).
func TestHostCommandLine(t *testing.T) {
	t.Setenv("TETHER_PORTAL_TOKEN", "")
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"host", "--relay", "wss://relay.example.org", "--token", "secret-in-argv"}, 2, "tether: --token is not taken: a token on the command line is visible to every user of this machine (ps); set TETHER_PORTAL_TOKEN instead\n"},
		{[]string{"host", "--relay", "wss://relay.example.org"}, 1, "tether: TETHER_PORTAL_TOKEN is not set; set it to this machine's host token"},
		{[]string{"host"}, 2, "--relay"},
	}
	for _, tt := range tests {
		var out, errb bytes.Buffer
		code := run(context.Background(), tt.args, &out, &errb)
		if code != tt.code || !strings.Contains(errb.String(), tt.want) || strings.Contains(errb.String(), "secret-in-argv") {
			t.Errorf("for %q, got %d %q; want %d and %q", tt.args, code, errb.String(), tt.code, tt.want)
		}
	}
}
