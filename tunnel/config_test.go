package tunnel

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// home makes a fake home with ~/.ssh/config = cfg and the extra files (relative to
// home), and returns it.
func home(t *testing.T, cfg string, files map[string]string) string {
	t.Helper()
	h := t.TempDir()
	writeFile(t, filepath.Join(h, ".ssh", "config"), cfg)
	for p, c := range files {
		writeFile(t, filepath.Join(h, p), c)
	}
	return h
}

func resolveIn(t *testing.T, h, host string) (*Config, string, error) {
	t.Helper()
	var warn strings.Builder
	c, err := Resolve(host, ResolveOptions{Home: h, User: "alice", SystemConfigFile: filepath.Join(h, "etc_ssh_config"), Warn: &warn})
	return c, warn.String(), err
}

func TestResolveTable(t *testing.T) {
	localHost, _ := os.Hostname()
	tests := []struct {
		name  string
		cfg   string
		files map[string]string
		host  string
		check func(h string, c *Config) string // "" when fine
		warn  string
	}{
		{
			name: "alias", host: "gpu",
			cfg: "Host gpu\n  HostName gpu.example.com\n  Port 2222\n  User bob\n",
			check: func(h string, c *Config) string {
				return want(c.HostName == "gpu.example.com" && c.Port == 2222 && c.User == "bob" && c.Alias == "gpu", c)
			},
		},
		{
			// What ssh -G (OpenSSH 9.2) makes of these lines: a carriage return around
			// the keyword or '=' is whitespace, a trailing form feed is stripped.
			name: "carriage returns around keywords", host: "gpu",
			cfg: "\rHost gpu\r\n\r\tPort\r=\r2222\r\f\n User\rbob\n ProxyCommand\rnc %h %p\f\n",
			check: func(h string, c *Config) string {
				return want(c.Port == 2222 && c.User == "bob" && c.ProxyCommand == "nc %h %p", c)
			},
		},
		{
			name: "defaults", host: "plain",
			cfg: "",
			check: func(h string, c *Config) string {
				return want(c.HostName == "plain" && c.Port == 22 && c.User == "alice" && c.StrictHostKeyChecking == "ask" &&
					c.ServerAliveCountMax == 3 && c.ServerAliveInterval == 0 && c.ConnectTimeout == 0 &&
					reflect.DeepEqual(c.UserKnownHostsFiles, []string{h + "/.ssh/known_hosts", h + "/.ssh/known_hosts2"}) &&
					reflect.DeepEqual(c.GlobalKnownHostsFiles, []string{"/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"}) &&
					len(c.IdentityFiles) == 7 && c.IdentityFiles[3] == h+"/.ssh/id_ed25519", c)
			},
		},
		{
			name: "first value wins, wildcard before specific", host: "gpu.example.com",
			cfg:   "Host *.example.com\n Port 2200\nHost gpu.example.com\n Port 22\n User bob\n",
			check: func(h string, c *Config) string { return want(c.Port == 2200 && c.User == "bob", c) },
		},
		{
			name: "negation", host: "bastion",
			cfg:   "Host * !bastion\n ProxyJump bastion\n",
			check: func(h string, c *Config) string { return want(c.ProxyJump == "", c) },
		},
		{
			name: "negation, other host", host: "gpu",
			cfg:   "Host * !bastion\n ProxyJump bastion\n",
			check: func(h string, c *Config) string { return want(c.ProxyJump == "bastion", c) },
		},
		{
			name: "question mark and equals", host: "node7",
			cfg:   "Host node?\n Port=2207\n User = carol # comment\n",
			check: func(h string, c *Config) string { return want(c.Port == 2207 && c.User == "carol", c) },
		},
		{
			name: "Include relative glob, sorted, and absolute", host: "gpu",
			cfg: "Include conf.d/*.conf\nInclude ~/abs.conf\n",
			files: map[string]string{
				".ssh/conf.d/10-a.conf": "Host gpu\n Port 1010\n",
				".ssh/conf.d/20-b.conf": "Host gpu\n Port 2020\n User fromb\n",
				"abs.conf":              "Host *\n HostName abs.example\n",
			},
			check: func(h string, c *Config) string {
				return want(c.Port == 1010 && c.User == "fromb" && c.HostName == "abs.example", c)
			},
		},
		{
			name: "Include in a non-matching block reads nothing", host: "gpu",
			cfg:   "Host other\n Include inc.conf\nHost *\n Port 33\n",
			files: map[string]string{".ssh/inc.conf": "Host *\n Port 44\n"},
			check: func(h string, c *Config) string { return want(c.Port == 33, c) },
		},
		{
			name: "tokens", host: "gpu",
			cfg: "Host gpu\n HostName %h.example.com\n User bob\n Port 2222\n" +
				" IdentityFile ~/.ssh/id_%r@%h:%p_%u_%l_%d_%%_%n\n CertificateFile %d/c-%r-cert.pub\n" +
				" UserKnownHostsFile ~/kh_%h %d/kh2\n GlobalKnownHostsFile none\n IdentityAgent ~/agent.%u\n",
			check: func(h string, c *Config) string {
				id := fmt.Sprintf("%s/.ssh/id_bob@gpu.example.com:2222_alice_%s_%s_%%_gpu", h, localHost, h)
				return want(reflect.DeepEqual(c.IdentityFiles, []string{id}) &&
					reflect.DeepEqual(c.CertificateFiles, []string{h + "/c-bob-cert.pub"}) &&
					reflect.DeepEqual(c.UserKnownHostsFiles, []string{h + "/kh_gpu.example.com", h + "/kh2"}) &&
					len(c.GlobalKnownHostsFiles) == 0 && c.IdentityAgent == h+"/agent.alice", c)
			},
		},
		{
			name: "IdentityFile accumulates across blocks", host: "gpu",
			cfg: "Host gpu\n IdentityFile ~/a\n IdentityFile ~/b\nHost *\n IdentityFile ~/c\n IdentitiesOnly yes\n",
			check: func(h string, c *Config) string {
				return want(reflect.DeepEqual(c.IdentityFiles, []string{h + "/a", h + "/b", h + "/c"}) && c.IdentitiesOnly, c)
			},
		},
		{
			name: "quoted path with a space", host: "gpu",
			cfg: "Host gpu\n IdentityFile \"~/my keys/id\"\n",
			check: func(h string, c *Config) string {
				return want(reflect.DeepEqual(c.IdentityFiles, []string{h + "/my keys/id"}), c)
			},
		},
		{
			name: "IdentityFile none: no defaults", host: "gpu",
			cfg: "Host gpu\n IdentityFile none\n IdentityAgent SSH_AUTH_SOCK\n",
			check: func(h string, c *Config) string {
				return want(len(c.IdentityFiles) == 0 && c.IdentityAgent == "SSH_AUTH_SOCK", c)
			},
		},
		{
			name: "ProxyJump chain", host: "gpu",
			cfg: "Host gpu\n ProxyJump alice@j1:2222,ssh://j2,[::1]:44\n ProxyCommand ignored\n",
			check: func(h string, c *Config) string {
				hops, err := c.jumpHops()
				return want(err == nil && c.ProxyCommand == "" && c.ProxyJump == "alice@j1:2222,ssh://j2,[::1]:44" &&
					reflect.DeepEqual(hops, []jumpHop{{"alice", "j1", 2222}, {"", "j2", 0}, {"", "::1", 44}}), c)
			},
		},
		{
			name: "ProxyCommand first wins over a later ProxyJump", host: "gpu",
			cfg: "Host gpu\n ProxyCommand ssh -W %h:%p jump # not a comment for the shell?\n ProxyJump j1\n",
			check: func(h string, c *Config) string {
				return want(c.ProxyJump == "" && strings.HasPrefix(c.ProxyCommand, "ssh -W %h:%p jump"), c)
			},
		},
		{
			name: "ProxyJump none then ProxyCommand", host: "gpu",
			cfg:   "Host gpu\n ProxyJump none\n ProxyCommand nc %h %p\nHost *\n ProxyJump j9\n",
			check: func(h string, c *Config) string { return want(c.ProxyJump == "" && c.ProxyCommand == "nc %h %p", c) },
		},
		{
			name: "times and modes", host: "gpu",
			cfg: "Host *\n ServerAliveInterval 1m30s\n ServerAliveCountMax 5\n ConnectTimeout 7\n" +
				" StrictHostKeyChecking accept-new\n HashKnownHosts yes\n BatchMode yes\n HostKeyAlias gpu-key\n",
			check: func(h string, c *Config) string {
				return want(c.ServerAliveInterval == 90*time.Second && c.ServerAliveCountMax == 5 && c.ConnectTimeout == 7*time.Second &&
					c.StrictHostKeyChecking == "accept-new" && c.HashKnownHosts && c.BatchMode && c.HostKeyAlias == "gpu-key", c)
			},
		},
		{
			name: "StrictHostKeyChecking off means no", host: "gpu",
			cfg:   "Host *\n StrictHostKeyChecking off\n",
			check: func(h string, c *Config) string { return want(c.StrictHostKeyChecking == "no", c) },
		},
		{
			name: "user on the command line wins", host: "dave@gpu",
			cfg:   "Host gpu\n User bob\n",
			check: func(h string, c *Config) string { return want(c.User == "dave" && c.Alias == "gpu", c) },
		},
		{
			name: "system config after the user's", host: "gpu",
			cfg:   "Host gpu\n Port 2\n",
			files: map[string]string{"etc_ssh_config": "Host *\n Port 3\n User sys\n"},
			check: func(h string, c *Config) string { return want(c.Port == 2 && c.User == "sys", c) },
		},
		{
			name: "Match host sees HostName, originalhost the alias", host: "gpu",
			cfg: "Host gpu\n HostName real.example\nMatch host real.example\n Port 77\nMatch originalhost gpu\n User ox\nMatch host gpu\n ConnectTimeout 9\n",
			check: func(h string, c *Config) string {
				return want(c.Port == 77 && c.User == "ox" && c.ConnectTimeout == 0, c)
			},
		},
		{
			name: "Match user and localuser, pattern lists", host: "gpu",
			cfg: "Host gpu\n User bob\nMatch user carol,b*\n Port 55\nMatch localuser !alice\n HostName no\nMatch localuser alice\n HostKeyAlias la\n",
			check: func(h string, c *Config) string {
				return want(c.Port == 55 && c.HostName == "gpu" && c.HostKeyAlias == "la", c)
			},
		},
		{
			name: "Match final all (Fedora) and the final pass", host: "gpu",
			cfg: "Host gpu\n HostName real\nHost real\n Port 99\nMatch final all\n User fin\nMatch !final\n ConnectTimeout 4\n",
			check: func(h string, c *Config) string {
				return want(c.Port == 99 && c.User == "fin" && c.ConnectTimeout == 4*time.Second, c)
			},
		},
		{
			name: "Match canonical without final never matches", host: "gpu",
			cfg:   "Match canonical all\n Port 55\n",
			check: func(h string, c *Config) string { return want(c.Port == 22, c) },
		},
		{
			name: "Match exec is skipped with a warning", host: "gpu",
			cfg:   "Match exec \"true\"\n Port 66\nHost *\n User after\n",
			check: func(h string, c *Config) string { return want(c.Port == 22 && c.User == "after", c) },
			warn:  "Match exec is not supported",
		},
		{
			name: "unknown Match criterion is skipped with a warning", host: "gpu",
			cfg:   "Match tagged foo\n Port 66\n",
			check: func(h string, c *Config) string { return want(c.Port == 22, c) },
			warn:  "Match tagged is not supported",
		},
		{
			name: "Host is case-sensitive, Match host is not, HostName is lowered", host: "GPU",
			cfg: "Host gpu\n Port 2\nHost GPU\n HostName Real.EXAMPLE\nMatch originalhost gpu host REAL.example\n User m\n",
			check: func(h string, c *Config) string {
				return want(c.HostName == "real.example" && c.Port == 22 && c.User == "m" && c.Alias == "GPU", c)
			},
		},
		{
			name: "unknown keys are ignored", host: "gpu",
			cfg:   "Host *\n ForwardAgent yes\n SendEnv LANG LC_*\n Ciphers aes128-ctr\n Port 23\n",
			check: func(h string, c *Config) string { return want(c.Port == 23, c) },
		},
	}
	for _, tt := range tests {
		h := home(t, tt.cfg, tt.files)
		c, warn, err := resolveIn(t, h, tt.host)
		if err != nil {
			t.Errorf("for %s, got error %v", tt.name, err)
			continue
		}
		if msg := tt.check(h, c); msg != "" {
			t.Errorf("for %s, got %s", tt.name, msg)
		}
		if !strings.Contains(warn, tt.warn) || (tt.warn == "" && warn != "") {
			t.Errorf("for %s, warnings %q; want %q", tt.name, warn, tt.warn)
		}
	}
}

func want(ok bool, c *Config) string {
	if ok {
		return ""
	}
	cc := *c
	cc.resolve = nil
	return fmt.Sprintf("%+v", cc)
}

// TestResolveRejectsInjection: host and user values that could become options or shell
// syntax are refused before any expansion (CVE-2023-51385, CVE-2025-61984).
func TestResolveRejectsInjection(t *testing.T) {
	h := home(t, "Host evil\n HostName a;id\nHost evilu\n User $(id)\nHost eviljump\n ProxyJump -oProxyCommand=x\n", nil)
	for _, host := range []string{"-oProxyCommand=x", "a;id", "$(id)", "`id`", "a b", "a\nb", "a\x00b", "a\x1bb", "x|y", "x&y",
		"x;y@gpu", "$(id)@gpu", "-l@gpu", "evil", "evilu", "eviljump"} {
		_, _, err := resolveIn(t, h, host)
		if !errors.Is(err, ErrInvalidName) {
			t.Errorf("for %q, got %v; want ErrInvalidName", host, err)
		}
	}
	for _, ok := range []string{"gpu", "gpu-01.example.com", "10.0.0.1", "::1", "bob@gpu", "first.last@gpu", `DOMAIN\user@gpu`} {
		if _, _, err := resolveIn(t, h, ok); err != nil {
			t.Errorf("for %q, got %v; want ok", ok, err)
		}
	}
	// ExpandProxyCommand checks again: a programmatic Config can hold anything.
	cmd, err := ExpandProxyCommand(&Config{HostName: "h.example", Port: 2, User: "u", Alias: "h", ProxyCommand: "nc %h %p # %r %n %%"})
	if err != nil || cmd != "nc h.example 2 # u h %" {
		t.Errorf("expansion: %q %v", cmd, err)
	}
	if _, err := ExpandProxyCommand(&Config{HostName: "h;id", Port: 2, User: "u", ProxyCommand: "nc %h %p"}); !errors.Is(err, ErrInvalidName) {
		t.Errorf("bad host expanded: %v", err)
	}
}

func TestResolveErrors(t *testing.T) {
	for _, cfg := range []string{"Host x\n Port abc\n", "Host x\n StrictHostKeyChecking maybe\n", "Host x\n IdentityFile \"unterminated\n", "Host x\n ServerAliveInterval 5q\n"} {
		h := home(t, cfg, nil)
		if _, _, err := resolveIn(t, h, "x"); err == nil {
			t.Errorf("for %q, no error", cfg)
		}
	}
	// A keyword with no value is an error of one line, even where the line holds a
	// carriage return (ssh: `no argument after keyword "0"`).
	for _, cfg := range []string{"\r0\n", "Port\r\n", "\rUser\n"} {
		h := home(t, cfg, nil)
		_, _, err := resolveIn(t, h, "x")
		if err == nil || strings.ContainsAny(err.Error(), "\r\n") || !strings.Contains(err.Error(), "needs a value") {
			t.Errorf("for %q, got %q; want one line saying the keyword needs a value", cfg, err)
		}
	}
	// -F names a file that must exist; a missing ~/.ssh/config is fine.
	if _, err := Resolve("x", ResolveOptions{ConfigFile: "/nonexistent/cfg", Home: t.TempDir(), User: "a"}); err == nil {
		t.Error("missing -F file: no error")
	}
	if _, err := Resolve("x", ResolveOptions{Home: t.TempDir(), User: "a", SystemConfigFile: "/nonexistent"}); err != nil {
		t.Errorf("missing default files: %v", err)
	}
	// An Include loop ends with an error, not a hang.
	h := home(t, "Include config\n", nil)
	if _, _, err := resolveIn(t, h, "x"); err == nil || !strings.Contains(err.Error(), "Include") {
		t.Errorf("include loop: %v", err)
	}
}

func TestParseOpenSSHTime(t *testing.T) {
	for in, want := range map[string]time.Duration{"30": 30 * time.Second, "30s": 30 * time.Second, "5m": 5 * time.Minute, "1h30m": 90 * time.Minute, "1w": 7 * 24 * time.Hour, "2M": 2 * time.Minute} {
		if got, err := parseOpenSSHTime(in); err != nil || got != want {
			t.Errorf("for %q, got %v (%v); want %v", in, got, err, want)
		}
	}
}

func TestGlobMatch(t *testing.T) {
	for _, tt := range []struct {
		p, s string
		ok   bool
	}{
		{"*", "", true}, {"*", "abc", true}, {"a*c", "abbbc", true}, {"a?c", "abc", true}, {"a?c", "ac", false},
		{"*.example.com", "gpu.example.com", true}, {"*.example.com", "example.com", false}, {"a*b*c", "aXbYc", true},
		{"a*b*c", "aXbY", false}, {"**", "x", true}, {"", "", true}, {"", "x", false},
	} {
		if got := globMatch(tt.p, tt.s); got != tt.ok {
			t.Errorf("for %q on %q, got %v; want %v", tt.p, tt.s, got, tt.ok)
		}
	}
}

// TestJumpHopsCallerSet: a caller that sets ProxyJump on a resolved Config itself (the
// launcher reaching a batch node through its login host) is dialled through its own
// value, parsed and validated then, not through the hops Resolve parsed before.
func TestJumpHopsCallerSet(t *testing.T) {
	h := home(t, "Host gpu\n ProxyJump j1\nHost node\n User bob\n", nil)
	c, err := Resolve("gpu", ResolveOptions{Home: h, User: "alice", SystemConfigFile: filepath.Join(h, "none")})
	if err != nil {
		t.Fatal(err)
	}
	if hops, err := c.jumpHops(); err != nil || !reflect.DeepEqual(hops, []jumpHop{{"", "j1", 0}}) {
		t.Fatalf("resolved: got %v, %v; want [j1]", hops, err)
	}
	c.ProxyJump = "carol@login:2200"
	if hops, err := c.jumpHops(); err != nil || !reflect.DeepEqual(hops, []jumpHop{{"carol", "login", 2200}}) {
		t.Errorf("caller-set: got %v, %v; want [carol@login:2200]", hops, err)
	}
	c.ProxyJump = "-oProxyCommand=id"
	if _, err := c.jumpHops(); !errors.Is(err, ErrInvalidName) {
		t.Errorf("caller-set %q: got %v; want ErrInvalidName", c.ProxyJump, err)
	}
	n, err := Resolve("node", ResolveOptions{Home: h, User: "alice", SystemConfigFile: filepath.Join(h, "none")})
	if err != nil {
		t.Fatal(err)
	}
	n.ProxyJump = "gpu"
	if hops, err := n.jumpHops(); err != nil || !reflect.DeepEqual(hops, []jumpHop{{"", "gpu", 0}}) {
		t.Errorf("caller-set on a config without ProxyJump: got %v, %v; want [gpu]", hops, err)
	}
}
