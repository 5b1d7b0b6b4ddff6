//go:build unix

package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SSHD is a real OpenSSH sshd listening on 127.0.0.1 with throwaway keys, its own
// sshd_config and authorized_keys, and everything a client needs to reach it: a private
// key, a known_hosts file and an ssh_config naming it as Host Alias.
type SSHD struct {
	// Alias is the Host name in Config that reaches this server.
	Alias string
	// Port is the loopback port sshd listens on.
	Port int
	// User is the login user (the user running the tests).
	User string
	// Dir holds every file of this server; it is removed when the test ends.
	Dir string
	// Home is the remote HOME of sessions (sshd sets it with SetEnv), so nothing the
	// tests do lands in the real home directory.
	Home string
	// ClientKey is the path of the client's private key (ed25519; encrypted with
	// SSHDOptions.KeyPassphrase when that is set). No key is authorized under Kerberos.
	ClientKey string
	// KnownHosts is a known_hosts file holding this server's host keys under
	// [127.0.0.1]:Port.
	KnownHosts string
	// Config is an ssh_config file whose Host Alias reaches this server with ClientKey,
	// KnownHosts, StrictHostKeyChecking yes and BatchMode yes (BatchMode no when the
	// login asks something: MFA, KeyPassphrase; under Kerberos: HostName localhost,
	// GSSAPIAuthentication yes and no key).
	Config string
	// HostKeys are the paths of the server's private host keys.
	HostKeys []string
	// TOTP computes the one-time passwords the MFA sshd asks for (SSHDOptions.MFA);
	// nil otherwise.
	TOTP *TOTP
	// ClientEnv is what a client needs in its environment on top of its own: the
	// Kerberos realm and ticket cache (KDC.ClientEnv) under SSHDOptions.Kerberos; empty
	// otherwise.
	ClientEnv []string

	tb      testing.TB
	cmd     *exec.Cmd
	comm    string // the kernel's name for sshd's processes (the MFA sshd runs under a link)
	logPath string
	opts    SSHDOptions
}

// SSHDOptions tunes StartSSHD.
type SSHDOptions struct {
	// Alias is the Host alias in the client config; default "tether-e2e".
	Alias string
	// HostKeyTypes are the ssh-keygen -t values for host keys; default ed25519.
	HostKeyTypes []string
	// ExtraConfig lines are appended to sshd_config.
	ExtraConfig []string
	// Env is set in every session with SetEnv (HOME is always set to Home).
	Env map[string]string

	// MFA makes the login two-factor, as at HPC centres: the public key, then a TOTP
	// (AuthenticationMethods publickey,keyboard-interactive:pam; PAM's pam_oath from
	// libpam-oath checks the code; SSHD.TOTP computes them). Needs root: sshd runs
	// under a link of its own name, whose PAM service file goes in /etc/pam.d for the
	// test.
	MFA bool
	// KeyPassphrase, when set, encrypts ClientKey with it.
	KeyPassphrase string
	// Kerberos makes the login GSSAPI only (gssapi-with-mic, with a ticket from this
	// realm; no key is authorized), with the realm's host/localhost keytab for sshd.
	Kerberos *KDC
}

// StartSSHD starts a throwaway sshd on 127.0.0.1 and stops it by its PID when tb ends.
// sshd's log is printed if the test fails.
func StartSSHD(tb testing.TB, opts SSHDOptions) *SSHD {
	tb.Helper()
	sshdPath := Need(tb, "sshd", "openssh-server")
	Need(tb, "ssh-keygen", "openssh-client")
	if opts.MFA && opts.Kerberos != nil {
		tb.Fatal("StartSSHD: MFA and Kerberos together are not supported")
	}
	if opts.Alias == "" {
		opts.Alias = "tether-e2e"
	}
	if len(opts.HostKeyTypes) == 0 {
		opts.HostKeyTypes = []string{"ed25519"}
	}
	u, err := user.Current()
	if err != nil {
		tb.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "tether-sshd-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	s := &SSHD{Alias: opts.Alias, User: u.Username, Dir: dir, Home: filepath.Join(dir, "home"), tb: tb,
		ClientKey: filepath.Join(dir, "id_ed25519"), KnownHosts: filepath.Join(dir, "known_hosts"),
		Config: filepath.Join(dir, "ssh_config"), logPath: filepath.Join(dir, "sshd.log"), opts: opts}
	if err := os.Mkdir(s.Home, 0o700); err != nil {
		tb.Fatal(err)
	}
	keygenPass(tb, "ed25519", s.ClientKey, opts.KeyPassphrase)
	for _, typ := range opts.HostKeyTypes {
		p := filepath.Join(dir, "host_"+typ)
		keygen(tb, typ, p)
		s.HostKeys = append(s.HostKeys, p)
	}
	if opts.Kerberos == nil {
		copyFile(tb, s.ClientKey+".pub", filepath.Join(dir, "authorized_keys"))
	} else {
		WriteFile(tb, filepath.Join(dir, "authorized_keys"), "", 0o600)
		s.ClientEnv = opts.Kerberos.ClientEnv()
	}
	program := sshdPath
	if opts.MFA {
		program, s.TOTP = setupMFA(tb, sshdPath, dir, s.User)
	}
	s.comm = filepath.Base(program)
	if len(s.comm) > 15 {
		s.comm = s.comm[:15] // TASK_COMM_LEN
	}
	if os.Geteuid() == 0 {
		// sshd running as root wants its privilege separation directory.
		os.MkdirAll("/run/sshd", 0o755)
	}

	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		s.Port = FreePort(tb)
		s.writeConfigs(tb, opts)
		logf, err := os.Create(s.logPath)
		if err != nil {
			tb.Fatal(err)
		}
		cmd := exec.Command(program, "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
		cmd.Stdout, cmd.Stderr = logf, logf
		if k := opts.Kerberos; k != nil {
			// GSSAPI reads the realm from KRB5_CONFIG and accepts with the host keytab.
			cmd.Env = append(os.Environ(), "KRB5_CONFIG="+k.Config, "KRB5_KTNAME=FILE:"+k.HostKeytab)
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			logf.Close()
			tb.Fatalf("starting sshd: %v", err)
		}
		logf.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		if s.waitListening(done) {
			s.cmd = cmd
			tb.Cleanup(func() {
				if tb.Failed() {
					tb.Logf("sshd log (%s):\n%s", s.Alias, s.Log())
				}
				StopGroup(cmd.Process.Pid, done)
			})
			return s
		}
		StopGroup(cmd.Process.Pid, done)
		lastErr = fmt.Errorf("sshd did not start listening on port %d:\n%s", s.Port, s.Log())
	}
	tb.Fatal(lastErr)
	return nil
}

func (s *SSHD) waitListening(exited <-chan struct{}) bool {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		c, err := net.DialTimeout("tcp", s.Addr(), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

func (s *SSHD) writeConfigs(tb testing.TB, opts SSHDOptions) {
	var b strings.Builder
	fmt.Fprintf(&b, "ListenAddress 127.0.0.1:%d\n", s.Port)
	for _, k := range s.HostKeys {
		fmt.Fprintf(&b, "HostKey %s\n", k)
	}
	fmt.Fprintf(&b, "AuthorizedKeysFile %s\n", filepath.Join(s.Dir, "authorized_keys"))
	fmt.Fprintf(&b, "PidFile %s\n", filepath.Join(s.Dir, "sshd.pid"))
	b.WriteString("StrictModes no\nPasswordAuthentication no\nLogLevel VERBOSE\nPrintMotd no\n" +
		"AllowStreamLocalForwarding yes\nAllowTcpForwarding yes\nSubsystem sftp internal-sftp\n")
	switch {
	case opts.MFA:
		// The second factor is keyboard-interactive, which prohibit-password refuses
		// to root (the tests' user).
		b.WriteString("PermitRootLogin yes\nUsePAM yes\nKbdInteractiveAuthentication yes\n" +
			"AuthenticationMethods publickey,keyboard-interactive:pam\n")
	case opts.Kerberos != nil:
		// Any principal in the keytab, whatever this machine's hostname is.
		b.WriteString("PermitRootLogin prohibit-password\nUsePAM no\nKbdInteractiveAuthentication no\n" +
			"GSSAPIAuthentication yes\nGSSAPIStrictAcceptorCheck no\nAuthenticationMethods gssapi-with-mic\n")
	default:
		b.WriteString("PermitRootLogin prohibit-password\nUsePAM no\nKbdInteractiveAuthentication no\n")
	}
	env := []string{"HOME=" + s.Home}
	for k, v := range opts.Env {
		env = append(env, k+"="+v)
	}
	fmt.Fprintf(&b, "SetEnv %s\n", strings.Join(env, " "))
	for _, l := range opts.ExtraConfig {
		b.WriteString(l + "\n")
	}
	WriteFile(tb, filepath.Join(s.Dir, "sshd_config"), b.String(), 0o600)

	var kh strings.Builder
	for _, k := range s.HostKeys {
		pub, err := os.ReadFile(k + ".pub")
		if err != nil {
			tb.Fatal(err)
		}
		fields := strings.Fields(string(pub))
		fmt.Fprintf(&kh, "[127.0.0.1]:%d %s %s\n", s.Port, fields[0], fields[1])
		if opts.Kerberos != nil {
			fmt.Fprintf(&kh, "[localhost]:%d %s %s\n", s.Port, fields[0], fields[1])
		}
	}
	WriteFile(tb, s.KnownHosts, kh.String(), 0o600)
	WriteFile(tb, s.Config, s.ConfigBlock(), 0o600)
}

// ConfigBlock is the ssh_config Host block that reaches this server.
func (s *SSHD) ConfigBlock() string {
	if s.opts.Kerberos != nil {
		// The service ticket is for host/localhost: the client must name the host so.
		return fmt.Sprintf("Host %s\n  HostName localhost\n  Port %d\n  User %s\n"+
			"  GSSAPIAuthentication yes\n  PubkeyAuthentication no\n  UserKnownHostsFile %s\n"+
			"  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  BatchMode yes\n",
			s.Alias, s.Port, s.User, s.KnownHosts)
	}
	batch := "yes"
	if s.opts.MFA || s.opts.KeyPassphrase != "" {
		batch = "no" // the login asks the user something
	}
	return fmt.Sprintf("Host %s\n  HostName 127.0.0.1\n  Port %d\n  User %s\n  IdentityFile %s\n"+
		"  IdentitiesOnly yes\n  UserKnownHostsFile %s\n  GlobalKnownHostsFile /dev/null\n"+
		"  StrictHostKeyChecking yes\n  BatchMode %s\n",
		s.Alias, s.Port, s.User, s.ClientKey, s.KnownHosts, batch)
}

// Login is one successful login in sshd's log.
type Login struct {
	// Method is how the login ended: "publickey", "keyboard-interactive/pam" (the MFA
	// sshd's second factor, after a "Partial publickey"), "gssapi-with-mic".
	Method string
	// User is the local user logged in.
	User string
}

// acceptedRe matches sshd's (LogLevel VERBOSE) line for a completed login; the key
// checks ("Accepted key ED25519 … found at") and partial successes do not match.
var acceptedRe = regexp.MustCompile(`(?m)^Accepted (\S+) for (\S+) from `)

// Logins are the logins sshd has accepted so far, in order: one per SSH connection
// that authenticated (an MFA login counts once, when its second factor passed).
func (s *SSHD) Logins() []Login {
	var out []Login
	for _, m := range acceptedRe.FindAllStringSubmatch(s.Log(), -1) {
		out = append(out, Login{Method: m[1], User: m[2]})
	}
	return out
}

// Addr is sshd's host:port.
func (s *SSHD) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// PID is the listening sshd's process ID.
func (s *SSHD) PID() int { return s.cmd.Process.Pid }

// Log is what sshd has logged so far.
func (s *SSHD) Log() string {
	b, _ := os.ReadFile(s.logPath)
	return string(b)
}

// ConnectionPIDs are sshd's per-connection processes (the privileged monitor and the
// session's unprivileged child) serving the connections open now.
func (s *SSHD) ConnectionPIDs() []int { return Descendants(s.PID(), s.comm) }

// KillConnections kills (SIGKILL) every per-connection sshd process (the privileged
// monitor and the session's unprivileged child), as a dropped network would end them,
// and returns how many it killed. Commands the sessions started are left alone.
func (s *SSHD) KillConnections() int {
	kids := s.ConnectionPIDs()
	for _, pid := range kids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	return len(kids)
}

// SSH runs the OpenSSH client against this server with its config (and ClientEnv) and
// returns the combined output.
func (s *SSHD) SSH(args ...string) (string, error) {
	full := append([]string{"-F", s.Config, s.Alias}, args...)
	cmd := exec.Command("ssh", full...)
	if len(s.ClientEnv) > 0 {
		cmd.Env = append(os.Environ(), s.ClientEnv...)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func keygen(tb testing.TB, typ, path string) {
	tb.Helper()
	keygenPass(tb, typ, path, "")
}

// keygenPass makes a key pair, encrypted with passphrase when it is not empty (a test
// passphrase protects a throwaway key: on ssh-keygen's command line is fine).
func keygenPass(tb testing.TB, typ, path, passphrase string) {
	tb.Helper()
	args := []string{"-q", "-t", typ, "-N", passphrase, "-C", "tether-e2e", "-f", path}
	if typ == "rsa" {
		args = append(args, "-b", "2048")
	}
	if out, err := exec.Command("ssh-keygen", args...).CombinedOutput(); err != nil {
		tb.Fatalf("ssh-keygen -t %s: %v\n%s", typ, err, out)
	}
}

func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func WriteFile(tb testing.TB, path, content string, mode os.FileMode) {
	tb.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		tb.Fatal(err)
	}
}

func copyFile(tb testing.TB, from, to string) {
	tb.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		tb.Fatal(err)
	}
	WriteFile(tb, to, string(b), 0o600)
}
