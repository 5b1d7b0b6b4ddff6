package remote

import (
	"os"
	"path/filepath"
	"strings"
)

// expandHome replaces a leading ~ in each word of a command or of a preset's
// arguments (`~`, `~/site`) with this user's home directory, as a shell here would:
// the launcher's words reach serve without a shell, and the laptop's shell either
// expanded the ~ there (the launcher hands such words back as ~/…) or left it alone
// because the user quoted it for this machine. ~user and a ~ inside a word stay.
func expandHome(words []string) []string {
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return words
	}
	var out []string
	for i, w := range words {
		if w != "~" && !strings.HasPrefix(w, "~/") {
			continue
		}
		if out == nil {
			out = append([]string{}, words...)
		}
		out[i] = filepath.Join(home, w[1:])
	}
	if out == nil {
		return words
	}
	return out
}
