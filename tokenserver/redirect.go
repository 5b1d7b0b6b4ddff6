package tokenserver

import (
	"net/url"
	"strings"
)

const maxNextLen = 2048

// safeNext returns next if it is a local path under base that every browser resolves
// to this same origin, else base. It refuses anything with a scheme or host
// (https://x, http:x, javascript:...), network-path references and their look-alikes
// (//x, ///x, /\x, \\x), characters a URL does not hold unencoded (spaces, controls,
// backslashes, quotes, angle brackets), controls and backslashes percent-encoded once
// or several times over, and dot segments that would climb out
// of base. It is deliberately stricter than browsers are: a false refusal only lands
// the user on base.
func safeNext(next, base string) string {
	if next == "" || len(next) > maxNextLen || !strings.HasPrefix(next, "/") {
		return base
	}
	// The path is checked raw and in each percent-decoded layer of it; the query and
	// fragment may hold anything, encoded.
	path, rest := next, ""
	if i := strings.IndexAny(next, "?#"); i >= 0 {
		path, rest = next[:i], next[i:]
	}
	if strings.ContainsFunc(rest, badURLChar) {
		return base
	}
	if strings.ContainsFunc(path, badURLChar) {
		return base
	}
	cur := path
	for range 4 {
		if !plainLocalPath(cur) {
			return base
		}
		dec, err := url.PathUnescape(cur)
		if err != nil {
			return base
		}
		if dec == cur {
			break
		}
		cur = dec
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return base
	}
	p := u.Path
	if !strings.HasPrefix(p, base) && p+"/" != base {
		return base
	}
	return next
}

// plainLocalPath checks one layer of a candidate redirect path.
func plainLocalPath(s string) bool {
	if !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") || strings.ContainsFunc(s, badDecodedChar) {
		return false
	}
	// A decoded layer may have gained a '?' or '#': what follows is not path.
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i]
	}
	for _, seg := range strings.Split(s, "/") {
		if seg == ".." || seg == "." {
			return false
		}
	}
	return true
}

// badURLChar: anything but RFC 3986's characters (unreserved, reserved, '%'), so
// spaces, controls and backslashes (which browsers strip or turn into '/'), quotes
// and angle brackets: what we redirect to is always written percent-encoded.
func badURLChar(r rune) bool {
	if r >= 0x80 || r <= ' ' {
		return true
	}
	return !isUnreserved(byte(r)) && !strings.ContainsRune(":/?#[]@!$&'()*+,;=%", r)
}

// badDecodedChar: in a decoded layer a space is an ordinary path character (%20);
// controls and backslashes are refused all the same.
func badDecodedChar(r rune) bool {
	return r < ' ' || r == 0x7f || r == '\\'
}
