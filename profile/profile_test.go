package profile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// testCheck knows a few launch flags, as the command line's checker would: slurm and
// ssh take a value, app-header is repeatable, port an integer.
func testCheck(s Setting) error {
	switch s.Key {
	case "slurm", "ssh", "app", "name", "setup":
	case "app-header":
		return nil
	case "port":
		for _, v := range s.Values {
			var n int
			if _, err := fmt.Sscanf(v, "%d", &n); err != nil || fmt.Sprint(n) != v {
				return fmt.Errorf("expected a port number but got %q", v)
			}
		}
	default:
		return ErrUnknownKey
	}
	if s.List {
		return errors.New("takes one value, not a list")
	}
	return nil
}

const example = `# tether's config
hosts:
  hpc:
    ssh: openssh
    port: 8888
    app: jupyter
    profiles:
      gpu:
        slurm: "-p a100 --gres=gpu:1"
  "*.cluster.example.edu !gw.cluster.example.edu":
    slurm: "-p cpu"
    port: 9000
  alice@*:
    name: alice-session
  "*":
    setup: module load python
profiles:
  base: &base
    slurm: "-p gpu"
    setup: module load cuda
  gpu:
    <<: *base
    name: gpu-job
  headers:
    app-header: ["A: 1", "B: 2"]
  empty:
`

func TestParseAndDefaults(t *testing.T) {
	c, err := Parse("config.yaml", []byte(example), testCheck)
	if err != nil {
		t.Fatal(err)
	}
	keys := func(ss []Setting) string {
		var out []string
		for _, s := range ss {
			out = append(out, fmt.Sprintf("%s=%s@%d", s.Key, strings.Join(s.Values, "|"), s.Line))
		}
		return strings.Join(out, " ")
	}
	tests := []struct {
		host, want string
	}{
		// The first block that sets a key wins, as in ssh_config.
		{"hpc", "ssh=openssh@4 port=8888@5 app=jupyter@6 setup=module load python@16"},
		{"HPC", "ssh=openssh@4 port=8888@5 app=jupyter@6 setup=module load python@16"},
		{"bob@hpc", "ssh=openssh@4 port=8888@5 app=jupyter@6 setup=module load python@16"},
		{"login1.cluster.example.edu", "slurm=-p cpu@11 port=9000@12 setup=module load python@16"},
		{"gw.cluster.example.edu", "setup=module load python@16"}, // negated
		{"alice@login1.cluster.example.edu", "slurm=-p cpu@11 port=9000@12 name=alice-session@14 setup=module load python@16"},
		{"elsewhere", "setup=module load python@16"},
	}
	for _, tt := range tests {
		if got := keys(c.Defaults(tt.host)); got != tt.want {
			t.Errorf("for %q, got %s; want %s", tt.host, got, tt.want)
		}
	}
	// A host's own profile wins over the top-level one of the same name.
	if p := c.Profile("hpc", "gpu"); p == nil || keys(p.Settings) != "slurm=-p a100 --gres=gpu:1@9" || p.Hosts != "hpc" {
		t.Errorf("gpu on hpc: %+v", p)
	}
	// Merged settings come after the profile's own, which win.
	if p := c.Profile("other", "gpu"); p == nil || keys(p.Settings) != "name=gpu-job@23 slurm=-p gpu@19 setup=module load cuda@20" {
		t.Errorf("gpu elsewhere: %+v", p)
	}
	if p := c.Profile("other", "headers"); p == nil || !p.Settings[0].List || !reflect.DeepEqual(p.Settings[0].Values, []string{"A: 1", "B: 2"}) {
		t.Errorf("headers: %+v", p)
	}
	if p := c.Profile("other", "empty"); p == nil || len(p.Settings) != 0 {
		t.Errorf("empty: %+v", p)
	}
	if p := c.Profile("other", "nope"); p != nil {
		t.Errorf("nope: %+v", p)
	}
	var names []string
	for _, p := range c.ProfilesFor("hpc") {
		names = append(names, p.Name+"@"+p.Hosts)
	}
	if got := strings.Join(names, " "); got != "gpu@hpc base@ empty@ headers@" {
		t.Errorf("profiles for hpc: %s", got)
	}
	// A nil config (no file) has nothing.
	var none *Config
	if none.Defaults("hpc") != nil || none.Profile("hpc", "gpu") != nil || none.ProfilesFor("hpc") != nil {
		t.Error("a nil config has settings")
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{"unknown key", "hosts:\n  hpc:\n    partition: gpu\n", `config.yaml:3: unknown key "partition": settings are launch flags`},
		{"bad value", "profiles:\n  p:\n    port: eighty\n", `config.yaml:3: port: expected a port number but got "eighty"`},
		{"upper case", "profiles:\n  p:\n    Slurm: x\n", `config.yaml:3: unknown key "Slurm": keys are flag names in lower case (slurm)`},
		{"secret", "hosts:\n  hpc:\n    password: hunter2\n", "config.yaml:3: password looks like a secret, and tether keeps none"},
		{"token", "profiles:\n  p:\n    api-token: x\n", "config.yaml:3: api-token looks like a secret"},
		{"tab", "hosts:\n  hpc:\n\tport: 1\n", "config.yaml:3: a tab in the indentation: YAML indents with spaces only"},
		{"syntax", "hosts:\n  hpc: [1\n", "did not find expected ',' or ']' (YAML syntax)"},
		{"twice", "hosts:\n  hpc:\n    port: 1\n    port: 2\n", "config.yaml:4: port is given twice in hosts: hpc (first at line 3); keep one"},
		{"twice top", "profiles: {}\nprofiles: {}\n", "config.yaml:2: profiles is given twice"},
		{"setting at top", "slurm: x\n", "config.yaml:1: slurm is a setting: put it under hosts: HOST:"},
		{"unknown top", "defaults:\n  port: 1\n", `config.yaml:1: unknown key "defaults": this file holds hosts: (defaults by host) and profiles:`},
		{"null", "profiles:\n  p:\n    slurm:\n", `config.yaml:3: slurm has no value: write slurm: VALUE (slurm: "" for an empty one)`},
		{"list for one", "profiles:\n  p:\n    slurm: [a, b]\n", "config.yaml:3: slurm: takes one value, not a list"},
		{"mapping value", "profiles:\n  p:\n    slurm:\n      p: gpu\n", "config.yaml:4: slurm takes a value (or a list of values for a repeatable flag), not a mapping"},
		{"nested list", "profiles:\n  p:\n    app-header: [[a]]\n", "config.yaml:3: app-header: each item of the list must be one value"},
		{"profile name", "profiles:\n  \"a b\":\n    port: 1\n", `config.yaml:2: profile name "a b": use letters`},
		{"not a mapping", "- a\n- b\n", "config.yaml:1: the file must be a YAML mapping"},
		{"hosts list", "hosts: [a]\n", "config.yaml:1: hosts: must be a mapping"},
		{"empty pattern", "hosts:\n  \",\":\n    port: 1\n", "config.yaml:2: a hosts: key must name hosts"},
		{"bare negation", "hosts:\n  \"!\":\n    port: 1\n", `config.yaml:2: "!" is not a host pattern`},
		{"two documents", "profiles: {}\n---\nhosts: {}\n", "config.yaml:2: a second YAML document (---): keep everything in one"},
		{"unknown alias", "profiles:\n  p: *nope\n", "config.yaml: unknown anchor 'nope' referenced (YAML syntax)"},
		{"self merge", "profiles:\n  p: &a\n    <<: *a\n", "merges (<<) nested too deep"},
		{"merge into profiles", "profiles:\n  <<: {}\n", "config.yaml:2: << merges settings, not profiles"},
		{"control chars", "profiles:\n  p:\n    \"x\\e[31m\": 1\n", `config.yaml:3: unknown key "x":`},
	}
	for _, tt := range tests {
		_, err := Parse("config.yaml", []byte(tt.text), testCheck)
		var pe *Error
		if err == nil || !errors.As(err, &pe) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v; want %q", tt.name, err, tt.want)
			continue
		}
		if strings.ContainsAny(err.Error(), "\n\x1b") {
			t.Errorf("%s: the error is not one clean line: %q", tt.name, err)
		}
	}
}

func TestParseEmpty(t *testing.T) {
	for _, text := range []string{"", "# only a comment\n", "---\n", "hosts:\nprofiles:\n"} {
		c, err := Parse("config.yaml", []byte(text), testCheck)
		if err != nil && text != "hosts:\nprofiles:\n" {
			t.Errorf("%q: %v", text, err)
		}
		if err == nil && (len(c.Hosts) != 0 || len(c.Profiles) != 0) {
			t.Errorf("%q: %+v", text, c)
		}
	}
}

func TestParseSite(t *testing.T) {
	ps, err := ParseSite("/etc/tether/profiles.d/gpu.yaml", []byte("profiles:\n  gpu:\n    slurm: \"-p gpu\"\n  cpu:\n    slurm: \"-p cpu\"\n"), testCheck)
	if err != nil || len(ps) != 2 || ps[0].Name != "cpu" || ps[1].Name != "gpu" || !ps[0].Site || ps[1].Where() != "/etc/tether/profiles.d/gpu.yaml:2" {
		t.Fatalf("%v %+v", err, ps)
	}
	for text, want := range map[string]string{
		"hosts:\n  x:\n    port: 1\n":           "gpu.yaml:1: a site profile file holds only profiles: (not \"hosts\")",
		strings.Repeat("#", 64<<10+1):           "larger than 64 KiB",
		"profiles:\n  p:\n    nope: 1\n":        `gpu.yaml:3: unknown key "nope"`,
		"profiles:\n  p:\n    \"\\u202e\": 1\n": `gpu.yaml:3: unknown key`,
	} {
		if _, err := ParseSite("/etc/tether/profiles.d/gpu.yaml", []byte(text), testCheck); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%.40q: got %v; want %q", text, err, want)
		}
	}
}

// TestGlob: ssh's wildcards.
func TestGlob(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true}, {"*", "hpc", true}, {"hpc", "hpc", true}, {"hpc", "hpc2", false},
		{"hpc?", "hpc2", true}, {"hpc?", "hpc", false}, {"*.edu", "a.b.edu", true},
		{"*.edu", "edu", false}, {"a*b*c", "aXbYbZc", true}, {"a*b*c", "aXbYbZ", false},
		{"**", "x", true}, {"*a", strings.Repeat("a", 1000) + "b", false},
	}
	for _, tt := range tests {
		if got := Glob(tt.pattern, tt.s); got != tt.want {
			t.Errorf("Glob(%q, %q) = %v; want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}

// TestPath: XDG_CONFIG_HOME on every platform when absolute, else the platform's place.
func TestPath(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	home := func() (string, error) { return "/home/a", nil }
	tests := []struct {
		goos string
		env  map[string]string
		want string
	}{
		{"linux", nil, "/home/a/.config/tether/config.yaml"},
		{"linux", map[string]string{"XDG_CONFIG_HOME": "/x"}, "/x/tether/config.yaml"},
		{"linux", map[string]string{"XDG_CONFIG_HOME": "rel"}, "/home/a/.config/tether/config.yaml"},
		{"darwin", nil, "/home/a/.config/tether/config.yaml"},
		{"darwin", map[string]string{"XDG_CONFIG_HOME": "/x"}, "/x/tether/config.yaml"},
		{"windows", map[string]string{"AppData": `C:\Users\a\AppData\Roaming`}, `C:\Users\a\AppData\Roaming\tether\config.yaml`},
		{"windows", map[string]string{"AppData": `C:\R`, "XDG_CONFIG_HOME": `D:\cfg`}, `D:\cfg\tether\config.yaml`},
	}
	for _, tt := range tests {
		got, err := pathFor(tt.goos, env(tt.env), home)
		if err != nil || got != tt.want {
			t.Errorf("%s %v: got %q %v; want %q", tt.goos, tt.env, got, err, tt.want)
		}
	}
	if _, err := pathFor("windows", env(nil), home); err == nil {
		t.Error("windows without AppData: no error")
	}
	if _, err := pathFor("linux", env(nil), func() (string, error) { return "", errors.New("no") }); err == nil {
		t.Error("linux without HOME: no error")
	}
}

// TestLoad: a missing file is no config; the file is never written; one someone else
// could write is refused.
func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	if c, err := Load(path, testCheck); c != nil || err != nil {
		t.Fatalf("missing file: %v %v", c, err)
	}
	os.WriteFile(filepath.Join(dir, "config.yml"), []byte("hosts: {}\n"), 0o600)
	if _, err := Load(path, testCheck); err == nil || !strings.Contains(err.Error(), "tether reads config.yaml, not config.yml: rename it") {
		t.Errorf("config.yml: %v", err)
	}
	if err := os.WriteFile(path, []byte(example), 0o600); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(path)
	c, err := Load(path, testCheck)
	if err != nil || len(c.Hosts) != 4 {
		t.Fatalf("%v %+v", err, c)
	}
	after, _ := os.Stat(path)
	if b, _ := os.ReadFile(path); string(b) != example || !after.ModTime().Equal(before.ModTime()) || after.Mode() != before.Mode() {
		t.Error("Load changed the file")
	}
	if runtime.GOOS == "windows" {
		return
	}
	os.Chmod(path, 0o620)
	if _, err := Load(path, testCheck); err == nil || !strings.Contains(err.Error(), "writable by others (mode 0620)") || !strings.Contains(err.Error(), "chmod go-w") {
		t.Errorf("group-writable: %v", err)
	}
	os.Chmod(path, 0o600)
	os.WriteFile(path, []byte(strings.Repeat("#", MaxConfigSize+1)), 0o600)
	if _, err := Load(path, testCheck); err == nil || !strings.Contains(err.Error(), "larger than 1 MiB") {
		t.Errorf("huge: %v", err)
	}
	if os.Getuid() == 0 {
		os.WriteFile(path, []byte("hosts: {}\n"), 0o600)
		os.Chown(path, 65534, 65534)
		if _, err := Load(path, testCheck); err == nil || !strings.Contains(err.Error(), "owned by uid 65534, not by you") {
			t.Errorf("someone else's: %v", err)
		}
	}
}

func TestDisplayPath(t *testing.T) {
	home, err := os.UserHomeDir()
	if err != nil || home == "/" {
		t.Skip("no home directory")
	}
	if got := DisplayPath(filepath.Join(home, ".config", "tether", "config.yaml")); got != filepath.Join("~", ".config", "tether", "config.yaml") {
		t.Errorf("got %q", got)
	}
	if got := DisplayPath(home + "x/config.yaml"); got != home+"x/config.yaml" {
		t.Errorf("a sibling of home: got %q", got)
	}
}
