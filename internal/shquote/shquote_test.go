package shquote

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var quoteCases = []string{
	"", "plain", "with space", "  lead and trail  ", "it's", `double "quotes"`, "$HOME", "$(id)",
	"`id`", "back\\slash", "new\nline", "tab\there", "*", "?", "[a]", "~", "a;b", "a|b", "a&b",
	"-n", "--", "A=1", "'", "''", `\'`, "é ünïcödé", "#comment", "!bang", "{a,b}", "%s",
}

// TestQuoteRoundTrip runs every case through a real /bin/sh: each word comes back as
// it was, and a word shaped like an assignment stays a word.
func TestQuoteRoundTrip(t *testing.T) {
	if _, err := exec.LookPath("/bin/sh"); err != nil {
		t.Skip("no /bin/sh here")
	}
	argv := append([]string{"printf", `%s\000`}, quoteCases...)
	want := strings.Join(quoteCases, "\x00") + "\x00"
	out, err := exec.Command("/bin/sh", "-c", Join(argv)).Output()
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != want {
		t.Fatalf("got %q\nwant %q", out, want)
	}
	for _, s := range quoteCases {
		out, err := exec.Command("/bin/sh", "-c", "printf %s "+Quote(s)).Output()
		if err != nil || string(out) != s {
			t.Errorf("for %q, got %q (%v); want it back", s, out, err)
		}
	}
	if err := exec.Command("/bin/sh", "-c", Join([]string{"A=1", "true"})).Run(); err == nil {
		t.Error("A=1 in command position was taken as an assignment")
	}
}

func ExampleJoin() {
	fmt.Println(Join([]string{"jupyter", "lab", "--port={port}", "it's", ""}))
	// Output: jupyter lab '--port={port}' 'it'\''s' ''
}

// hardWords are words every login shell must pass unchanged (LoginCommand): history,
// escapes, quotes, expansions, globs, comments, control characters, unicode, the
// empty word, a leading dash.
var hardWords = []string{
	"hi!", "print(\"hi!\")", "!!", "a!b c", "!$", `\`, `\\`, `a\\b`, `\!`, `\'`, `'`, `"`, "it's", `"q" 'q'`,
	"$HOME", "${x}", "$(id)", "`id`", "*", "?", "[x]", "[!0-9]", "{a,b}", "~", "~root", "#c", "a #b",
	"line1\nline2", "\n", "end\n", "\r\n", "t\tab", "", " ", "-n", "-e", "--", "é ü 漢字 🙂", "\xff\xfe",
	"%s %b %%", `\0134`, `\n`, "a=b", ";&|<>()", "\x01\x7f",
}

// TestLoginCommandUnderEveryShell runs LoginCommand's line the way sshd does,
// `SHELL -c LINE`, under each login shell installed here, and checks that printf got
// exactly the words.
func TestLoginCommandUnderEveryShell(t *testing.T) {
	printf := "/usr/bin/printf"
	if _, err := os.Stat(printf); err != nil {
		t.Skipf("no %s here: %v", printf, err)
	}
	ran := 0
	for _, sh := range []string{"/bin/sh", "/bin/bash", "/bin/dash", "/bin/zsh", "/bin/tcsh", "/bin/csh", "/usr/bin/fish"} {
		if _, err := os.Stat(sh); err != nil {
			t.Logf("SKIP %s: not installed (%v)", sh, err)
			continue
		}
		ran++
		t.Run(filepath.Base(sh), func(t *testing.T) {
			for _, w := range hardWords {
				line := LoginCommand([]string{printf, `%s\000`, w, "after"}, "")
				cmd := exec.Command(sh, "-c", line)
				cmd.Env = append(os.Environ(), "SHELL="+sh)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				out, err := cmd.Output()
				want := w + "\x00after\x00"
				if err != nil || string(out) != want {
					t.Errorf("%s -c LoginCommand(%q): got %q, want %q (err %v, stderr %q)", sh, w, out, want, err, stderr.String())
				}
			}
		})
	}
	if ran == 0 {
		t.Skip("no shell installed to try")
	}
}

// TestLoginCommandRedirect: the redirection is /bin/sh's, not the login shell's (under
// csh, 2>/dev/null would be an argument 2 and stdout sent away).
func TestLoginCommandRedirect(t *testing.T) {
	ran := 0
	for _, sh := range []string{"/bin/sh", "/bin/tcsh", "/usr/bin/fish"} {
		if _, err := os.Stat(sh); err != nil {
			t.Logf("SKIP %s: not installed", sh)
			continue
		}
		ran++
		out, err := exec.Command(sh, "-c", LoginCommand([]string{"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}, "2>/dev/null")).CombinedOutput()
		var ee *exec.ExitError
		if string(out) != "out\n" || !errors.As(err, &ee) || ee.ExitCode() != 3 {
			t.Errorf("%s: got %q, %v; want \"out\\n\" and exit status 3", sh, out, err)
		}
	}
	if ran == 0 {
		t.Skip("no shell installed to try")
	}
}
