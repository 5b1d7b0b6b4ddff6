//go:build linux

package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tether-dev/tether/e2e"
)

// sshd is a throwaway OpenSSH server on 127.0.0.1 with its own keys and config, and
// the client files that reach it (Config names it as Host alias).
type sshd struct {
	alias, dir, home, config, knownHosts string
	port                                 int
	cmd                                  *exec.Cmd
	done                                 chan struct{}
}

const alias = "tether-bench"

// startSSHD starts sshd under dir. env is set in every session (SetEnv) besides HOME.
func startSSHD(dir string, env []string) (*sshd, error) {
	bin, err := e2e.FindProgram("sshd")
	if err != nil {
		return nil, err
	}
	u, err := user.Current()
	if err != nil {
		return nil, err
	}
	s := &sshd{alias: alias, dir: dir, home: filepath.Join(dir, "home"), config: filepath.Join(dir, "ssh_config"),
		knownHosts: filepath.Join(dir, "known_hosts")}
	if err := os.MkdirAll(s.home, 0o700); err != nil {
		return nil, err
	}
	clientKey, hostKey := filepath.Join(dir, "id_ed25519"), filepath.Join(dir, "host_ed25519")
	for _, k := range []string{clientKey, hostKey} {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "tether-bench", "-f", k).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("ssh-keygen: %v: %s", err, out)
		}
	}
	pub, err := os.ReadFile(clientKey + ".pub")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600); err != nil {
		return nil, err
	}
	hostPub, err := os.ReadFile(hostKey + ".pub")
	if err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		os.MkdirAll("/run/sshd", 0o755) // privilege separation directory
	}
	logPath := filepath.Join(dir, "sshd.log")
	for attempt := 0; attempt < 5; attempt++ {
		s.port, err = freePort()
		if err != nil {
			return nil, err
		}
		conf := fmt.Sprintf("ListenAddress 127.0.0.1:%d\nHostKey %s\nAuthorizedKeysFile %s\nPidFile %s\n"+
			"StrictModes no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n"+
			"KbdInteractiveAuthentication no\nUsePAM no\nPrintMotd no\nAllowTcpForwarding yes\n"+
			"AllowStreamLocalForwarding yes\nMaxSessions 100\nMaxStartups 100\nSetEnv %s\n",
			s.port, hostKey, filepath.Join(dir, "authorized_keys"), filepath.Join(dir, "sshd.pid"),
			strings.Join(append([]string{"HOME=" + s.home}, env...), " "))
		if err := os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(conf), 0o600); err != nil {
			return nil, err
		}
		f := strings.Fields(string(hostPub))
		kh := fmt.Sprintf("[127.0.0.1]:%d %s %s\n", s.port, f[0], f[1])
		if err := os.WriteFile(s.knownHosts, []byte(kh), 0o600); err != nil {
			return nil, err
		}
		// Ciphers: the one tether's own client prefers (and ssh -L is given), so that
		// tether --ssh openssh's master, which follows the config, uses it too.
		cc := fmt.Sprintf("Host %s\n  HostName 127.0.0.1\n  Port %d\n  User %s\n  IdentityFile %s\n  IdentitiesOnly yes\n"+
			"  UserKnownHostsFile %s\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  BatchMode yes\n"+
			"  Ciphers aes128-gcm@openssh.com\n",
			s.alias, s.port, u.Username, clientKey, s.knownHosts)
		if err := os.WriteFile(s.config, []byte(cc), 0o600); err != nil {
			return nil, err
		}
		logf, err := os.Create(logPath)
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(bin, "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		err = cmd.Start()
		logf.Close()
		if err != nil {
			return nil, err
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		if listening(s.addr(), done) {
			s.cmd, s.done = cmd, done
			return s, nil
		}
		e2e.StopGroup(cmd.Process.Pid, done)
	}
	log, _ := os.ReadFile(logPath)
	return nil, fmt.Errorf("sshd did not start listening: %s", strings.TrimSpace(string(log)))
}

func (s *sshd) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

func (s *sshd) stop() {
	if s != nil && s.cmd != nil {
		e2e.StopGroup(s.cmd.Process.Pid, s.done)
	}
}

// killConnections SIGKILLs every per-connection sshd process (what a dropped network
// ends); the commands sessions started are left alone.
func (s *sshd) killConnections() int {
	kids := e2e.Descendants(s.cmd.Process.Pid, "sshd")
	for _, pid := range kids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	return len(kids)
}

func listening(addr string, exited <-chan struct{}) bool {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// freePort asks the kernel for a free loopback port (sshd cannot listen on port 0).
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// rssKB is VmRSS of pid in KiB.
func rssKB(pid int) (float64, error) { return statusKB(pid, "VmRSS:") }

// statusKB is a field of /proc/PID/status in KiB (VmRSS:, VmHWM:).
func statusKB(pid int, field string) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, field); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				v, err := strconv.ParseFloat(f[0], 64)
				return v, err
			}
		}
	}
	return 0, errors.New("no " + field + " in /proc/PID/status")
}
