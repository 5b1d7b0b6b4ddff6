package launcher

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tether-dev/tether/internal/shquote"
)

// FuzzSplitOptions: the scheduler-options splitter never panics, refuses in one line,
// and what it accepts means the words it returns: quoting them again for a shell and
// splitting gives the same words.
func FuzzSplitOptions(f *testing.F) {
	for _, s := range []string{
		"", "-p gpu --gres=gpu:1 -t 4:00:00", "--comment 'two words'", `--comment 'it''s'`,
		`--comment "a \"quoted\" \\ \$ \` + "`" + ` word"`, `--comment a\ b\'c`, `-J"x"y'z'`,
		"--nodelist=node[01-04]", "-p gpu \\\n -t 1", "--x=$HOME", "-p gpu; rm -rf ~", "'unterminated",
		`"unterminated`, "a\\", "#comment", "~/x", "*", "$(id)", "`id`", "--x=\"$(id)\"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		words, err := SplitOptions(in)
		if err != nil {
			if strings.ContainsAny(err.Error(), "\n\r") && !strings.ContainsAny(in, "\n\r") {
				t.Fatalf("SplitOptions(%q): error over several lines: %q", in, err)
			}
			return
		}
		if !utf8.ValidString(in) {
			return // []rune turns bad bytes into U+FFFD: a round trip cannot match
		}
		q := make([]string, len(words))
		for i, w := range words {
			q[i] = shquote.Quote(w)
		}
		again, err := SplitOptions(strings.Join(q, " "))
		if err != nil {
			t.Fatalf("SplitOptions(%q) = %q, but its quoted form %q is refused: %v", in, words, strings.Join(q, " "), err)
		}
		if !slices.Equal(words, again) && !(len(words) == 0 && len(again) == 0) {
			t.Fatalf("SplitOptions(%q) = %q; quoted and split again: %q", in, words, again)
		}
	})
}
