package wire

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestSetupFrame(t *testing.T) {
	for _, s := range []string{"module load x", "a\nb\n", strings.Repeat("y", MaxSetup)} {
		r := bytes.NewReader(append(SetupFrame(s), "rest"...))
		got, err := ReadSetupFrame(r)
		rest, _ := io.ReadAll(r)
		if err != nil || got != s || string(rest) != "rest" {
			t.Errorf("frame of %.20q: %.20q, %v, rest %q", s, got, err, rest)
		}
	}
	for _, bad := range []string{"", "tether-setup v1 5\nab", "tether-setup v2 1\na", "tether-setup v1 99999999\n", "tether-setup v1 1\n\x00", "tether-setup v1 2\n  "} {
		if _, err := ReadSetupFrame(strings.NewReader(bad)); err == nil {
			t.Errorf("frame %q accepted", bad)
		}
	}
}
