//go:build linux

package e2e

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// runOnTerminal runs tether with args, its stdout a terminal, and returns what the
// terminal received, stderr and the exit code.
func runOnTerminal(t *testing.T, args ...string) (screen, stderr string, code int) {
	t.Helper()
	env, _ := LauncherEnv(t)
	return runOnTerminalEnv(t, env, args...)
}

// runOnTerminalEnv is runOnTerminal with tether's environment env.
func runOnTerminalEnv(t *testing.T, env []string, args ...string) (screen, stderr string, code int) {
	t.Helper()
	master, tty := OpenPTY(t)
	cmd := exec.Command(Binary(t), args...)
	cmd.Env = env
	var errb Buffer
	cmd.Stdout, cmd.Stderr = tty, &errb
	got := make(chan []byte, 1)
	go func() {
		var b bytes.Buffer
		io.Copy(&b, master) // ends with EIO once the last holder of the terminal closes it
		got <- b.Bytes()
	}()
	p := Start(t, cmd)
	tty.Close() // the child holds its own copy
	err, ok := p.Wait(60 * time.Second)
	if !ok {
		t.Fatalf("tether %s did not finish", strings.Join(args, " "))
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("tether %s: %v", strings.Join(args, " "), err)
	}
	select {
	case b := <-got:
		return string(b), errb.String(), code
	case <-time.After(10 * time.Second):
		t.Fatalf("the terminal did not close after tether %s", strings.Join(args, " "))
		return "", "", 0
	}
}

// hostileOutput is what the app prints (printf escapes): its window title, clipboard
// writes (OSC 52), a screen clear and cursor moves, in 7-bit, UTF-8 C1 and raw 8-bit
// form, a colour, concealed text (SGR 8) left on, and text around them.
const hostileOutput = `BEFORE-LINE\n` +
	`\033]52;c;ZXZpbCBjbGlwYm9hcmQ=\007` + // OSC 52: set the clipboard
	`\033]0;pwned-title\007\033]2;pwned-title2\033\\` + // window title, BEL and ST ended
	`\033[2J\033[3J\033[H\033[10;5H` + // clear screen and scrollback, cursor home, move
	`\302\2332J\302\23552;c;YzE=\302\234\302\220qsixel\302\234` + // C1 (UTF-8): CSI, OSC 52 … ST, DCS
	`\2332J` + // a raw 8-bit CSI byte
	`\033[?1049h\033P+q544e\033\\` + // alternate screen; a DCS query (XTGETTCAP)
	`\033[31mRED-TEXT\033[0m\n` +
	`CONCEAL\033[8m-ED\n` + // concealed text, never reset: it must not hide what follows
	`AFTER-LINE\n`

// TestRemoteOutputOnATerminal is issue 11's item 5: `tether logs HOST ID` copies what a
// remote app printed. On a terminal only text and colours arrive (no clipboard write,
// title, screen clear or C1 control); to a pipe the bytes are unchanged. `ls HOST` and
// `stop HOST` go the same way.
func TestRemoteOutputOnATerminal(t *testing.T) {
	NeedPython(t)
	s := StartSSHD(t, SSHDOptions{})
	StopAllOnCleanup(t, s)
	dir := t.TempDir()
	app := filepath.Join(dir, "app.sh")
	os.WriteFile(app, []byte("printf '"+hostileOutput+"'\nexec /usr/bin/python3 -m http.server \"$1\" --bind 127.0.0.1\n"), 0o755)
	l := StartLauncher(t, []string{"launch", "-F", s.Config, s.Alias, "--json", "--no-browser", "--", "/bin/sh", app, "{port}"}, true)
	id := l.Line.Session.ID
	l.Interrupt(t) // detach; the session keeps running

	// A pipe gets the app's bytes unchanged.
	var raw string
	WaitFor(10*time.Second, func() bool {
		raw, _, _ = RunTether(t, "logs", "-F", s.Config, s.Alias, id)
		return strings.Contains(raw, "AFTER-LINE")
	})
	for _, want := range []string{"\x1b]52;c;ZXZpbCBjbGlwYm9hcmQ=\x07", "\x1b]0;pwned-title\x07", "\x1b[2J", "\xc2\x9b2J", "\x9b2J", "\x1b[31mRED-TEXT\x1b[0m"} {
		if !strings.Contains(raw, want) {
			t.Errorf("logs to a pipe lack %q: %q", want, raw)
		}
	}

	// A terminal gets the text and the colour only.
	screen, errOut, code := runOnTerminal(t, "logs", "-F", s.Config, s.Alias, id)
	t.Logf("logs on a terminal: %q", screen)
	if code != 0 {
		t.Fatalf("logs on a terminal: exit %d: %s", code, errOut)
	}
	MustContain(t, "logs on a terminal", screen, "BEFORE-LINE\n", "\x1b[31mRED-TEXT\x1b[0m\n", "CONCEAL\x1b[8m-ED\x1b[m\nAFTER-LINE\n")
	checkScreen(t, "logs", screen)

	// On the remote itself, `tether logs ID` on a terminal is filtered the same way.
	remoteEnv := []string{"HOME=" + s.Home, "PATH=" + os.Getenv("PATH")}
	screen, errOut, code = runOnTerminalEnv(t, remoteEnv, "logs", id)
	t.Logf("logs on the remote's terminal: %q", screen)
	if code != 0 {
		t.Fatalf("logs on the remote's terminal: exit %d: %s", code, errOut)
	}
	MustContain(t, "logs on the remote's terminal", screen, "BEFORE-LINE\n", "\x1b[31mRED-TEXT\x1b[0m\n", "CONCEAL\x1b[8m-ED\x1b[m\nAFTER-LINE\n")
	checkScreen(t, "remote logs", screen)

	screen, errOut, code = runOnTerminal(t, "ls", "-F", s.Config, s.Alias)
	if code != 0 || !strings.Contains(screen, id) { // (not logged: ls shows the token)
		t.Errorf("ls on a terminal: exit %d, %d bytes, %s", code, len(screen), errOut)
	}
	checkScreen(t, "ls", screen)

	screen, errOut, code = runOnTerminal(t, "stop", "-F", s.Config, s.Alias, id)
	t.Logf("stop on a terminal: %q", screen)
	if code != 0 {
		t.Errorf("stop on a terminal: exit %d, %q, %s", code, screen, errOut)
	}
	checkScreen(t, "stop", screen)
}

// checkScreen fails if what reached the terminal holds anything but text, \n, \t and
// SGR sequences, or any of the hostile payloads.
func checkScreen(t *testing.T, what, screen string) {
	t.Helper()
	for _, bad := range []string{"ZXZpbCBjbGlwYm9hcmQ", "pwned-title", "YzE=", "sixel", "544e"} {
		if strings.Contains(screen, bad) {
			t.Errorf("%s: %q reached the terminal", what, bad)
		}
	}
	for i := 0; i < len(screen); i++ {
		c := screen[i]
		switch {
		case c == 0x1b:
			end := strings.IndexByte(screen[i:], 'm')
			if end < 0 || !strings.HasPrefix(screen[i:], "\x1b[") || strings.Trim(screen[i+2:i+end], "0123456789;:") != "" {
				t.Errorf("%s: an escape sequence other than a colour reached the terminal: %q", what, screen[i:min(i+16, len(screen))])
				return
			}
			i += end
		case c < 0x20 && c != '\n' && c != '\t' || c == 0x7f:
			t.Errorf("%s: control %#x reached the terminal at %d", what, c, i)
			return
		}
	}
	if !utf8.ValidString(screen) {
		t.Errorf("%s: bytes that are not UTF-8 reached the terminal (an 8-bit C1 control?)", what)
	}
	for _, r := range screen {
		if r >= 0x80 && r < 0xa0 {
			t.Errorf("%s: C1 control %U reached the terminal", what, r)
			return
		}
	}
}
