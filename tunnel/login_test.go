//go:build unix

package tunnel

import (
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestServerLoginShell: with LoginShell a command runs as sshd runs it for the user
// running the server: the login shell from the password database, in HOME, with a
// login's environment and none of the server's own (its relay token above all).
func TestServerLoginShell(t *testing.T) {
	t.Setenv("TETHER_PORTAL_TOKEN", "host-token-marker")
	t.Setenv("SHELL", "/nonexistent/shell-from-the-server-env")
	u, err := user.Current()
	if err != nil {
		t.Skip("no current user:", err)
	}
	l, err := currentLogin()
	if err != nil {
		t.Fatal(err)
	}
	// Env replaces serveOn's HOME=, which is for the /bin/sh mode.
	ts := startServer(t, func(s *Server) { s.LoginShell = true; s.Env = []string{"EXTRA=1"} })
	c := ts.dial(t, ts.config(), Options{})
	var stdout, stderr strings.Builder
	status, err := c.Run(t.Context(), `printf '%s\n' "$0" "$(pwd)"; env`, nil, &stdout, &stderr)
	if err != nil || status != 0 {
		t.Fatalf("exec: status %d, %v\n%s", status, err, stderr.String())
	}
	out := stdout.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if lines[0] != filepath.Base(l.shell) {
		t.Errorf("$0 = %q; want the login shell's name %q", lines[0], filepath.Base(l.shell))
	}
	wantDir := u.HomeDir
	if fi, err := os.Stat(u.HomeDir); err != nil || !fi.IsDir() {
		wantDir = "/"
	}
	if lines[1] != wantDir {
		t.Errorf("pwd = %q; want %q", lines[1], wantDir)
	}
	env := lines[2:]
	for _, want := range []string{"HOME=" + u.HomeDir, "USER=" + u.Username, "LOGNAME=" + u.Username, "SHELL=" + l.shell, "EXTRA=1"} {
		if !slices.Contains(env, want) {
			t.Errorf("environment lacks %s:\n%s", want, strings.Join(env, "\n"))
		}
	}
	if !slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, "PATH=/usr/local/") }) {
		t.Errorf("environment lacks a login PATH:\n%s", strings.Join(env, "\n"))
	}
	if strings.Contains(out, "host-token-marker") || strings.Contains(out, "shell-from-the-server-env") {
		t.Errorf("the server's own environment reached the command:\n%s", out)
	}
}

func TestPasswdShellAndEnvFile(t *testing.T) {
	dir := t.TempDir()
	passwd := filepath.Join(dir, "passwd")
	os.WriteFile(passwd, []byte("root:x:0:0:root:/root:/bin/bash\nann:x:1000:1000:Ann,,,:/home/ann:/usr/bin/zsh\nbad:line\n"), 0o600)
	for uid, want := range map[string]string{"0": "/bin/bash", "1000": "/usr/bin/zsh", "1001": ""} {
		if got := passwdShell(passwd, uid); got != want {
			t.Errorf("for uid %s, got %q; want %q", uid, got, want)
		}
	}
	envf := filepath.Join(dir, "environment")
	os.WriteFile(envf, []byte("# comment\n\nLANG=\"C.UTF-8\"\nexport EDITOR=vi\nA B=c\n1X=y\nQ='single'\n"), 0o600)
	got := readEnvFile(envf)
	want := [][2]string{{"LANG", "C.UTF-8"}, {"EDITOR", "vi"}, {"Q", "single"}}
	if !slices.Equal(got, want) {
		t.Errorf("readEnvFile = %q; want %q", got, want)
	}
}
