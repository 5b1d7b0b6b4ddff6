package remote

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The setup script (`launch --setup SCRIPT`) crosses SSH on the remote command's stdin,
// never on its command line (every user of the machine can read /proc/PID/cmdline):
// one frame, "tether-setup v1 LENGTH\n" then LENGTH bytes, ahead of whatever else the
// command reads there. `tether serve --setup-stdin` and `tether slurm submit
// --setup-stdin` read it; SetupFrame writes it. Builds everywhere: the launcher writes
// frames on every system.

const setupTag = "tether-setup v1 "

// MaxSetup bounds a setup script (a few module loads and an activate are a few
// hundred bytes).
const MaxSetup = 64 << 10

// CheckSetup refuses a setup script tether would not run: empty, too long, or holding a
// NUL byte (no shell takes it). The message is for the user, in launch's words.
func CheckSetup(script string) error {
	switch {
	case strings.TrimSpace(script) == "":
		return usagef("--setup is empty; give the commands that prepare the app's environment, e.g. --setup 'module load python'")
	case len(script) > MaxSetup:
		return usagef("--setup is %d bytes, more than %d; put the commands in a file on the remote and give --setup '. ~/FILE'", len(script), MaxSetup)
	case strings.ContainsRune(script, 0):
		return usagef("--setup holds a NUL byte, which no shell can run")
	}
	return nil
}

// SetupFrame is the stdin frame carrying script.
func SetupFrame(script string) []byte {
	return append([]byte(setupTag+strconv.Itoa(len(script))+"\n"), script...)
}

var errNoSetupFrame = errors.New("no setup script on stdin")

// readSetupFrame reads one frame from r, byte by byte up to the header's newline (so
// nothing after the frame is consumed), then exactly the script.
func readSetupFrame(r io.Reader) (string, error) {
	var hdr []byte
	one := make([]byte, 1)
	for len(hdr) <= len(setupTag)+8 {
		if _, err := io.ReadFull(r, one); err != nil {
			return "", errNoSetupFrame
		}
		if one[0] == '\n' {
			break
		}
		hdr = append(hdr, one[0])
	}
	n, err := strconv.Atoi(strings.TrimPrefix(string(hdr), setupTag))
	if !strings.HasPrefix(string(hdr), setupTag) || err != nil || n < 0 || n > MaxSetup {
		return "", fmt.Errorf("%w (a bad frame header)", errNoSetupFrame)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("%w (the script was cut short)", errNoSetupFrame)
	}
	if err := CheckSetup(string(b)); err != nil {
		return "", err
	}
	return string(b), nil
}

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
