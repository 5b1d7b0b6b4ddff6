//go:build linux

package e2e

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tether-dev/tether/access"
)

// TestHashKeyE2E: the built binary's `tether hash-key` with the key piped in prints a
// PHC string that package access verifies and that an --access file accepts; a short
// key, two lines or nothing are refused with one `tether: …` line and nothing on
// stdout.
func TestHashKeyE2E(t *testing.T) {
	bin := Binary(t)
	const key = "lab-shared-key-0123456789"
	run := func(stdin string) (stdout, stderr string, code int) {
		t.Helper()
		cmd := exec.Command(bin, "hash-key")
		cmd.Stdin = strings.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("tether hash-key: %v", err)
		}
		return out.String(), errb.String(), code
	}
	for _, in := range []string{key + "\n", key, key + "\r\n"} {
		out, errs, code := run(in)
		phc := strings.TrimSuffix(out, "\n")
		if code != 0 || errs != "" || !strings.HasPrefix(out, "$argon2id$v=19$m=19456,t=2,p=1$") || strings.Count(out, "\n") != 1 {
			t.Fatalf("echo KEY | tether hash-key (stdin %q): exit %d, stdout %q, stderr %q; want one PHC line", in, code, out, errs)
		}
		if !access.VerifyKey(phc, key) || access.VerifyKey(phc, key+"x") {
			t.Fatalf("the printed hash %q does not verify the key (or verifies another)", phc)
		}
	}
	// The line goes into an access file as it is, and the key opens it.
	out, _, _ := run(key + "\n")
	file := filepath.Join(t.TempDir(), "team.yml")
	os.WriteFile(file, []byte("access_control: keys\nkeys:\n  lab:\n    hash: "+strings.TrimSpace(out)+"\n    apps: [\"*\"]\n"), 0o644)
	p, err := access.Load(file)
	if err != nil {
		t.Fatalf("an access file with the printed hash: %v", err)
	}
	if name, ok := p.Key(key); !ok || name != "lab" {
		t.Errorf("Key = %q, %v; want lab", name, ok)
	}

	refused := []struct{ stdin, want string }{
		{"short-key\n", "tether: the key is 9 characters; use at least 16 (a random one: head -c 18 /dev/urandom | base64)\n"},
		{key + "\nsecond line\n", "tether: stdin has more than one line; give the key alone on one line\n"},
		{"", "tether: no key on stdin; run tether hash-key in a terminal to type it, or give it on stdin (tether hash-key < key.txt)\n"},
		{" " + key + "\n", "tether: the key starts or ends with a space, which copying easily loses; remove it\n"},
	}
	for _, tt := range refused {
		out, errs, code := run(tt.stdin)
		if code != 1 || out != "" || errs != tt.want {
			t.Errorf("stdin %q: exit %d, stdout %q, stderr %q; want exit 1, nothing on stdout, %q", tt.stdin, code, out, errs, tt.want)
		}
	}
}

// TestHashKeyTerminalE2E: on a terminal (echo on, as a shell leaves it), hash-key asks
// twice and shows neither key; two different keys are refused.
func TestHashKeyTerminalE2E(t *testing.T) {
	bin := Binary(t)
	const key = "typed-at-the-terminal-key"
	start := func() (*Terminal, *bytes.Buffer) {
		t.Helper()
		master, tty := OpenPTY(t)
		// OpenPTY leaves the terminal raw; a user's has echo on and reads lines.
		tio, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
		if err != nil {
			t.Fatal(err)
		}
		tio.Lflag |= unix.ECHO | unix.ICANON
		if err := unix.IoctlSetTermios(int(tty.Fd()), unix.TCSETS, tio); err != nil {
			t.Fatal(err)
		}
		var stdout bytes.Buffer
		cmd := exec.Command(bin, "hash-key")
		cmd.Stdin, cmd.Stderr, cmd.Stdout = tty, tty, &stdout
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		term := &Terminal{master: master, copied: make(chan struct{})}
		go func() {
			defer close(term.copied)
			io.Copy(&term.screen, master)
		}()
		term.Proc = Start(t, cmd)
		tty.Close()
		return term, &stdout
	}

	term, stdout := start()
	if !term.WaitFor("Key (at least 16 characters, not shown): ", 1, 10*time.Second) {
		t.Fatalf("no prompt; the terminal shows %q", term.Screen())
	}
	term.Type(t, key+"\n")
	if !term.WaitFor("The same key again: ", 1, 10*time.Second) {
		t.Fatalf("no second prompt; the terminal shows %q", term.Screen())
	}
	term.Type(t, key+"\n")
	if code := term.Wait(10 * time.Second); code != 0 {
		t.Fatalf("exit %d; the terminal shows %q", code, term.Screen())
	}
	if strings.Contains(term.Screen(), key) {
		t.Errorf("the key was echoed: %q", term.Screen())
	}
	if phc := strings.TrimSpace(stdout.String()); !access.VerifyKey(phc, key) {
		t.Errorf("stdout %q is not a hash of the typed key", stdout.String())
	}

	term, stdout = start()
	term.WaitFor("not shown): ", 1, 10*time.Second)
	term.Type(t, key+"\n")
	term.WaitFor("again: ", 1, 10*time.Second)
	term.Type(t, key+"-other\n")
	if code := term.Wait(10 * time.Second); code != 1 || !strings.Contains(term.Screen(), "tether: the two keys differ; run tether hash-key again") || stdout.Len() != 0 {
		t.Errorf("two different keys: exit %d, terminal %q, stdout %q; want exit 1 and the keys differ", code, term.Screen(), stdout.String())
	}
}
