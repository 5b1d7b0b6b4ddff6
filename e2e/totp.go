//go:build unix

package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TOTPStep is the time step of the MFA sshd's one-time passwords (RFC 6238's 30 s).
const TOTPStep = 30 * time.Second

// TOTPWindow is how many steps around the current one pam_oath accepts (its window=
// option). TOTP.Next hands out codes of later steps when the current step's code was
// already used, so up to this many logins fit in one 30 s step without waiting.
const TOTPWindow = 40

// TOTPPrompt begins the question pam_oath asks ("One-time password (OATH) for `USER': ").
const TOTPPrompt = "One-time password (OATH) for"

// TOTP computes the one-time passwords of an MFA sshd's user with oathtool (package
// oathtool), from the secret in that sshd's pam_oath users file.
//
// pam_oath accepts each code once and then only codes of later steps (it records the
// last one used), so a test that logs in several times takes each code from Next,
// which never hands out a step twice or goes back.
type TOTP struct {
	secret   string // hex
	oathtool string

	mu   sync.Mutex
	last int64 // the last step handed out by Next
}

func newTOTP(tb testing.TB) *TOTP {
	tb.Helper()
	tool := Need(tb, "oathtool", "oathtool")
	var b [20]byte
	rand.Read(b[:])
	return &TOTP{secret: hex.EncodeToString(b[:]), oathtool: tool}
}

// Next returns a code pam_oath accepts once: the current step's, or, when that one was
// already handed out, the next unused later step's.
func (t *TOTP) Next(tb testing.TB) string {
	tb.Helper()
	t.mu.Lock()
	step := max(time.Now().Unix()/int64(TOTPStep/time.Second), t.last+1)
	t.last = step
	t.mu.Unlock()
	return t.code(tb, step)
}

// At returns the code of the step containing tm, without marking it used (a test of a
// refused or replayed code).
func (t *TOTP) At(tb testing.TB, tm time.Time) string {
	tb.Helper()
	return t.code(tb, tm.Unix()/int64(TOTPStep/time.Second))
}

// code runs oathtool for step; the secret goes on stdin, never on a command line.
func (t *TOTP) code(tb testing.TB, step int64) string {
	tb.Helper()
	cmd := exec.Command(t.oathtool, "--totp", "--digits=6", "--time-step-size=30s", "--now=@"+strconv.FormatInt(step*int64(TOTPStep/time.Second), 10), "-")
	cmd.Stdin = strings.NewReader(t.secret + "\n")
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("oathtool --totp: %v", err)
	}
	code := strings.TrimSpace(string(out))
	if len(code) != 6 {
		tb.Fatalf("oathtool --totp printed %q; want 6 digits", code)
	}
	return code
}

// pamServicePrefix names the PAM services MFA sshds use (and their sshd links).
const pamServicePrefix = "sshd-tether-mfa-"

// setupMFA makes sshd demand a TOTP after the public key: sshd reads the PAM service
// named after its own program name, so it runs under a link named PREFIX-PID-RANDOM in
// dir, and /etc/pam.d/PREFIX-PID-RANDOM (removed when tb ends) asks pam_oath for the
// code of user. It returns the link to run instead of sshd and the TOTP generator.
func setupMFA(tb testing.TB, sshdPath, dir, user string) (program string, t *TOTP) {
	tb.Helper()
	if os.Geteuid() != 0 {
		msg := "the MFA sshd needs root: its PAM service file goes in /etc/pam.d; run the tests as root"
		if Required() {
			tb.Fatalf("TETHER_E2E=require: %s", msg)
		}
		tb.Skip(msg)
	}
	module := needPAMModule(tb, "pam_oath.so", "libpam-oath")
	t = newTOTP(tb)
	removeStalePAMServices()
	var b [4]byte
	rand.Read(b[:])
	name := fmt.Sprintf("%s%d-%s", pamServicePrefix, os.Getpid(), hex.EncodeToString(b[:]))
	program = filepath.Join(dir, name)
	if err := os.Symlink(sshdPath, program); err != nil {
		tb.Fatal(err)
	}
	users := filepath.Join(dir, "users.oath")
	WriteFile(tb, users, fmt.Sprintf("HOTP/T30/6\t%s\t-\t%s\n", user, t.secret), 0o600)
	service := filepath.Join("/etc/pam.d", name)
	WriteFile(tb, service, fmt.Sprintf("# tether e2e: the MFA sshd of test process %d (removed when its test ends)\n"+
		"auth required %s usersfile=%s window=%d digits=6\n"+
		"account required pam_permit.so\nsession required pam_permit.so\npassword required pam_deny.so\n",
		os.Getpid(), module, users, TOTPWindow), 0o644)
	tb.Cleanup(func() { os.Remove(service) })
	return program, t
}

// removeStalePAMServices removes the PAM service files of MFA sshds whose test process
// is gone (killed before its cleanup ran).
func removeStalePAMServices() {
	files, _ := filepath.Glob(filepath.Join("/etc/pam.d", pamServicePrefix+"*"))
	for _, f := range files {
		pid, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(filepath.Base(f), pamServicePrefix), "-", 2)[0])
		if err == nil && pid != os.Getpid() && !Alive(pid) {
			os.Remove(f)
		}
	}
}

// needPAMModule finds a PAM module in the usual directories, or skips tb (fails under
// TETHER_E2E=require) naming the Debian package.
func needPAMModule(tb testing.TB, module, debianPackage string) string {
	tb.Helper()
	for _, pattern := range []string{"/lib/*/security/", "/usr/lib/*/security/", "/lib/security/", "/usr/lib/security/"} {
		if found, _ := filepath.Glob(pattern + module); len(found) > 0 {
			return found[0]
		}
	}
	msg := fmt.Sprintf("PAM module %s not found: install it with `apt-get install -y %s`", module, debianPackage)
	if Required() {
		tb.Fatalf("TETHER_E2E=require: %s", msg)
	}
	tb.Skip(msg)
	return ""
}
