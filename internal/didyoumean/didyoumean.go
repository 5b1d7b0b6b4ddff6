// Package didyoumean suggests the names closest to a mistyped one, as git does for a
// mistyped command: by edit distance (insertions, deletions, substitutions and swaps of
// neighbours, letter case ignored) and by prefix (jupyterlab → jupyter, jup →
// jupyter). The launcher uses it for presets and ssh_config hosts, the remote side for
// --app.
package didyoumean

import (
	"sort"
	"strings"
)

// Closest returns the names nearest to word, best first: those that one is a prefix
// of the other (of at least 3 letters), then those within a small edit distance (1 for
// words of up to 4 letters, 2 up to 8, 3 beyond). A name equal to word is never
// suggested (one differing only in case is); no name near enough gives nil.
func Closest(word string, names []string) []string {
	w := strings.ToLower(word)
	if len(w) == 0 {
		return nil
	}
	type scored struct {
		name  string
		score int
	}
	var found []scored
	seen := map[string]bool{}
	for _, n := range names {
		ln := strings.ToLower(n)
		if n == word || seen[n] {
			continue
		}
		seen[n] = true
		score := -1
		switch {
		case ln == w:
			score = 0
		case len(w) >= 3 && strings.HasPrefix(ln, w), len(ln) >= 3 && strings.HasPrefix(w, ln):
			score = 0
		default:
			if d := distance(w, ln); d <= limit(len(w)) {
				score = d
			}
		}
		if score >= 0 {
			found = append(found, scored{n, score})
		}
	}
	if len(found) == 0 {
		return nil
	}
	sort.SliceStable(found, func(i, j int) bool { return found[i].score < found[j].score })
	var out []string
	for _, f := range found {
		if f.score != found[0].score || len(out) == 3 {
			break
		}
		out = append(out, f.name)
	}
	return out
}

// Phrase words a suggestion: "did you mean jupyter?", "did you mean a or b?"; "" for
// none.
func Phrase(names []string) string {
	switch len(names) {
	case 0:
		return ""
	case 1:
		return "did you mean " + names[0] + "?"
	}
	return "did you mean " + strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1] + "?"
}

func limit(n int) int {
	switch {
	case n <= 4:
		return 1
	case n <= 8:
		return 2
	}
	return 3
}

// distance is the optimal string alignment distance between a and b (Levenshtein
// with transpositions of neighbours), over runes.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
