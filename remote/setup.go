package remote

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// shellEnv is what the user's login shell gives a program it starts (after the setup,
// when there is one): the environment, the working directory and the umask. The app
// starts with exactly these, as if typed at the end of that shell's session.
type shellEnv struct {
	shell string // the login shell's name (bash, zsh, tcsh), for messages
	env   []string
	dir   string // the shell's working directory; empty when unknown
	umask int    // -1 when unknown
	took  time.Duration
}

// pathVar is the PATH of env ("" when unset).
func pathVar(env []string) string {
	p := ""
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			p = v
		}
	}
	return p
}

// lookPathIn finds file the way a shell would on the search path path, from the working
// directory dir: a name with a slash is taken as it is (relative to dir); otherwise the
// first regular, executable file of that name in an absolute directory of path.
// Relative entries ("", ".") are skipped, as exec.LookPath refuses what they find.
func lookPathIn(file, path, dir string) (string, error) {
	if strings.Contains(file, "/") {
		p := file
		if !filepath.IsAbs(p) && dir != "" {
			p = filepath.Join(dir, p)
		}
		if executable(p) {
			return p, nil
		}
		return "", fmt.Errorf("%s is not an executable file", p)
	}
	for _, d := range filepath.SplitList(path) {
		if !filepath.IsAbs(d) {
			continue
		}
		if p := filepath.Join(d, file); executable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s was not found on PATH", file)
}

func executable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
