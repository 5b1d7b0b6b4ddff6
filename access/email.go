package access

import (
	"fmt"
	"strings"
)

// E-mail patterns of a user group: one address (bob@example.org), every address of
// one domain (*@example.org) or every address (*@*). They match a whole address, in
// ASCII letter case only (so no Unicode folding turns a look-alike into a letter of
// the domain: "K" U+212A is not "k"):
//
//   - *@umich.edu matches eve@umich.edu and EVE@UMich.edu, but not eve@sub.umich.edu
//     (the domain exactly, as MDI does: list *@sub.umich.edu too for a subdomain),
//     eve@umich.edu.evil.com, eve@evil.com@umich.edu (two '@') or @umich.edu (no
//     local part).
//   - *@* matches any address with one '@', a local part and a domain.
//
// Other wildcards (alice@*, *bob@example.org, *.example.org) are refused by Load: an
// address at any domain is anyone's to register.

// pattern is one parsed e-mail pattern, lower case.
type pattern struct {
	local  string // "" for *
	domain string // "" for *
}

// parsePattern parses one entry of emails.
func parsePattern(s string) (pattern, error) {
	local, domain, ok := strings.Cut(s, "@")
	switch {
	case !ok || strings.Contains(domain, "@"):
		return pattern{}, fmt.Errorf("%q is not an e-mail pattern: use one '@', as in *@example.org, bob@example.org or *@*", s)
	case local == "*" && domain == "*":
		return pattern{}, nil
	case domain == "*":
		return pattern{}, fmt.Errorf("%q allows that name at any domain, which anyone can register; name the domain (%s@example.org) or use *@*", s, local)
	case !validDomain(domain):
		return pattern{}, fmt.Errorf("%q: %q is not a domain name (letters, digits, '-' and '.')", s, domain)
	case local == "*":
		return pattern{domain: asciiLower(domain)}, nil
	case strings.Contains(local, "*"):
		return pattern{}, fmt.Errorf("%q: '*' stands only for the whole local part (*@%s)", s, domain)
	case !validLocal(local):
		return pattern{}, fmt.Errorf("%q is not an e-mail address", s)
	}
	return pattern{local: asciiLower(local), domain: asciiLower(domain)}, nil
}

// String is the pattern as written (lower case).
func (p pattern) String() string {
	l, d := p.local, p.domain
	if l == "" {
		l = "*"
	}
	if d == "" {
		d = "*"
	}
	return l + "@" + d
}

// match reports whether p matches the whole address email (already split and lower
// cased by splitAddress).
func (p pattern) match(local, domain string) bool {
	return (p.local == "" || p.local == local) && (p.domain == "" || p.domain == domain)
}

// splitAddress splits an address into its local part and domain, in lower case, or
// ok=false when it is not one address: exactly one '@', neither side empty, no spaces
// or control characters.
func splitAddress(email string) (local, domain string, ok bool) {
	local, domain, ok = strings.Cut(asciiLower(email), "@")
	if !ok || strings.Contains(domain, "@") || !validLocal(local) || domain == "" {
		return "", "", false
	}
	for _, r := range domain {
		if r <= ' ' || r == 0x7f {
			return "", "", false
		}
	}
	return local, domain, true
}

// validLocal: a non-empty local part with no spaces or control characters (the
// provider verified the address; this only refuses what cannot be one).
func validLocal(s string) bool {
	if s == "" || len(s) > 64*4 {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r == '@' {
			return false
		}
	}
	return true
}

// validDomain: dot-separated labels of ASCII letters, digits and '-' (punycode for an
// international name), none empty, none starting or ending with '-'.
func validDomain(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// asciiLower lowers ASCII letters only.
func asciiLower(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, s)
}
