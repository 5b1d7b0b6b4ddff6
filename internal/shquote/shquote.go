// Package shquote quotes words for a POSIX shell: the one rule tether uses wherever a
// command line is built for /bin/sh (an SSH exec, a batch job's script) or shown to a
// person to copy (`ssh gpu-box sinfo -s`). It imports nothing.
package shquote

import "strings"

// Quote quotes s for a POSIX shell: single quotes around it, each single quote inside
// written as quote, backslash, quote, quote. Words of safe characters stay bare ('='
// is not safe: a bare A=1 in command position would be an assignment).
// The empty string becomes a pair of single quotes.
func Quote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:,@+%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Join quotes every word of argv and joins them with spaces: a command line the shell
// splits back into exactly argv.
func Join(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = Quote(a)
	}
	return strings.Join(q, " ")
}
