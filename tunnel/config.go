package tunnel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// Config is one host's resolved ssh_config, plus fields for programmatic use. Paths are
// expanded (~ and % tokens) except ProxyCommand, which is expanded only when it is run,
// after the host and user have been validated.
type Config struct {
	// Alias is the name the user typed (`tether launch ALIAS`); HostName is where it
	// leads after HostName (default: Alias).
	Alias, HostName string
	Port            int
	User            string

	// IdentityFiles are tried in order; when the files name none, they are OpenSSH's
	// defaults (~/.ssh/id_rsa, id_ecdsa, id_ecdsa_sk, id_ed25519, …), like `ssh -G`.
	// Files that do not exist are skipped.
	IdentityFiles, CertificateFiles []string
	IdentitiesOnly                  bool
	// IdentityAgent is a socket path, "SSH_AUTH_SOCK" (the environment's) or "none".
	// Empty means SSH_AUTH_SOCK.
	IdentityAgent string

	// ProxyJump is a comma-separated list of [user@]host[:port] or ssh:// URIs, each
	// resolved through ssh_config under its own name. ProxyCommand is run with `sh -c`
	// after %h, %p, %r, %n and %% are substituted. At most one of them is set.
	ProxyJump    string
	ProxyCommand string

	// ConnectTimeout bounds TCP, proxy and handshake (0: Dial's default of 15 s).
	ConnectTimeout time.Duration
	// ServerAliveInterval is the keepalive period (0: unset, Dial's default of 15 s);
	// the connection is declared dead after ServerAliveCountMax unanswered keepalives.
	// (Where it is unset ssh uses 300 s under BatchMode and none otherwise; tether
	// always keeps the connection alive, to notice a dead network and reconnect.)
	ServerAliveInterval time.Duration
	ServerAliveCountMax int

	UserKnownHostsFiles, GlobalKnownHostsFiles []string
	// StrictHostKeyChecking is "yes", "accept-new", "no" or "ask" (the default). A
	// changed key is refused whatever its value; "no" behaves like accept-new.
	StrictHostKeyChecking string
	HashKnownHosts        bool
	// HostKeyAlias replaces the host name when looking up and recording host keys.
	HostKeyAlias string
	// BatchMode disables every prompt.
	BatchMode bool

	// Signers, when set, are tried before any other key. Not read from files: used by
	// `tether demo`, which talks to an in-process server.
	Signers []ssh.Signer
	// HostKeyCallback, when set, replaces known_hosts checking entirely. Not read from
	// files.
	HostKeyCallback ssh.HostKeyCallback
	// Password, when set, is offered first as the password (once; a refusal is not
	// retried and no password is asked for). Not read from files: the launcher's relay
	// token. A function, so that a Config printed by mistake shows no secret.
	Password func() (string, error)
	// Dial, when set, makes the byte stream SSH runs over, for the first connection
	// and every reconnect, instead of TCP to HostName:Port, ProxyJump or ProxyCommand
	// (the launcher's relay stream; tests' in-memory networks). ConnectTimeout and ctx
	// bound it as they bound TCP; an error with a Permanent() bool method that says
	// true (a relay refusing the token) stops reconnecting. Its errors come back
	// wrapped in the package's prefix only: they say where they were connecting in
	// their own words ("cannot reach portal:lab through the relay …"). Not read from
	// files.
	Dial func(ctx context.Context) (net.Conn, error)

	// OpenSSHNeeds are what the config asks for that tether's own SSH cannot do, as
	// ssh_config words ("ControlMaster", "GSSAPIAuthentication", "Match exec", …) in
	// the order found; OpenSSHReasons says which of them call for OpenSSH's ssh.
	OpenSSHNeeds []string

	// home is the home directory Resolve used, for default identities and prompts.
	home string
	// jumps are ProxyJump's hops as Resolve parsed (and so validated) them; jumpsOf is
	// the ProxyJump value they were parsed from, so that a caller who sets ProxyJump
	// itself (the launcher's --via-node-ssh) is not dialled through stale hops.
	jumps   []jumpHop
	jumpsOf string
	// resolve resolves a ProxyJump hop with the same options.
	resolve func(host string) (*Config, error)
}

// ResolveOptions tunes Resolve. The zero value reads ~/.ssh/config and
// /etc/ssh/ssh_config as `ssh` would.
type ResolveOptions struct {
	// ConfigFile replaces both default files, like `ssh -F`; "none" reads no file.
	ConfigFile string
	// SystemConfigFile replaces /etc/ssh/ssh_config when ConfigFile is empty (tests).
	SystemConfigFile string
	// Home and User default to the current user's; tests set them.
	Home, User string
	// DefaultUser is the remote user when neither the command nor the config names
	// one (empty: the local user, as ssh): a compute node logs in as its login host's
	// User.
	DefaultUser string
	// Warn receives one-line warnings (skipped Match criteria), each a line of its own
	// without a prefix (the caller says whose they are); nil discards them.
	Warn io.Writer
}

// ConfigError is a problem in an ssh_config file.
type ConfigError struct {
	File string
	Line int
	Msg  string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("tunnel: %s line %d: %s", e.File, e.Line, e.Msg)
}

// ErrInvalidName is wrapped by errors for host or user names that could inject options
// or shell syntax (CVE-2023-51385).
var ErrInvalidName = errors.New("invalid host or user name")

// ValidHost reports why a host name is unsafe to pass to ssh or expand into a
// ProxyCommand: a leading '-', whitespace, control characters, NUL or shell
// metacharacters. It returns nil for a safe name.
func ValidHost(h string) error {
	if h == "" {
		return fmt.Errorf("tunnel: empty host name: %w", ErrInvalidName)
	}
	if h[0] == '-' {
		return fmt.Errorf("tunnel: host name %q starts with '-': %w", h, ErrInvalidName)
	}
	for _, r := range h {
		if r < 0x20 || r == 0x7f || r == ' ' || strings.ContainsRune("'`\"$\\;&<>|(){}*?!#~\t", r) {
			return fmt.Errorf("tunnel: host name %q contains %q: %w", h, r, ErrInvalidName)
		}
	}
	return nil
}

// ValidUser is ValidHost for user names.
func ValidUser(u string) error {
	if u == "" {
		return fmt.Errorf("tunnel: empty user name: %w", ErrInvalidName)
	}
	if u[0] == '-' {
		return fmt.Errorf("tunnel: user name %q starts with '-': %w", u, ErrInvalidName)
	}
	for _, r := range u {
		if r < 0x20 || r == 0x7f || r == ' ' || strings.ContainsRune("'`\"$;&<>|(){}*?#\t", r) {
			return fmt.Errorf("tunnel: user name %q contains %q: %w", u, r, ErrInvalidName)
		}
	}
	if strings.HasSuffix(u, `\`) {
		return fmt.Errorf("tunnel: user name %q ends with a backslash: %w", u, ErrInvalidName)
	}
	return nil
}

// Resolve reads ssh_config for host the way `ssh host` would: -F or ~/.ssh/config then
// /etc/ssh/ssh_config, Include, Host and Match blocks, first value wins, and the final
// pass that `Match final` asks for. host may be "user@host" or "user@host:port"-free
// alias; a user given there wins over the files, as on ssh's command line.
func Resolve(host string, o ResolveOptions) (*Config, error) {
	var cmdUser string
	if i := strings.LastIndexByte(host, '@'); i >= 0 {
		cmdUser, host = host[:i], host[i+1:]
		if err := ValidUser(cmdUser); err != nil {
			return nil, err
		}
	}
	if err := ValidHost(host); err != nil {
		return nil, err
	}
	r, err := newResolver(o)
	if err != nil {
		return nil, err
	}
	return r.resolve(host, cmdUser, 0)
}

type resolver struct {
	o         ResolveOptions
	home      string
	localUser string
	localHost string
	files     []source // top-level files, in the order ssh reads them
}

// source is one ssh_config file to read, and how it was reached.
type source struct {
	path string
	// system: the file is /etc/ssh/ssh_config or included from it, so a relative
	// Include is under /etc/ssh rather than ~/.ssh.
	system bool
	// required: named by -F, so a missing or unreadable file is an error.
	required bool
	// depth is the Include nesting, 0 for a top-level file; at depth 0 an unreadable
	// (permission-denied) file is skipped, as ssh does.
	depth int
	// active: lines before the file's first Host or Match apply (its includer's
	// block matched).
	active bool
	// never: the file was included from an inactive block, so nothing in it matches,
	// as OpenSSH's SSHCONF_NEVERMATCH.
	never bool
}

// include is src's view of a file its Include line names from a block that is (or is
// not) active.
func (src source) include(path string, active bool) source {
	return source{path: path, system: src.system, depth: src.depth + 1, active: active, never: src.never || !active}
}

func newResolver(o ResolveOptions) (*resolver, error) {
	r := &resolver{o: o, home: o.Home, localUser: o.User}
	if r.home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("tunnel: finding the home directory: %w", err)
		}
		r.home = h
	}
	if r.localUser == "" {
		u, err := user.Current()
		if err != nil {
			return nil, fmt.Errorf("tunnel: finding the current user: %w", err)
		}
		r.localUser = u.Username
	}
	r.localHost, _ = os.Hostname()
	switch {
	case o.ConfigFile == "none":
	case o.ConfigFile != "":
		r.files = []source{{path: o.ConfigFile, required: true, active: true}}
	default:
		sys := o.SystemConfigFile
		if sys == "" {
			sys = "/etc/ssh/ssh_config"
		}
		r.files = []source{
			{path: filepath.Join(r.home, ".ssh", "config"), active: true},
			{path: sys, system: true, active: true},
		}
	}
	return r, nil
}

// settings accumulates keyword values during evaluation: first value wins, except for
// the list keywords, which accumulate.
type settings struct {
	vals      map[string][]string // keyword (lowercase) → args of the first occurrence
	lists     map[string][]string // identityfile, certificatefile
	jumpSet   bool
	cmdSet    bool
	wantFinal bool
	// unsupported are Match criteria met that tether cannot evaluate ("Match exec").
	unsupported []string
}

func appendOnce(list []string, s string) []string {
	for _, v := range list {
		if v == s {
			return list
		}
	}
	return append(list, s)
}

func (s *settings) get(k string) (string, bool) {
	v, ok := s.vals[k]
	if !ok || len(v) == 0 {
		return "", false
	}
	return v[0], true
}

// evalState is what Match criteria and Host patterns are evaluated against.
type evalState struct {
	host     string // Host patterns match this (the alias; the HostName in the final pass)
	original string // the alias as typed
	cmdUser  string
	final    bool
}

const maxIncludeDepth = 16

func (r *resolver) resolve(alias, cmdUser string, depth int) (*Config, error) {
	s := &settings{vals: map[string][]string{}, lists: map[string][]string{}}
	st := &evalState{host: alias, original: alias, cmdUser: cmdUser}
	if err := r.readAll(s, st); err != nil {
		return nil, err
	}
	if s.wantFinal {
		// OpenSSH re-reads every file with Host patterns matched against the resolved
		// HostName; values already set keep winning.
		st.host = r.hostName(s, alias)
		st.final = true
		if err := r.readAll(s, st); err != nil {
			return nil, err
		}
	}
	return r.build(alias, cmdUser, s, depth)
}

// hostName is HostName with %h expanded, or the alias; lower case, as ssh makes it.
func (r *resolver) hostName(s *settings, alias string) string {
	if hn, ok := s.get("hostname"); ok {
		return strings.ToLower(expandPercent(hn, map[byte]string{'h': alias}))
	}
	return strings.ToLower(alias)
}

func (r *resolver) warn(format string, args ...any) {
	if r.o.Warn != nil {
		fmt.Fprintf(r.o.Warn, format+"\n", args...)
	}
}

// readAll evaluates the top-level files in order, one pass.
func (r *resolver) readAll(s *settings, st *evalState) error {
	for _, f := range r.files {
		if err := r.readFile(f, s, st); err != nil {
			return err
		}
	}
	return nil
}

// readFile evaluates one file into s, its Host and Match lines against st.
func (r *resolver) readFile(src source, s *settings, st *evalState) error {
	path, active, never := src.path, src.active, src.never
	b, err := os.ReadFile(path)
	if err != nil {
		if !src.required && errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if !src.required && src.depth == 0 && errors.Is(err, os.ErrPermission) {
			return nil
		}
		return fmt.Errorf("tunnel: reading ssh config: %w", err)
	}
	for n, line := range strings.Split(string(b), "\n") {
		lineNo := n + 1
		key, rest, ok := splitKeyword(line)
		if !ok {
			continue
		}
		cerr := func(format string, a ...any) error {
			return &ConfigError{File: path, Line: lineNo, Msg: fmt.Sprintf(format, a...)}
		}
		lkey := strings.ToLower(key)
		if lkey == "proxycommand" {
			// The rest of the line, raw: it is a shell command.
			if active {
				s.setProxyCommand(strings.TrimSpace(rest))
			}
			continue
		}
		args, err := splitArgs(rest)
		if err != nil {
			return cerr("%v", err)
		}
		switch lkey {
		case "host":
			if len(args) == 0 {
				return cerr("Host needs a pattern")
			}
			active = matchHostPatterns(st.host, args) && !never
		case "match":
			m, err := r.evalMatch(args, s, st, path, lineNo, never)
			if err != nil {
				return err
			}
			active = m && !never
		case "include":
			if len(args) == 0 {
				return cerr("Include needs a file")
			}
			if src.depth+1 > maxIncludeDepth {
				return cerr("Include nested too deeply")
			}
			for _, pat := range args {
				pat = expandTilde(pat, r.home)
				if !filepath.IsAbs(pat) {
					if src.system {
						pat = filepath.Join("/etc/ssh", pat)
					} else {
						pat = filepath.Join(r.home, ".ssh", pat)
					}
				}
				matches, err := filepath.Glob(pat)
				if err != nil {
					return cerr("bad Include pattern %q: %v", pat, err)
				}
				for _, m := range matches { // Glob sorts, like glob(3)
					// An Include in an inactive block reads nothing that can match.
					if err := r.readFile(src.include(m, active), s, st); err != nil {
						return err
					}
				}
			}
		default:
			if !active {
				continue
			}
			if len(args) == 0 {
				return cerr("%s needs a value", key)
			}
			switch lkey {
			case "identityfile", "certificatefile":
				if len(args) != 1 {
					return cerr("%s takes one value", key)
				}
				s.lists[lkey] = append(s.lists[lkey], args[0])
			case "proxyjump":
				if !s.jumpSet && !s.cmdSet {
					s.jumpSet = true
					s.vals[lkey] = args[:1]
				}
			default:
				if _, seen := s.vals[lkey]; !seen {
					s.vals[lkey] = args
				}
			}
		}
	}
	return nil
}

// setProxyCommand follows OpenSSH: a ProxyCommand after a real ProxyJump is ignored; the
// first ProxyCommand wins.
func (s *settings) setProxyCommand(v string) {
	if s.cmdSet || (s.jumpSet && !strings.EqualFold(s.vals["proxyjump"][0], "none")) {
		return
	}
	s.cmdSet = true
	s.vals["proxycommand"] = []string{v}
}

// evalMatch evaluates a Match line. Criteria tether cannot evaluate (exec, and any it
// does not know) make the block inactive, with a one-line warning.
func (r *resolver) evalMatch(args []string, s *settings, st *evalState, path string, line int, never bool) (bool, error) {
	result := true
	for i := 0; i < len(args); i++ {
		crit := strings.ToLower(args[i])
		neg := strings.HasPrefix(crit, "!")
		crit = strings.TrimPrefix(crit, "!")
		var m bool
		switch crit {
		case "all":
			m = true
		case "final":
			s.wantFinal = true
			m = st.final
		case "canonical":
			m = st.final
		case "host", "originalhost", "user", "localuser", "exec":
			if i+1 >= len(args) {
				return false, &ConfigError{File: path, Line: line, Msg: "Match " + crit + " needs an argument"}
			}
			i++
			arg := args[i]
			switch crit {
			case "host":
				m = matchPatternList(r.hostName(s, st.original), arg, true)
				if st.final {
					m = matchPatternList(st.host, arg, true)
				}
			case "originalhost":
				m = matchPatternList(st.original, arg, true)
			case "user":
				m = matchPatternList(r.remoteUser(s, st.cmdUser), arg, false)
			case "localuser":
				m = matchPatternList(r.localUser, arg, false)
			case "exec":
				if result && !never {
					s.unsupported = appendOnce(s.unsupported, "Match exec")
				}
				r.warn("%s line %d: Match exec is not supported; skipping this Match block", path, line)
				return false, nil
			}
		default:
			if result && !never {
				s.unsupported = appendOnce(s.unsupported, "Match "+crit)
			}
			r.warn("%s line %d: Match %s is not supported; skipping this Match block", path, line, crit)
			return false, nil
		}
		if neg {
			m = !m
		}
		if !m {
			result = false
		}
	}
	return result, nil
}

func (r *resolver) remoteUser(s *settings, cmdUser string) string {
	if cmdUser != "" {
		return cmdUser
	}
	if u, ok := s.get("user"); ok {
		return u
	}
	if r.o.DefaultUser != "" {
		return r.o.DefaultUser
	}
	return r.localUser
}

// build turns the accumulated settings into a Config.
func (r *resolver) build(alias, cmdUser string, s *settings, depth int) (*Config, error) {
	c := &Config{Alias: alias, home: r.home, StrictHostKeyChecking: "ask", ServerAliveCountMax: 3, Port: 22}
	c.HostName = r.hostName(s, alias)
	if err := ValidHost(c.HostName); err != nil {
		return nil, err
	}
	c.User = r.remoteUser(s, cmdUser)
	if err := ValidUser(c.User); err != nil {
		return nil, err
	}
	var err error
	bad := func(k, v string) error {
		return fmt.Errorf("tunnel: ssh config for %s: bad %s value %q", alias, k, v)
	}
	if v, ok := s.get("port"); ok {
		if c.Port, err = strconv.Atoi(v); err != nil || c.Port < 1 || c.Port > 65535 {
			return nil, bad("Port", v)
		}
	}
	yesno := func(k string, dst *bool) error {
		v, ok := s.get(k)
		if !ok {
			return nil
		}
		switch strings.ToLower(v) {
		case "yes", "true":
			*dst = true
		case "no", "false":
			*dst = false
		default:
			return bad(k, v)
		}
		return nil
	}
	for k, dst := range map[string]*bool{"identitiesonly": &c.IdentitiesOnly, "hashknownhosts": &c.HashKnownHosts, "batchmode": &c.BatchMode} {
		if err := yesno(k, dst); err != nil {
			return nil, err
		}
	}
	if v, ok := s.get("stricthostkeychecking"); ok {
		switch strings.ToLower(v) {
		case "yes", "true":
			c.StrictHostKeyChecking = "yes"
		case "no", "false", "off":
			c.StrictHostKeyChecking = "no"
		case "ask":
			c.StrictHostKeyChecking = "ask"
		case "accept-new":
			c.StrictHostKeyChecking = "accept-new"
		default:
			return nil, bad("StrictHostKeyChecking", v)
		}
	}
	for k, dst := range map[string]*time.Duration{"connecttimeout": &c.ConnectTimeout, "serveraliveinterval": &c.ServerAliveInterval} {
		if v, ok := s.get(k); ok && !strings.EqualFold(v, "none") {
			if *dst, err = parseOpenSSHTime(v); err != nil {
				return nil, bad(k, v)
			}
		}
	}
	if v, ok := s.get("serveralivecountmax"); ok {
		if c.ServerAliveCountMax, err = strconv.Atoi(v); err != nil || c.ServerAliveCountMax < 0 {
			return nil, bad("ServerAliveCountMax", v)
		}
	}
	if v, ok := s.get("hostkeyalias"); ok {
		c.HostKeyAlias = v
	}
	tokens := map[byte]string{
		'd': r.home, 'u': r.localUser, 'l': r.localHost, 'L': shortHost(r.localHost),
		'h': c.HostName, 'r': c.User, 'p': strconv.Itoa(c.Port), 'n': alias,
	}
	path := func(p string) string { return expandPercent(expandTilde(p, r.home), tokens) }
	ids := s.lists["identityfile"]
	if len(ids) == 0 {
		for _, n := range []string{"id_rsa", "id_ecdsa", "id_ecdsa_sk", "id_ed25519", "id_ed25519_sk", "id_xmss", "id_dsa"} {
			ids = append(ids, "~/.ssh/"+n)
		}
	}
	for _, f := range ids {
		if strings.EqualFold(f, "none") {
			continue
		}
		c.IdentityFiles = append(c.IdentityFiles, path(f))
	}
	for _, f := range s.lists["certificatefile"] {
		if !strings.EqualFold(f, "none") {
			c.CertificateFiles = append(c.CertificateFiles, path(f))
		}
	}
	if v, ok := s.get("identityagent"); ok {
		switch {
		case strings.EqualFold(v, "none"), v == "SSH_AUTH_SOCK":
			c.IdentityAgent = v
		default:
			c.IdentityAgent = path(expandEnv(v))
		}
	}
	c.UserKnownHostsFiles = []string{path("~/.ssh/known_hosts"), path("~/.ssh/known_hosts2")}
	if v, ok := s.vals["userknownhostsfile"]; ok {
		c.UserKnownHostsFiles = nil
		for _, f := range v {
			if !strings.EqualFold(f, "none") {
				c.UserKnownHostsFiles = append(c.UserKnownHostsFiles, path(f))
			}
		}
	}
	c.GlobalKnownHostsFiles = []string{"/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"}
	if v, ok := s.vals["globalknownhostsfile"]; ok {
		c.GlobalKnownHostsFiles = nil
		for _, f := range v {
			if !strings.EqualFold(f, "none") {
				c.GlobalKnownHostsFiles = append(c.GlobalKnownHostsFiles, path(f))
			}
		}
	}
	if v, ok := s.get("proxyjump"); ok && !strings.EqualFold(v, "none") {
		// ssh -G prints the last hop without its ssh:// scheme; so do we.
		if i := strings.LastIndexByte(v, ','); strings.HasPrefix(v[i+1:], "ssh://") {
			v = v[:i+1] + strings.TrimSuffix(strings.TrimPrefix(v[i+1:], "ssh://"), "/")
		}
		if c.jumps, err = parseJumps(v); err != nil {
			return nil, err
		}
		c.ProxyJump, c.jumpsOf = v, v
	}
	if v, ok := s.get("proxycommand"); ok && !strings.EqualFold(v, "none") {
		c.ProxyCommand = v
	}
	c.OpenSSHNeeds = openSSHNeeds(s, c.IdentityFiles, s.lists["identityfile"])
	c.resolve = func(h string) (*Config, error) {
		if depth >= 8 {
			return nil, fmt.Errorf("tunnel: ProxyJump chain from %s is too long (loop?)", alias)
		}
		u := ""
		if i := strings.LastIndexByte(h, '@'); i >= 0 {
			u, h = h[:i], h[i+1:]
		}
		return r.resolve(h, u, depth+1)
	}
	return c, nil
}

// jumpHop is one ProxyJump entry.
type jumpHop struct {
	user, host string
	port       int // 0: from the hop's own config
}

// parseJumps parses a ProxyJump value: [user@]host[:port] or ssh://[user@]host[:port],
// comma-separated, IPv6 in brackets.
func parseJumps(v string) ([]jumpHop, error) {
	var hops []jumpHop
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		s := part
		if strings.HasPrefix(s, "ssh://") {
			s = strings.TrimSuffix(strings.TrimPrefix(s, "ssh://"), "/")
		}
		var h jumpHop
		if i := strings.LastIndexByte(s, '@'); i >= 0 {
			h.user, s = s[:i], s[i+1:]
			if err := ValidUser(h.user); err != nil {
				return nil, err
			}
		}
		host, port := s, ""
		if strings.HasPrefix(s, "[") {
			end := strings.IndexByte(s, ']')
			if end < 0 {
				return nil, fmt.Errorf("tunnel: bad ProxyJump entry %q", part)
			}
			host, port = s[1:end], strings.TrimPrefix(s[end+1:], ":")
		} else if i := strings.LastIndexByte(s, ':'); i >= 0 && strings.Count(s, ":") == 1 {
			host, port = s[:i], s[i+1:]
		}
		h.host = host
		if err := ValidHost(h.host); err != nil {
			return nil, err
		}
		if port != "" {
			p, err := strconv.Atoi(port)
			if err != nil || p < 1 || p > 65535 {
				return nil, fmt.Errorf("tunnel: bad port in ProxyJump entry %q", part)
			}
			h.port = p
		}
		hops = append(hops, h)
	}
	return hops, nil
}

// splitKeyword splits a config line into its keyword and the rest, OpenSSH style
// ("Key value", "Key=value", "Key = value"). ok is false for blank and comment lines.
// Around the keyword a carriage return is whitespace, as in readconf.c (" \t\r\n");
// inside the value it is kept, as argv_split keeps it.
func splitKeyword(line string) (key, rest string, ok bool) {
	const space = " \t\r"
	line = strings.TrimRight(line, space+"\f")
	line = strings.TrimLeft(line, space)
	if line == "" || line[0] == '#' {
		return "", "", false
	}
	end := strings.IndexAny(line, space+"=")
	if end < 0 {
		return line, "", true
	}
	key, rest = line[:end], strings.TrimLeft(line[end:], space)
	if strings.HasPrefix(rest, "=") {
		rest = strings.TrimLeft(rest[1:], space)
	}
	return key, rest, true
}

// splitArgs splits a value like OpenSSH's argv_split: whitespace separates, double and
// single quotes group, a backslash escapes a quote, a backslash or a space, and an
// unquoted '#' at the start of a word begins a comment.
func splitArgs(s string) ([]string, error) {
	var args []string
	var cur strings.Builder
	inArg := false
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if quote == 0 && (c == ' ' || c == '\t') {
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
			continue
		}
		if quote == 0 && !inArg && c == '#' {
			break
		}
		if c == '\\' && i+1 < len(s) {
			n := s[i+1]
			if n == '\\' || n == '"' || n == '\'' || (quote == 0 && n == ' ') {
				cur.WriteByte(n)
				inArg = true
				i++
				continue
			}
		}
		if quote == 0 && (c == '"' || c == '\'') {
			quote = c
			inArg = true
			continue
		}
		if quote != 0 && c == quote {
			quote = 0
			continue
		}
		cur.WriteByte(c)
		inArg = true
	}
	if quote != 0 {
		return nil, errors.New("unterminated quote")
	}
	if inArg {
		args = append(args, cur.String())
	}
	return args, nil
}

// matchHostPatterns is a Host line: any negated pattern that matches excludes the
// host; otherwise any positive match includes it. Case matters, as in ssh.
func matchHostPatterns(host string, patterns []string) bool {
	found := false
	for _, p := range patterns {
		if strings.HasPrefix(p, "!") {
			if globMatch(p[1:], host) {
				return false
			}
			continue
		}
		if globMatch(p, host) {
			found = true
		}
	}
	return found
}

// matchPatternList is OpenSSH's match_pattern_list for Match criteria: a
// comma-separated list with '!' negation; host names compare case-insensitively
// (fold), user names exactly.
func matchPatternList(s, list string, fold bool) bool {
	if fold {
		s, list = strings.ToLower(s), strings.ToLower(list)
	}
	return matchHostPatterns(s, strings.Split(list, ","))
}

// globMatch matches OpenSSH wildcards: '*' any run, '?' one character.
func globMatch(pattern, s string) bool {
	// Iterative with backtracking to the last '*': linear in practice, never
	// exponential.
	p, i, star, mark := 0, 0, -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// expandPercent replaces %X tokens from tokens and %% with %. Unknown tokens are left
// as they are.
func expandPercent(s string, tokens map[byte]string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		if s[i] == '%' {
			b.WriteByte('%')
		} else if v, ok := tokens[s[i]]; ok {
			b.WriteString(v)
		} else {
			b.WriteByte('%')
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func expandTilde(p, home string) string {
	if p == "~" {
		return home
	}
	if strings.HasPrefix(p, "~/") {
		return filepath.Join(home, p[2:])
	}
	return p
}

// expandEnv expands ${VAR} references, as OpenSSH does for IdentityAgent.
func expandEnv(s string) string {
	if !strings.Contains(s, "${") {
		return s
	}
	return os.Expand(s, os.Getenv)
}

func shortHost(h string) string {
	if i := strings.IndexByte(h, '.'); i >= 0 {
		return h[:i]
	}
	return h
}

// parseOpenSSHTime parses sshd_config(5) TIME FORMATS: "30", "30s", "5m", "1h30m".
func parseOpenSSHTime(v string) (time.Duration, error) {
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0, errors.New("negative")
		}
		return time.Duration(n) * time.Second, nil
	}
	var total time.Duration
	num := ""
	for _, c := range strings.ToLower(v) {
		if c >= '0' && c <= '9' {
			num += string(c)
			continue
		}
		n, err := strconv.Atoi(num)
		if err != nil {
			return 0, err
		}
		unit := map[rune]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour, 'w': 7 * 24 * time.Hour}[c]
		if unit == 0 {
			return 0, fmt.Errorf("bad unit %q", c)
		}
		total += time.Duration(n) * unit
		num = ""
	}
	if num != "" {
		n, err := strconv.Atoi(num)
		if err != nil {
			return 0, err
		}
		total += time.Duration(n) * time.Second
	}
	return total, nil
}
