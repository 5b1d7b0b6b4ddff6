package access

import (
	"strings"
	"testing"
)

func TestEmailPatterns(t *testing.T) {
	tests := []struct {
		pattern string
		match   []string
		nomatch []string
	}{
		{
			pattern: "*@umich.edu",
			match:   []string{"eve@umich.edu", "EVE@UMich.EDU", "first.last+tag@umich.edu"},
			nomatch: []string{
				"eve@umich.edu.evil.com", // a suffix is not the domain
				"eve@sub.umich.edu",      // the domain exactly, as MDI does
				"eve@evilumich.edu",
				"eve@umich.edu@evil.com", // two '@'
				"eve@evil.com@umich.edu",
				"@umich.edu", // no local part
				"umich.edu",
				"eve@umich.edu.", // a trailing dot is another name
				"eve@umich.edu ",
				" eve@umich.edu",
				"eve @umich.edu",
				"eve\n@umich.edu",
				"eve@umich\u212Aedu", // Kelvin sign: no Unicode folding
				"",
			},
		},
		{
			pattern: "*@kth.se",
			match:   []string{"a@kth.se", "a@KTH.se"},
			nomatch: []string{"a@\u212Ath.se"}, // "K" U+212A, which Unicode lowers to k
		},
		{
			pattern: "Bob@Example.org",
			match:   []string{"bob@example.org", "BOB@EXAMPLE.ORG"},
			nomatch: []string{"bob2@example.org", "xbob@example.org", "bob@example.org.evil.com", "bob@sub.example.org", "alice@example.org"},
		},
		{
			pattern: "*@*",
			match:   []string{"a@b", "eve@umich.edu", "x@y.z"},
			nomatch: []string{"", "@", "a@", "@b", "ab", "a@b@c", "a b@c"},
		},
	}
	for _, tt := range tests {
		p, err := parsePattern(tt.pattern)
		if err != nil {
			t.Fatalf("parsePattern(%q): %v", tt.pattern, err)
		}
		for _, e := range tt.match {
			if l, d, ok := splitAddress(e); !ok || !p.match(l, d) {
				t.Errorf("%q does not match %q; want it to", tt.pattern, e)
			}
		}
		for _, e := range tt.nomatch {
			if l, d, ok := splitAddress(e); ok && p.match(l, d) {
				t.Errorf("%q matches %q; want it not to", tt.pattern, e)
			}
		}
	}
}

func TestEmailPatternRefused(t *testing.T) {
	tests := []struct{ pattern, want string }{
		{"alice@*", "any domain"},
		{"*bob@example.org", "whole local part"},
		{"b*@example.org", "whole local part"},
		{"*@*.example.org", "not a domain name"},
		{"*@example.org.", "not a domain name"},
		{"*@-example.org", "not a domain name"},
		{"*@exa mple.org", "not a domain name"},
		{"*@exämple.org", "not a domain name"},
		{"*", "one '@'"},
		{"example.org", "one '@'"},
		{"a@b@example.org", "one '@'"},
		{"@example.org", "not an e-mail address"},
		{"a b@example.org", "not an e-mail address"},
	}
	for _, tt := range tests {
		if _, err := parsePattern(tt.pattern); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parsePattern(%q) = %v; want an error containing %q", tt.pattern, err, tt.want)
		}
	}
}
