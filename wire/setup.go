package wire

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// The setup script (`launch --setup SCRIPT`) crosses SSH on the remote command's stdin,
// never on its command line (every user of the machine can read /proc/PID/cmdline):
// one frame, "tether-setup v1 LENGTH\n" then LENGTH bytes, ahead of whatever else the
// command reads there. `tether serve --setup-stdin` and `tether batch submit
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
		return Usagef("--setup is empty; give the commands that prepare the app's environment, e.g. --setup 'module load python'")
	case len(script) > MaxSetup:
		return Usagef("--setup is %d bytes, more than %d; put the commands in a file on the remote and give --setup '. ~/FILE'", len(script), MaxSetup)
	case strings.ContainsRune(script, 0):
		return Usagef("--setup holds a NUL byte, which no shell can run")
	}
	return nil
}

// SetupFrame is the stdin frame carrying script.
func SetupFrame(script string) []byte {
	return append([]byte(setupTag+strconv.Itoa(len(script))+"\n"), script...)
}

// ErrNoSetupFrame: stdin did not start with a setup frame.
var ErrNoSetupFrame = errors.New("no setup script on stdin")

// ReadSetupFrame reads one frame from r, byte by byte up to the header's newline (so
// nothing after the frame is consumed), then exactly the script.
func ReadSetupFrame(r io.Reader) (string, error) {
	var hdr []byte
	one := make([]byte, 1)
	for len(hdr) <= len(setupTag)+8 {
		if _, err := io.ReadFull(r, one); err != nil {
			return "", ErrNoSetupFrame
		}
		if one[0] == '\n' {
			break
		}
		hdr = append(hdr, one[0])
	}
	n, err := strconv.Atoi(strings.TrimPrefix(string(hdr), setupTag))
	if !strings.HasPrefix(string(hdr), setupTag) || err != nil || n < 0 || n > MaxSetup {
		return "", fmt.Errorf("%w (a bad frame header)", ErrNoSetupFrame)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("%w (the script was cut short)", ErrNoSetupFrame)
	}
	if err := CheckSetup(string(b)); err != nil {
		return "", err
	}
	return string(b), nil
}
