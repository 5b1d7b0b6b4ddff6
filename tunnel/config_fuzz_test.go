package tunnel

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// FuzzResolve: ssh_config text of any shape never panics the resolver, its errors are
// one line, and what it accepts is a host and port that can be dialled safely (no
// option or shell syntax in the host name or user: CVE-2023-51385).
func FuzzResolve(f *testing.F) {
	for _, s := range [][2]string{
		{"Host gpu\n  HostName 10.0.0.5\n  User alice\n  Port 2222\n", "gpu"},
		{"Host *\n  ProxyJump bastion\nHost bastion\n  ProxyJump none\n", "gpu"},
		{"Match host gpu user bob\n  Port 22\nMatch final\n  User carol\n", "bob@gpu"},
		{"Host a\n  HostName %h.example.org\n  User %r\n", "a"},
		{"Include conf.d/*\nHost x\n  Port 0\n", "x"},
		{"Host=x Port=70000\n", "x"},
		{"Host \"quoted name\"\n  HostName \"a b\"\n", "quoted name"},
		{"Match exec \"true\"\n  User evil\n", "h"},
		{"Host h\n  HostName -oProxyCommand=id\n", "h"},
		{"Host h\n  CanonicalizeHostname yes\n  CanonicalDomains example.org\n", "h"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, cfg, host string) {
		low := strings.ToLower(cfg)
		if strings.Contains(low, "include") && strings.ContainsAny(cfg, "/~") {
			t.Skip("an Include outside the test's home could read devices or other files")
		}
		h := t.TempDir()
		if err := os.MkdirAll(filepath.Join(h, ".ssh"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(h, ".ssh", "config"), []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Resolve(host, ResolveOptions{Home: h, User: "alice", SystemConfigFile: filepath.Join(h, "none")})
		if err != nil {
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("error over several lines: %q", err)
			}
			return
		}
		if c.Port < 1 || c.Port > 65535 {
			t.Fatalf("Resolve(%q) gave port %d", host, c.Port)
		}
		if err := ValidHost(c.HostName); err != nil {
			t.Fatalf("Resolve(%q) gave host name %q: %v", host, c.HostName, err)
		}
		if err := ValidUser(c.User); err != nil {
			t.Fatalf("Resolve(%q) gave user %q: %v", host, c.User, err)
		}
		// The hops kept for dialling are ProxyJump's, as parsing it again would give.
		if c.jumpsOf != c.ProxyJump {
			t.Fatalf("Resolve(%q): jumps parsed from %q, ProxyJump is %q", host, c.jumpsOf, c.ProxyJump)
		}
		if c.ProxyJump != "" {
			again, err := parseJumps(c.ProxyJump)
			if err != nil || !reflect.DeepEqual(again, c.jumps) {
				t.Fatalf("Resolve(%q): kept hops %v; parsing ProxyJump %q again gives %v, %v", host, c.jumps, c.ProxyJump, again, err)
			}
			for _, j := range c.jumps {
				if ValidHost(j.host) != nil || (j.user != "" && ValidUser(j.user) != nil) || j.port < 0 || j.port > 65535 {
					t.Fatalf("Resolve(%q) kept an unsafe hop %+v", host, j)
				}
			}
		}
	})
}
