// Package shquote quotes words for a POSIX shell: the one rule tether uses wherever a
// command line is built for /bin/sh (an SSH exec, a batch job's script) or shown to a
// person to copy (`ssh gpu-box sinfo -s`); and splits a line into words the way the
// shell would (a scheduler's options, a team server's --app NAME='COMMAND'). It
// imports nothing of ours.
package shquote

import (
	"fmt"
	"strings"
)

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

// Split splits s into words the way a POSIX shell splits a command line, without a
// shell: blanks separate words; 'single quotes' keep
// everything; "double quotes" keep everything but \" \\ \$ \` and backslash-newline;
// a backslash outside quotes keeps the next character. What a shell would expand or
// interpret — $VAR, $(…), `…`, unquoted | & ; < > ( ), * and ? globs, a leading ~ or
// # — is refused rather than passed on changed: tether runs the words as a command's
// arguments and never through a shell, so it cannot honour them. Brackets such as a
// Slurm node list node[01-04] pass as written (as a shell passes a glob that matches
// nothing). Errors are one line.
func Split(s string) ([]string, error) {
	var (
		words   []string
		cur     strings.Builder
		inWord  bool // a word has begun (an empty quoted word counts)
		rs      = []rune(s)
		refused = func(what, why string) error {
			return fmt.Errorf("%s %s, but tether passes the options to the scheduler without a shell; %s", what, why, "write the value out, or put it in single quotes to pass it as it is")
		}
	)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			end := indexRune(rs, '\'', i+1)
			if end < 0 {
				return nil, fmt.Errorf("unterminated single quote in %q", s)
			}
			cur.WriteString(string(rs[i+1 : end]))
			inWord, i = true, end
		case c == '"':
			i++
			for ; i < len(rs) && rs[i] != '"'; i++ {
				switch rs[i] {
				case '\\':
					if i+1 < len(rs) && strings.ContainsRune("\"\\$`\n", rs[i+1]) {
						i++
						if rs[i] != '\n' {
							cur.WriteRune(rs[i])
						}
						continue
					}
					cur.WriteRune('\\')
				case '$':
					return nil, refused(fmt.Sprintf("%q", dollarWord(rs, i)), "inside double quotes would be expanded by a shell")
				case '`':
					return nil, refused("a backquote", "inside double quotes would run a command in a shell")
				default:
					cur.WriteRune(rs[i])
				}
			}
			if i >= len(rs) {
				return nil, fmt.Errorf("unterminated double quote in %q", s)
			}
			inWord = true
		case c == '\\':
			if i+1 >= len(rs) {
				return nil, fmt.Errorf("%q ends with a backslash", s)
			}
			i++
			if rs[i] != '\n' { // backslash-newline joins lines
				cur.WriteRune(rs[i])
				inWord = true
			}
		case strings.ContainsRune("|&;<>()", c):
			return nil, refused(fmt.Sprintf("%q", string(c)), "is a shell operator")
		case c == '$':
			return nil, refused(fmt.Sprintf("%q", dollarWord(rs, i)), "would be expanded by a shell")
		case c == '`':
			return nil, refused("a backquote", "would run a command in a shell")
		case c == '*' || c == '?':
			return nil, refused(fmt.Sprintf("%q", string(c)), "is a shell wildcard")
		case (c == '~' || c == '#') && !inWord:
			what := "a leading ~"
			why := "would be your home directory in a shell"
			if c == '#' {
				what, why = "a leading #", "starts a comment in a shell"
			}
			return nil, refused(what, why)
		default:
			cur.WriteRune(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

func indexRune(rs []rune, r rune, from int) int {
	for i := from; i < len(rs); i++ {
		if rs[i] == r {
			return i
		}
	}
	return -1
}

// dollarWord is the expansion starting at rs[i] ('$'), for the message: $NAME, ${…},
// $(…), at most 24 characters.
func dollarWord(rs []rune, i int) string {
	end := i + 1
	for end < len(rs) && end-i < 24 && (rs[end] == '_' || rs[end] == '{' || rs[end] == '}' || rs[end] == '(' || rs[end] == ')' ||
		rs[end] >= 'a' && rs[end] <= 'z' || rs[end] >= 'A' && rs[end] <= 'Z' || rs[end] >= '0' && rs[end] <= '9') {
		end++
	}
	return string(rs[i:end])
}
