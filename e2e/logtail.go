package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// logTails is a cluster's daemon logs for a failure message: the last max lines of
// each file under dir, under a "==> name <==" heading, files that are empty or absent
// left out. A name may list alternatives separated by "|" ("slurmd.log|slurmd.out"):
// the first that has anything is shown.
func logTails(dir string, max int, names ...string) string {
	var b strings.Builder
	for _, name := range names {
		var data []byte
		for _, n := range strings.Split(name, "|") {
			if data, _ = os.ReadFile(filepath.Join(dir, n)); len(data) > 0 {
				name = n
				break
			}
		}
		if len(data) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > max {
			lines = append([]string{"…"}, lines[len(lines)-max:]...)
		}
		fmt.Fprintf(&b, "==> %s <==\n%s\n", name, strings.Join(lines, "\n"))
	}
	return b.String()
}
