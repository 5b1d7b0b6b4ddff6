package tunnel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// With the OpenSSH transport, `ssh -G HOST` is the configuration: exactly what ssh will
// do for HOST, Match exec and all, since it is ssh that connects. The native parser
// (config.go) stays for the native transport; e2e/tunnel_parity_test.go holds the two
// to the same answers.

// SSHG is `ssh -G` output: each key (lower case) with its values in order; keys that
// repeat (identityfile, …) accumulate.
type SSHG map[string][]string

// Get is key's first value ("" when absent).
func (g SSHG) Get(key string) string {
	if v := g[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// ParseSSHG reads `ssh -G` output.
func ParseSSHG(out []byte) SSHG {
	g := SSHG{}
	for _, line := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(strings.TrimRight(line, "\r"), " ")
		if !ok || k == "" {
			continue
		}
		g[k] = append(g[k], v)
	}
	return g
}

// OpenSSHErrorKind says what kind of failure ssh reported.
type OpenSSHErrorKind int

const (
	// SSHFailed: anything else (ssh's last line says what).
	SSHFailed OpenSSHErrorKind = iota
	// SSHConfig: ssh refused its configuration (`ssh -G` failed).
	SSHConfig
	// SSHUnreachable: the host could not be reached (name, route, refused, timed out).
	SSHUnreachable
	// SSHHostKey: the host key was unknown and not accepted, or changed.
	SSHHostKey
	// SSHAuth: the server let nobody in with what ssh had (keys, codes, tickets).
	SSHAuth
	// SSHMissing: no ssh program.
	SSHMissing
)

// OpenSSHError is a failure of the user's ssh program, with what it printed.
type OpenSSHError struct {
	Host  string // as the user typed it
	Kind  OpenSSHErrorKind
	Lines []string // ssh's last lines on stderr
}

func (e *OpenSSHError) Error() string {
	if e.Kind == SSHMissing {
		return "tunnel: no ssh program found (OpenSSH's client)"
	}
	return fmt.Sprintf("tunnel: ssh %s: %s", e.Host, e.Msg())
}

// Msg is ssh's own words: its last line that says something.
func (e *OpenSSHError) Msg() string {
	for i := len(e.Lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(e.Lines[i])
		if l != "" && !strings.HasPrefix(l, "Pseudo-terminal") {
			return l
		}
	}
	return "it failed without saying why"
}

// permanent: retrying cannot help (and would ask the user again).
func (e *OpenSSHError) permanent() bool {
	switch e.Kind {
	case SSHConfig, SSHHostKey, SSHAuth, SSHMissing:
		return true
	}
	return false
}

// classifySSH reads what kind of failure ssh's stderr lines tell.
func classifySSH(host string, lines []string) *OpenSSHError {
	e := &OpenSSHError{Host: host, Lines: lines}
	all := strings.Join(lines, "\n")
	switch {
	case strings.Contains(all, "Host key verification failed"), strings.Contains(all, "REMOTE HOST IDENTIFICATION HAS CHANGED"),
		strings.Contains(all, "No ED25519 host key is known"), strings.Contains(all, "host key is known for"),
		strings.Contains(all, "revoked"):
		e.Kind = SSHHostKey
	case strings.Contains(all, "Permission denied"), strings.Contains(all, "Too many authentication failures"),
		strings.Contains(all, "Authentication failed"):
		e.Kind = SSHAuth
	case strings.Contains(all, "Could not resolve hostname"), strings.Contains(all, "Connection refused"),
		strings.Contains(all, "Connection timed out"), strings.Contains(all, "No route to host"),
		strings.Contains(all, "Network is unreachable"), strings.Contains(all, "Operation timed out"),
		strings.Contains(all, "kex_exchange_identification"), strings.Contains(all, "Connection reset"),
		strings.Contains(all, "Connection closed by"):
		e.Kind = SSHUnreachable
	case strings.Contains(all, "Bad configuration option"), strings.Contains(all, "bad configuration"),
		strings.Contains(all, "terminating, ") && strings.Contains(all, "configuration"):
		e.Kind = SSHConfig
	}
	return e
}

// ErrOpenSSHUnsupported: this platform's ssh has no ControlMaster (Windows).
var ErrOpenSSHUnsupported = errors.New("tunnel: the OpenSSH transport needs ControlMaster, which this platform's ssh lacks")

// OpenSSHAvailable returns the path of the user's ssh program, or false where the
// OpenSSH transport cannot work: no ssh on PATH, or Windows (whose OpenSSH has no
// ControlMaster, which the transport is built on).
func OpenSSHAvailable() (string, bool) {
	if runtime.GOOS == "windows" {
		return "", false
	}
	p, err := exec.LookPath("ssh")
	return p, err == nil
}

// sshBaseArgs are the arguments every ssh tether runs starts with: the config file.
func sshBaseArgs(configFile string) []string {
	if configFile != "" {
		return []string{"-F", configFile}
	}
	return nil
}

// ResolveOpenSSH runs `ssh -G [-F configFile] host` and returns what it says, as a
// Config (for messages and tether's own decisions) and in full. host may be user@host;
// it is checked as Resolve checks it before ssh sees it.
func ResolveOpenSSH(ctx context.Context, program, host, configFile string) (*Config, SSHG, error) {
	return resolveOpenSSH(ctx, program, host, configFile, nil)
}

// resolveOpenSSH is ResolveOpenSSH with more ssh options before -G.
func resolveOpenSSH(ctx context.Context, program, host, configFile string, extra []string) (*Config, SSHG, error) {
	alias := host
	if i := strings.LastIndexByte(host, '@'); i >= 0 {
		if err := ValidUser(host[:i]); err != nil {
			return nil, nil, err
		}
		alias = host[i+1:]
	}
	if err := ValidHost(alias); err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	args := append(append(sshBaseArgs(configFile), extra...), "-G", "--", host)
	cmd := exec.CommandContext(ctx, program, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &limitWriter{b: &stderr, n: 8 << 10}
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			if errors.Is(err, exec.ErrNotFound) {
				return nil, nil, &OpenSSHError{Host: alias, Kind: SSHMissing}
			}
			return nil, nil, fmt.Errorf("tunnel: running %s -G: %w", program, err)
		}
		e := classifySSH(alias, strings.Split(strings.TrimSpace(stderr.String()), "\n"))
		if e.Kind == SSHFailed {
			e.Kind = SSHConfig
		}
		return nil, nil, e
	}
	g := ParseSSHG(stdout.Bytes())
	cfg, err := configFromSSHG(alias, g)
	if err != nil {
		return nil, nil, err
	}
	return cfg, g, nil
}

// configFromSSHG fills a Config with what `ssh -G` says.
func configFromSSHG(alias string, g SSHG) (*Config, error) {
	c := &Config{Alias: alias, HostName: g.Get("hostname"), User: g.Get("user"), Port: 22,
		IdentityFiles: g["identityfile"], CertificateFiles: g["certificatefile"],
		IdentitiesOnly: g.Get("identitiesonly") == "yes", BatchMode: g.Get("batchmode") == "yes",
		HashKnownHosts: g.Get("hashknownhosts") == "yes", HostKeyAlias: g.Get("hostkeyalias"),
		StrictHostKeyChecking: map[string]string{"true": "yes", "false": "no"}[g.Get("stricthostkeychecking")],
		ServerAliveCountMax:   3}
	if c.StrictHostKeyChecking == "" {
		c.StrictHostKeyChecking = g.Get("stricthostkeychecking")
	}
	if p, err := strconv.Atoi(g.Get("port")); err == nil {
		c.Port = p
	}
	if v := g.Get("identityagent"); v != "" {
		c.IdentityAgent = v
	}
	if v := g.Get("proxyjump"); v != "" && v != "none" {
		c.ProxyJump = v
	}
	if v := g.Get("proxycommand"); v != "" && v != "none" {
		c.ProxyCommand = v
	}
	if v := g.Get("connecttimeout"); v != "" && v != "none" {
		if n, err := strconv.Atoi(v); err == nil {
			c.ConnectTimeout = time.Duration(n) * time.Second
		}
	}
	if n, err := strconv.Atoi(g.Get("serveraliveinterval")); err == nil && n > 0 {
		c.ServerAliveInterval = time.Duration(n) * time.Second
	}
	if n, err := strconv.Atoi(g.Get("serveralivecountmax")); err == nil {
		c.ServerAliveCountMax = n
	}
	for _, k := range []string{"userknownhostsfile", "globalknownhostsfile"} {
		var files []string
		for _, v := range g[k] {
			for _, f := range strings.Fields(v) {
				if f != "none" {
					files = append(files, f)
				}
			}
		}
		if k == "userknownhostsfile" {
			c.UserKnownHostsFiles = files
		} else {
			c.GlobalKnownHostsFiles = files
		}
	}
	if c.HostName == "" {
		c.HostName = alias
	}
	if err := ValidHost(c.HostName); err != nil {
		return nil, err
	}
	if err := ValidUser(c.User); err != nil {
		return nil, err
	}
	return c, nil
}

// limitWriter keeps the first n bytes written to it.
type limitWriter struct {
	b *bytes.Buffer
	n int
}

func (w *limitWriter) Write(p []byte) (int, error) {
	if room := w.n - w.b.Len(); room > 0 {
		w.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}
