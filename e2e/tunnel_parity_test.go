//go:build unix

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/tunnel"
)

// parityCorpus: ssh_config files (with {dir} for the corpus directory and {user} for
// the local user) and the hosts to resolve in each. Match exec is left out on purpose:
// tether skips it (with a warning) where ssh would run it.
var parityCorpus = []struct {
	name  string
	files map[string]string // name → content; "config" is passed with -F
	hosts []string
}{
	{
		name: "aliases, wildcards, negation",
		files: map[string]string{"config": `
Host gpu
  HostName gpu.example.com
  User bob
Host *.example.com !skip.example.com
  Port 2222
  ServerAliveInterval 30
Host skip.example.com
  Port 2200
  ServerAliveInterval 1m30s
Host node?
  Port=2207
  User = carol
Host *
  ConnectTimeout 10
  ServerAliveCountMax 5
`},
		hosts: []string{"gpu", "x.example.com", "skip.example.com", "node7", "node77", "other", "dave@gpu", "GPU", "X.Example.com"},
	},
	{
		name: "tokens and files",
		files: map[string]string{"config": `
Host gpu
  HostName %h.example.com
  User bob
  Port 2222
  IdentityFile ~/.ssh/id_%r@%h-%p_%u_%l_%d_%%
  IdentityFile /keys/%n
  CertificateFile ~/.ssh/%h-cert.pub
  UserKnownHostsFile ~/kh/%h %d/kh2
  GlobalKnownHostsFile none
  IdentityAgent ~/agent.sock
  HostKeyAlias gpu-key
  StrictHostKeyChecking accept-new
  HashKnownHosts yes
  BatchMode yes
  IdentitiesOnly yes
Host quoted
  IdentityFile "/path with space/id"
  IdentityAgent SSH_AUTH_SOCK
  StrictHostKeyChecking no
Host none
  IdentityFile none
  IdentityAgent none
  StrictHostKeyChecking off
Host *
  IdentityFile ~/.ssh/common
`},
		hosts: []string{"gpu", "quoted", "none", "plain"},
	},
	{
		name: "ProxyJump chains and ProxyCommand",
		files: map[string]string{"config": `
Host t1
  ProxyJump alice@j1:2222,j2,ssh://u@j3:23
Host t2
  ProxyCommand ssh -W %h:%p jump
  ProxyJump j3
Host t3
  ProxyJump none
Host t4
  ProxyJump j4
  ProxyCommand nc %h %p
Host t5
  ProxyCommand none
Host *
  ProxyJump jdefault
  StrictHostKeyChecking yes
`},
		hosts: []string{"t1", "t2", "t3", "t4", "t5", "t6"},
	},
	{
		name: "Include",
		files: map[string]string{
			"config": `
Include {dir}/conf.d/*.conf
Host gpu
  Include {dir}/gpu.inc
Host other
  Include {dir}/never.inc
Host *
  User fallback
`,
			"conf.d/10-a.conf": "Host gpu\n  Port 1010\n",
			"conf.d/20-b.conf": "Host gpu\n  Port 2020\n  HostName b.example\nHost *\n  ServerAliveInterval 7\n",
			"gpu.inc":          "BatchMode yes\nHost *\n  ConnectTimeout 3\n",
			"never.inc":        "Host *\n  HashKnownHosts yes\n",
		},
		hosts: []string{"gpu", "other", "third"},
	},
	{
		name: "Match",
		files: map[string]string{"config": `
Host gpu GPU
  HostName Real.Example
Match host real.example originalhost gpu
  Port 77
Match originalhost gpu user {user}
  ServerAliveInterval 11
Match user bob,carol
  Port 88
Match localuser {user}
  ConnectTimeout 12
Match localuser !{user}
  ServerAliveCountMax 9
Match !final all
  HashKnownHosts yes
Match canonical all
  BatchMode yes
Match all
  IdentitiesOnly yes
`},
		hosts: []string{"gpu", "bob@gpu", "bob@x", "real.example", "GPU", "Bob@gpu"},
	},
	{
		name: "Match final (Fedora) and the final pass",
		files: map[string]string{
			"config": `
Host gpu
  HostName real
Host real
  Port 99
Match final all
  Include {dir}/crypto-policies.conf
Match final host real
  User fin
`,
			"crypto-policies.conf": "ServerAliveInterval 42\nHost real\n  ConnectTimeout 5\n",
		},
		hosts: []string{"gpu", "real", "other"},
	},
}

// parityKeys are the keys issue 4 lists, as `ssh -G` names them.
var parityKeys = []string{"hostname", "port", "user", "identityfile", "certificatefile", "identitiesonly",
	"identityagent", "proxyjump", "proxycommand", "connecttimeout", "serveraliveinterval", "serveralivecountmax",
	"userknownhostsfile", "globalknownhostsfile", "stricthostkeychecking", "hashknownhosts", "hostkeyalias", "batchmode"}

// TestTunnelSSHGParity: for every corpus config and host, tunnel.Resolve gives what
// `ssh -G` prints, key by key.
func TestTunnelSSHGParity(t *testing.T) {
	Need(t, "ssh", "openssh-client")
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, tc := range parityCorpus {
		dir := t.TempDir()
		for name, content := range tc.files {
			content = strings.NewReplacer("{dir}", dir, "{user}", u.Username).Replace(content)
			p := filepath.Join(dir, name)
			os.MkdirAll(filepath.Dir(p), 0o700)
			if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		cfgFile := filepath.Join(dir, "config")
		for _, host := range tc.hosts {
			out, err := exec.Command("ssh", "-G", "-F", cfgFile, host).Output()
			if err != nil {
				t.Errorf("%s / %s: ssh -G: %v", tc.name, host, err)
				continue
			}
			cfg, err := tunnel.Resolve(host, tunnel.ResolveOptions{ConfigFile: cfgFile})
			if err != nil {
				t.Errorf("%s / %s: Resolve: %v", tc.name, host, err)
				continue
			}
			checked += compareSSHG(t, tc.name, host, string(out), cfg)
			checked += compareOpenSSHConfig(t, tc.name, host, cfgFile, cfg)
		}
	}
	t.Logf("%d key comparisons against ssh -G", checked)
}

// compareOpenSSHConfig: the Config the OpenSSH transport builds from ssh -G
// (tunnel.ResolveOpenSSH) says what the native resolver says, key by key (identity
// and certificate files aside: ssh -G prints them unexpanded).
func compareOpenSSHConfig(t *testing.T, name, host, cfgFile string, native *tunnel.Config) int {
	t.Helper()
	oc, _, err := tunnel.ResolveOpenSSH(Context(t, 30*time.Second), "ssh", host, cfgFile)
	if err != nil {
		t.Errorf("%s / %s: ResolveOpenSSH: %v", name, host, err)
		return 0
	}
	got, want := ourSSHG(oc), ourSSHG(native)
	n := 0
	for _, k := range parityKeys {
		if k == "identityfile" || k == "certificatefile" {
			continue
		}
		w := want[k]
		if k == "serveraliveinterval" && len(w) == 0 && native.BatchMode && strings.Join(got[k], "") == "300" {
			w = got[k] // unset: ssh's BatchMode default, which ssh -G prints
		}
		if strings.Join(got[k], "\n") != strings.Join(w, "\n") {
			t.Errorf("%s / %s: %s: ResolveOpenSSH says %q; the native resolver %q", name, host, k, got[k], w)
		}
		n++
	}
	return n
}

// openSSHCorpus: configs with what only OpenSSH's ssh honours, for --ssh auto.
var openSSHCorpus = []struct {
	name  string
	cfg   string
	hosts []string
}{
	{
		name: "ControlMaster, GSSAPI, tokens, OpenSSH-only features",
		cfg: `
Host cm
  ControlMaster auto
  ControlPath /tmp/cm-%C
  ControlPersist 10m
Host cmno
  ControlMaster no
  ControlPath none
Host path
  ControlPath ~/.ssh/cm-%r@%h:%p
Host krb
  GSSAPIAuthentication yes
  GSSAPIDelegateCredentials yes
Host token
  PKCS11Provider /usr/lib/x86_64-linux-gnu/opensc-pkcs11.so
Host fido
  SecurityKeyProvider /usr/lib/sk-libfido2.so
Host hb
  HostbasedAuthentication yes
Host khc
  KnownHostsCommand /usr/local/bin/kh %H
Host canon
  CanonicalizeHostname yes
  CanonicalDomains example.com
Host fdpass
  ProxyCommand nc %h %p
  ProxyUseFdpass yes
Host *.site
  ControlMaster autoask
  ControlPath /tmp/site-%C
`,
		hosts: []string{"cm", "cmno", "path", "krb", "token", "fido", "hb", "khc", "canon", "fdpass", "node1.site", "plain"},
	},
}

// TestOpenSSHNeedsParity: what the native resolver reports as needing OpenSSH
// (tunnel.Config.OpenSSHNeeds, which --ssh auto reads) matches what ssh -G says the
// same config sets.
func TestOpenSSHNeedsParity(t *testing.T) {
	Need(t, "ssh", "openssh-client")
	checked := 0
	for _, tc := range openSSHCorpus {
		cfgFile := filepath.Join(t.TempDir(), "config")
		if err := os.WriteFile(cfgFile, []byte(tc.cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, host := range tc.hosts {
			out, err := exec.Command("ssh", "-G", "-F", cfgFile, host).Output()
			if err != nil {
				t.Errorf("%s / %s: ssh -G: %v", tc.name, host, err)
				continue
			}
			g := tunnel.ParseSSHG(out)
			var want []string
			for _, c := range []struct {
				need string
				set  bool
			}{
				{"ControlMaster", g.Get("controlmaster") != "" && g.Get("controlmaster") != "false"},
				{"ControlPath", g.Get("controlpath") != "" && g.Get("controlpath") != "none"},
				{"GSSAPIAuthentication", g.Get("gssapiauthentication") == "yes"},
				{"PKCS11Provider", g.Get("pkcs11provider") != "" && g.Get("pkcs11provider") != "none"},
				{"SecurityKeyProvider", g.Get("securitykeyprovider") != "" && g.Get("securitykeyprovider") != "internal"},
				{"HostbasedAuthentication", g.Get("hostbasedauthentication") == "yes"},
				{"KnownHostsCommand", g.Get("knownhostscommand") != "" && g.Get("knownhostscommand") != "none"},
				{"CanonicalizeHostname", g.Get("canonicalizehostname") != "" && g.Get("canonicalizehostname") != "false"},
				{"ProxyUseFdpass", g.Get("proxyusefdpass") == "yes"},
			} {
				if c.set {
					want = append(want, c.need)
				}
			}
			cfg, err := tunnel.Resolve(host, tunnel.ResolveOptions{ConfigFile: cfgFile})
			if err != nil {
				t.Errorf("%s / %s: Resolve: %v", tc.name, host, err)
				continue
			}
			if strings.Join(cfg.OpenSSHNeeds, " ") != strings.Join(want, " ") {
				t.Errorf("%s / %s: the native resolver's OpenSSH needs %q; ssh -G sets %q", tc.name, host, cfg.OpenSSHNeeds, want)
			}
			checked++
		}
	}
	t.Logf("%d hosts compared with ssh -G", checked)
}

// TestTunnelSSHGParityDefaultFiles: without -F, for this machine's own ~/.ssh/config
// and /etc/ssh/ssh_config (Debian's Include of ssh_config.d, HashKnownHosts yes, …).
func TestTunnelSSHGParityDefaultFiles(t *testing.T) {
	Need(t, "ssh", "openssh-client")
	for _, host := range []string{"tether-parity-host", "bob@tether-parity-host"} {
		out, err := exec.Command("ssh", "-G", host).Output()
		if err != nil {
			t.Fatalf("ssh -G: %v", err)
		}
		var warn strings.Builder
		cfg, err := tunnel.Resolve(host, tunnel.ResolveOptions{Warn: &warn})
		if err != nil {
			t.Fatal(err)
		}
		if warn.Len() > 0 {
			t.Skipf("this machine's config has what tether skips: %s", warn.String())
		}
		compareSSHG(t, "default files", host, string(out), cfg)
	}
}

// compareSSHG compares every parity key of cfg with ssh -G's output and returns how
// many it compared.
func compareSSHG(t *testing.T, name, host, out string, cfg *tunnel.Config) int {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatal(err)
	}
	localHost, _ := os.Hostname()
	checked := 0
	want := parseSSHG(out)
	alias := host
	if i := strings.LastIndexByte(host, '@'); i >= 0 {
		alias = host[i+1:]
	}
	// ssh -G prints IdentityFile and CertificateFile before ~ and % expansion;
	// expand them here the way ssh does when it loads them.
	expand := func(v string) string {
		if strings.HasPrefix(v, "~/") {
			v = home + v[1:]
		}
		return strings.NewReplacer("%%", "%", "%d", home, "%u", u.Username, "%l", localHost,
			"%h", want.one("hostname"), "%r", want.one("user"), "%p", want.one("port"), "%n", alias).Replace(v)
	}
	got := ourSSHG(cfg)
	for _, k := range parityKeys {
		w := want[k]
		if k == "serveraliveinterval" && len(got[k]) == 0 && want.one("batchmode") == "yes" && strings.Join(w, "") == "300" {
			// Unset: ssh's BatchMode default is 300 s; tether's Dial uses 15 s.
			w = nil
		}
		if k == "identityfile" || k == "certificatefile" {
			var ex []string
			for _, v := range w {
				if v != "none" {
					ex = append(ex, expand(v))
				}
			}
			w = ex
		}
		if strings.Join(got[k], "\n") != strings.Join(w, "\n") {
			t.Errorf("%s / %s: %s: got %q; ssh -G says %q", name, host, k, got[k], w)
		}
		checked++
	}
	return checked
}

type sshG map[string][]string

func (g sshG) one(k string) string {
	if v := g[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// parseSSHG reads `ssh -G` output: "key value" lines; repeated keys accumulate; the
// known_hosts keys hold space-separated lists.
func parseSSHG(out string) sshG {
	g := sshG{}
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		switch k {
		case "userknownhostsfile", "globalknownhostsfile":
			if v == "none" {
				g[k] = nil
				continue
			}
			g[k] = strings.Fields(v)
		case "connecttimeout":
			if v != "none" {
				g[k] = []string{v}
			}
		case "serveraliveinterval":
			if v != "0" {
				g[k] = []string{v}
			}
		case "identityagent", "proxyjump", "proxycommand", "hostkeyalias":
			g[k] = []string{v}
		default:
			g[k] = append(g[k], v)
		}
	}
	return g
}

// ourSSHG renders a Config the way `ssh -G` prints it.
func ourSSHG(c *tunnel.Config) sshG {
	yn := func(b bool) []string {
		if b {
			return []string{"yes"}
		}
		return []string{"no"}
	}
	g := sshG{
		"hostname":              {c.HostName},
		"port":                  {strconv.Itoa(c.Port)},
		"user":                  {c.User},
		"identityfile":          c.IdentityFiles,
		"certificatefile":       c.CertificateFiles,
		"identitiesonly":        yn(c.IdentitiesOnly),
		"serveralivecountmax":   {strconv.Itoa(c.ServerAliveCountMax)},
		"userknownhostsfile":    c.UserKnownHostsFiles,
		"globalknownhostsfile":  c.GlobalKnownHostsFiles,
		"hashknownhosts":        yn(c.HashKnownHosts),
		"batchmode":             yn(c.BatchMode),
		"stricthostkeychecking": {map[string]string{"yes": "true", "no": "false", "ask": "ask", "accept-new": "accept-new"}[c.StrictHostKeyChecking]},
	}
	if c.IdentityAgent != "" {
		g["identityagent"] = []string{c.IdentityAgent}
	}
	if c.ProxyJump != "" {
		g["proxyjump"] = []string{c.ProxyJump}
	}
	if c.ProxyCommand != "" {
		g["proxycommand"] = []string{c.ProxyCommand}
	}
	if c.HostKeyAlias != "" {
		g["hostkeyalias"] = []string{c.HostKeyAlias}
	}
	if c.ConnectTimeout > 0 {
		g["connecttimeout"] = []string{fmt.Sprint(int(c.ConnectTimeout / time.Second))}
	}
	if c.ServerAliveInterval > 0 {
		g["serveraliveinterval"] = []string{fmt.Sprint(int(c.ServerAliveInterval / time.Second))}
	}
	return g
}
