//go:build linux

package main

import (
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// The relay path (issue 18): a `tether relay` on loopback, `tether host` offering this
// machine as portal "bench" through it (run by the invoking user, as a user would), and
// this build's launcher reaching it with `launch --relay URL portal:bench`: the same
// launcher and server as the tether column, with SSH inside WebSocket streams spliced by
// the relay instead of a TCP connection to sshd. The host runs commands in the user's
// login shell and home, so its install (tether-v0.0.0-bench-SHA12 under
// ~/.cache/tether/bin) is removed at the end.

const benchPortal = "bench"

// relayEnds are the relay and host processes and what the launcher needs.
type relayEnds struct {
	url         string
	clientToken string
	config      string // the launcher's XDG_CONFIG_HOME (the portal's pinned host key)
	relay, host *proc
}

var relayListening = regexp.MustCompile(`relay: listening on (ws://\S+)`)

// startRelay starts the relay and the host and waits until the host is offered.
func (b *bench) startRelay() error {
	dir := filepath.Join(b.dir, "relay")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	secret := filepath.Join(dir, "secret")
	s := make([]byte, 32)
	rand.Read(s)
	if err := os.WriteFile(secret, s, 0o600); err != nil {
		return err
	}
	relayLog := filepath.Join(dir, "relay.log")
	r, err := b.startLogged(relayLog, nil, b.tether, "relay", "--listen", "127.0.0.1:0", "--secret-file", secret)
	if err != nil {
		return err
	}
	e := &relayEnds{relay: r, config: filepath.Join(dir, "laptop-config")}
	b.relay = e
	if !waitLog(relayLog, 15*time.Second, func(log string) bool {
		if m := relayListening.FindStringSubmatch(log); m != nil {
			e.url = m[1]
		}
		return e.url != ""
	}) {
		return fmt.Errorf("tether relay did not listen (see %s)", relayLog)
	}
	mint := func(role string) (string, error) {
		out, err := exec.Command(b.tether, "relay", "token", "--secret-file", secret, "--role", role, "--portal", benchPortal, "bench").Output()
		return strings.TrimSpace(string(out)), err
	}
	hostToken, err := mint("host")
	if err != nil {
		return fmt.Errorf("tether relay token: %v", err)
	}
	if e.clientToken, err = mint("client"); err != nil {
		return fmt.Errorf("tether relay token: %v", err)
	}
	hostLog := filepath.Join(dir, "host.log")
	env := append(os.Environ(), "TETHER_PORTAL_TOKEN="+hostToken)
	if e.host, err = b.startLogged(hostLog, env, b.tether, "host", "--relay", e.url, "--host-key", filepath.Join(dir, "host_key")); err != nil {
		return err
	}
	if !waitLog(hostLog, 15*time.Second, func(log string) bool { return strings.Contains(log, "offering this machine") }) {
		return fmt.Errorf("tether host did not offer this machine (see %s)", hostLog)
	}
	return nil
}

// startLogged starts bin args with its output in logFile.
func (b *bench) startLogged(logFile string, env []string, bin string, args ...string) (*proc, error) {
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	return startProc(cmd)
}

func waitLog(file string, d time.Duration, cond func(string) bool) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if b, _ := os.ReadFile(file); cond(string(b)) {
			return true
		}
	}
	return false
}

// target is how a launch reaches the remote: the bench's sshd, or with extra holding
// --relay (the relay path) portal:bench, the client token in the environment.
func (b *bench) target(extra []string) (args, env []string) {
	if slices.Contains(extra, "--relay") && b.relay != nil {
		return []string{"portal:" + benchPortal}, []string{"TETHER_PORTAL_TOKEN=" + b.relay.clientToken, "XDG_CONFIG_HOME=" + b.relay.config}
	}
	return []string{"-F", b.sshd.config, b.sshd.alias}, nil
}

// installedHome is the home the remote tether of a path installs into: the sshd's, or
// for the relay path the user's own (tether host's login shell).
func (b *bench) installedHome(p *route) string {
	if p.name == pathRelay {
		if u, err := user.Current(); err == nil {
			return u.HomeDir
		}
	}
	return b.sshd.home
}

// stopRelay ends the host and the relay and removes the host's install of this build.
func (b *bench) stopRelay() {
	if b.relay == nil {
		return
	}
	b.relay.host.interrupt()
	b.relay.relay.interrupt()
	if sum, err := fileSHA12(b.tether); err == nil {
		installed, _ := filepath.Glob(filepath.Join(b.installedHome(&route{name: pathRelay}), ".cache", "tether", "bin", "tether-*-"+sum))
		for _, f := range installed {
			os.Remove(f)
		}
	}
}
