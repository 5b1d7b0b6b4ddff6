package launcher

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/tether-dev/tether/internal/termsafe"
)

// A ~ typed on the laptop is expanded by the laptop's shell: `tether launch gpu-box
// static ~/site` arrives as /Users/ann/site, a path of this computer, which the remote
// does not have (or which is not the user's home there). A word that is this
// computer's home directory, or under it, is such a ~: it is handed to the remote as
// ~/… (which serve expands to the home there) and said so in a note. The one case
// where this changes what a path means, a remote that has the laptop's home path but
// another $HOME, is far rarer than the mistake. A ~ the user quoted reaches the remote
// as it is, and serve expands it the same way.

// remoteHome rewrites the laptop-home words of command (a preset's arguments or a
// COMMAND) as ~/…, noting each on stderr.
func remoteHome(command []string, host string, stderr io.Writer) []string {
	home, err := os.UserHomeDir()
	if err != nil {
		return command
	}
	var out []string
	for i, w := range command {
		rel, ok := underHome(w, home)
		if !ok {
			continue
		}
		if out == nil {
			out = append([]string{}, command...)
		}
		out[i] = rel
		fmt.Fprintf(stderr, "tether: note: %s is this computer's home (your shell expanded ~); %s gets %s, your home there\n", termsafe.OneLine(w), host, rel)
	}
	if out == nil {
		return command
	}
	return out
}

// underHome says whether w is home or a path under it, and gives it as ~ or ~/rest
// (with forward slashes). A home of / or a relative one matches nothing.
func underHome(w, home string) (string, bool) {
	home = strings.TrimRight(home, `/\`)
	drive := len(home) >= 3 && home[1] == ':' && (home[2] == '\\' || home[2] == '/') // C:\Users\ann
	if home == "" || !filepath.IsAbs(home) && !strings.HasPrefix(home, "/") && !drive {
		return "", false
	}
	if w == home {
		return "~", true
	}
	rest, ok := strings.CutPrefix(w, home)
	if !ok || rest == "" || rest[0] != '/' && rest[0] != '\\' {
		return "", false
	}
	return "~/" + strings.TrimLeft(strings.ReplaceAll(rest, `\`, "/"), "/"), true
}
