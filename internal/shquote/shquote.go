// Package shquote quotes words for a POSIX shell: the one rule tether uses wherever a
// command line is built for /bin/sh (an SSH exec, a batch job's script) or shown to a
// person to copy (`ssh gpu-box sinfo -s`); and splits a line into words the way the
// shell would (a scheduler's options, a team server's --app NAME='COMMAND'). A line
// that sshd hands to the user's login shell, which may be csh/tcsh or fish, carries
// its words with Portable and ScriptCommand (or LoginCommand) instead. It imports
// nothing of ours.
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

// Through a login shell. sshd runs an exec's command line with the user's login shell
// (`$SHELL -c LINE`), which may be sh, bash, dash, zsh, csh/tcsh or fish, and they do
// not all keep a single-quoted word as it is: csh and tcsh expand history (!x) and
// refuse a newline even inside single quotes, fish reads \\ and \' inside them as
// escapes. Every other character is kept by all of them. So a line for the login shell
// runs /bin/sh -c SCRIPT, the script starting with DecodeArgs, and passes each word as
// Portable(word): those characters written as \0ooo (octal) escapes, which DecodeArgs
// turns back with printf %b in /bin/sh.

// Portable quotes s like Quote, with each backslash, !, control character (newline,
// tab, …), DEL and byte above 0x7f written as \0ooo: what reaches /bin/sh through any
// login shell is the same text, and DecodeArgs makes it s again. Only for words that
// DecodeArgs will see (LoginCommand's, or a script that starts with it).
func Portable(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' || c == '!' || c < 0x20 || c >= 0x7f {
			fmt.Fprintf(&b, `\0%03o`, c)
			continue
		}
		b.WriteByte(c)
	}
	return Quote(b.String())
}

// DecodeArgs is the /bin/sh code that turns each positional parameter written by
// Portable back into the word itself, in order: a word with a 0 in it (every escape
// is \0ooo) goes through printf %b, which leaves a word without a backslash as it is;
// the others stay as they are without a fork. It holds no newline, no ! and no
// backslash, so it passes every login shell inside single quotes. It sets a and n.
const DecodeArgs = `n=$#; while [ $n -gt 0 ]; do a="$1"; shift; case "$a" in *0*) a=$(printf %b. "$a"); a="${a%.}";; esac; set -- "$@" "$a"; n=$((n-1)); done;`

// LoginCommand is a command line that runs argv with every word unchanged whatever the
// login shell that sshd hands it to: /bin/sh -c, DecodeArgs, then exec of the words
// (each written with Portable). redirect, when not empty, is sh redirections for the
// exec (such as 2>/dev/null), applied by /bin/sh and not by the login shell.
func LoginCommand(argv []string, redirect string) string {
	script := `exec "$@"`
	if redirect != "" {
		script += " " + redirect
	}
	return ScriptCommand(script, argv)
}

// ScriptCommand is a command line that runs script with /bin/sh, whatever the login
// shell that sshd hands it to, with args as "$@" (each unchanged: written with Portable,
// turned back by DecodeArgs before script runs). script must be one line with no !
// but before a blank or =, and no backslash: what every login shell keeps inside
// single quotes.
func ScriptCommand(script string, args []string) string {
	q := []string{Join([]string{"/bin/sh", "-c", DecodeArgs + " " + script, "sh"})}
	for _, a := range args {
		q = append(q, Portable(a))
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
