//go:build unix

package tunnel

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// login is what sshd sets up for a command of the user running the server
// (Server.LoginShell): who, where, which shell, which environment.
type login struct {
	name, home, shell string
	uid               string
}

// currentLogin reads the user running the server from the password database, as a
// login would: the shell is the database's (then $SHELL, then /bin/sh), never the
// client's choice.
func currentLogin() (*login, error) {
	u, err := user.Current()
	if err != nil {
		return nil, fmt.Errorf("cannot look up the user running the server: %v", err)
	}
	if u.Username == "" || u.HomeDir == "" {
		return nil, errors.New("the user running the server has no name or home directory in the password database")
	}
	shell := passwdShell("/etc/passwd", u.Uid)
	if shell == "" {
		shell = os.Getenv("SHELL")
	}
	if shell == "" {
		shell = "/bin/sh"
	}
	return &login{name: u.Username, home: u.HomeDir, shell: shell, uid: u.Uid}, nil
}

// passwdShell is the login shell of uid in a passwd(5) file, or "".
func passwdShell(path, uid string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) == 7 && fields[2] == uid {
			return fields[6]
		}
	}
	return ""
}

// Debian's sshd PATH (its --with-default-path and superuser path).
const (
	loginPath     = "/usr/local/bin:/usr/bin:/bin:/usr/games"
	loginRootPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// command is `SHELL -c command` as sshd runs it: argv[0] the shell's base name, a
// fresh environment (env), started in HOME (or / when HOME is missing, as sshd does).
func (l *login) command(command string) *exec.Cmd {
	cmd := exec.Command(l.shell, "-c", command)
	cmd.Args[0] = filepath.Base(l.shell)
	cmd.Env = l.env()
	return cmd
}

// env is the environment a login gets: what sshd sets (USER, LOGNAME, HOME, PATH,
// MAIL, SHELL, TZ passed through), what PAM's pam_env adds on Debian
// (/etc/environment, /etc/default/locale), and XDG_RUNTIME_DIR where pam_systemd would
// set it (the directory exists). Nothing else of the server's own environment (its
// relay token above all) reaches the command.
func (l *login) env() []string {
	env := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := env[k]; !ok {
			order = append(order, k)
		}
		env[k] = v
	}
	path := loginPath
	if l.uid == "0" {
		path = loginRootPath
	}
	set("PATH", path)
	for _, f := range []string{"/etc/environment", "/etc/default/locale"} {
		for _, kv := range readEnvFile(f) {
			set(kv[0], kv[1])
		}
	}
	set("USER", l.name)
	set("LOGNAME", l.name)
	set("HOME", l.home)
	set("SHELL", l.shell)
	set("MAIL", "/var/mail/"+l.name)
	if tz, ok := os.LookupEnv("TZ"); ok {
		set("TZ", tz)
	}
	if dir := "/run/user/" + l.uid; ownedDir(dir, l.uid) {
		set("XDG_RUNTIME_DIR", dir)
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, k+"="+env[k])
	}
	return out
}

// readEnvFile reads KEY=VALUE lines as pam_env reads its envfile: comments and blank
// lines skipped, an `export ` prefix and one pair of surrounding quotes dropped.
func readEnvFile(path string) [][2]string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out [][2]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok || !validEnvName(k) {
			continue
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		out = append(out, [2]string{k, v})
	}
	return out
}

func validEnvName(k string) bool {
	if k == "" {
		return false
	}
	for i, r := range k {
		if r != '_' && (r < 'A' || r > 'Z') && (r < 'a' || r > 'z') && (i == 0 || r < '0' || r > '9') {
			return false
		}
	}
	return true
}

// ownedDir reports whether dir is a directory owned by uid (a login's runtime dir).
func ownedDir(dir, uid string) bool {
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		return false
	}
	owner, ok := fileOwner(fi)
	return ok && strconv.Itoa(owner) == uid
}
