package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"

	"github.com/tether-dev/tether/launcher"
)

// TestMain keeps the developer's own config file out of every test of this package:
// tether reads $XDG_CONFIG_HOME/tether/config.yaml.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tether-config-")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_CONFIG_HOME", dir)
	os.Unsetenv("TETHER_SSH")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// withConfig writes text as the config file for the test.
func withConfig(t *testing.T, text string) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	path := filepath.Join(dir, "tether", "config.yaml")
	os.MkdirAll(filepath.Dir(path), 0o700)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// parseCLI parses args as run does (the hooks included) and returns the CLI, the kong
// context and what went to stderr.
func parseCLI(t *testing.T, args ...string) (*CLI, *kong.Context, string, error) {
	t.Helper()
	var cli CLI
	var stderr bytes.Buffer
	p, err := kong.New(&cli, kong.Name("tether"), kong.Vars{"version": "test"}, kong.Writers(&bytes.Buffer{}, &stderr),
		kong.Bind(&Env{Version: "test", Stdout: &bytes.Buffer{}, Stderr: &stderr}))
	if err != nil {
		t.Fatal(err)
	}
	kctx, err := p.Parse(args)
	return &cli, kctx, stderr.String(), err
}

const testConfig = `hosts:
  hpc:
    ssh: openssh
    port: 8888
    app: jupyter
    slurm: "-p cpu -t 1:00:00"
    app-header: ["A: 1", "B: 2"]
    via-node-ssh: true
    profiles:
      big:
        slurm: "-p bigmem"
  "*":
    ready-timeout: 10m
profiles:
  gpu:
    slurm: "-p gpu --gres=gpu:1"
    name: gpu-job
    no-browser: true
`

// TestProfilePrecedence: the flags given win, then the named profile, then the host's
// defaults (the first matching block per key); each value is parsed as the flag
// parses it, --slurm's own decoder included.
func TestProfilePrecedence(t *testing.T) {
	withConfig(t, testConfig)
	cli, kctx, stderr, err := parseCLI(t, "launch", "hpc")
	if err != nil {
		t.Fatal(err)
	}
	l := cli.Launch
	if l.SSH != "openssh" || l.Port != 8888 || l.App != "jupyter" || !slurmIs(kctx, "-p cpu -t 1:00:00") ||
		!reflect.DeepEqual(l.AppHeader, []string{"A: 1", "B: 2"}) || !l.ViaNodeSSH || l.ReadyTimeout != 10*time.Minute || l.Name != "" || l.NoBrowser {
		t.Errorf("host defaults: %+v", l)
	}
	if want := "tether: defaults for hpc: jupyter --ssh openssh --port 8888 --slurm \"-p cpu -t 1:00:00\" --app-header \"A: 1\" --app-header \"B: 2\" --via-node-ssh --ready-timeout 10m\n"; stderr != want {
		t.Errorf("stderr %q\nwant   %q", stderr, want)
	}

	cli, kctx, stderr, err = parseCLI(t, "launch", "hpc", "--profile", "gpu")
	if err != nil {
		t.Fatal(err)
	}
	l = cli.Launch
	if !slurmIs(kctx, "-p gpu --gres=gpu:1") || l.Name != "gpu-job" || !l.NoBrowser || l.Port != 8888 || l.SSH != "openssh" {
		t.Errorf("profile gpu over the defaults: %+v", l)
	}
	if !strings.HasPrefix(stderr, `tether: profile gpu: --slurm "-p gpu --gres=gpu:1" --name gpu-job --no-browser; defaults for hpc: jupyter --ssh openssh --port 8888 --app-header`) {
		t.Errorf("stderr %q", stderr)
	}

	// A host's own profile of that name wins over the top-level one.
	_, kctx, _, _ = parseCLI(t, "launch", "hpc", "--profile", "big")
	if !slurmIs(kctx, "-p bigmem") {
		t.Errorf("hpc's big: %s", flagValue(kctx, "slurm"))
	}

	// Flags given win over both, wherever they are on the line; so does TETHER_SSH.
	t.Setenv("TETHER_SSH", "native")
	cli, kctx, stderr, err = parseCLI(t, "launch", "--port", "1234", "hpc", "--profile", "gpu", "--slurm", "-p mine", "--app-header", "C: 3", "--no-browser=false", "--", "htop")
	if err != nil {
		t.Fatal(err)
	}
	l = cli.Launch
	if l.Port != 1234 || !slurmIs(kctx, "-p mine") || l.SSH != "" || !reflect.DeepEqual(l.AppHeader, []string{"C: 3"}) || l.NoBrowser || l.App != "htop" || l.Name != "gpu-job" {
		t.Errorf("explicit flags: %+v", l)
	}
	if strings.Contains(stderr, "--port") || strings.Contains(stderr, "--ssh") || strings.Contains(stderr, "jupyter") || !strings.Contains(stderr, "profile gpu: --name gpu-job;") {
		t.Errorf("stderr names what it did not apply: %q", stderr)
	}
	os.Unsetenv("TETHER_SSH")

	// An APP or COMMAND given: no default app.
	for _, args := range [][]string{{"launch", "hpc", "static"}, {"launch", "hpc", "--", "python3", "-m", "http.server"}} {
		cli, kctx, _, err := parseCLI(t, args...)
		if err != nil {
			t.Fatal(err)
		}
		app, command := splitApp(kctx.Args, cli.Launch.positionals())
		if strings.Join(append([]string{app}, command...), " ") != strings.Join(args[2:], " ") && !(app == "" && strings.Join(command, " ") == "python3 -m http.server") {
			t.Errorf("%q: app %q command %q", args, app, command)
		}
	}

	// --no-profile: nothing of the file.
	cli, kctx, stderr, err = parseCLI(t, "launch", "hpc", "--no-profile")
	if err != nil || cli.Launch.Port != 0 || cli.Launch.App != "" || strings.Contains(flagValue(kctx, "slurm"), "-p") || stderr != "" {
		t.Errorf("--no-profile: %v %+v %q", err, cli.Launch, stderr)
	}
	if _, _, _, err := parseCLI(t, "launch", "hpc", "--no-profile", "--profile", "gpu"); err == nil || !strings.Contains(err.Error(), "contradict") {
		t.Errorf("--no-profile --profile: %v", err)
	}

	// slurm: "" makes batch jobs the default on a login node (sbatch's own defaults).
	withConfig(t, "hosts:\n  login:\n    slurm: \"\"\n")
	if _, kctx, stderr, err := parseCLI(t, "launch", "login"); err != nil {
		t.Errorf(`slurm: "": %v`, err)
	} else if v := flagValue(kctx, "slurm"); v != "{true }" || stderr != "tether: defaults for login: --slurm \"\"\n" {
		t.Errorf(`slurm: "": %s %q`, v, stderr)
	}
	withConfig(t, testConfig)

	// Another host gets the "*" block only.
	cli, _, stderr, _ = parseCLI(t, "launch", "elsewhere")
	if cli.Launch.ReadyTimeout != 10*time.Minute || cli.Launch.Port != 0 || stderr != "tether: defaults for elsewhere: --ready-timeout 10m\n" {
		t.Errorf("elsewhere: %+v %q", cli.Launch, stderr)
	}
}

// flagValue is a flag's value as %v prints it, found by its name, so these tests do not
// depend on how a flag's field is declared.
func flagValue(kctx *kong.Context, name string) string {
	for _, f := range kctx.Flags() {
		if f.Name == name {
			return fmt.Sprint(f.Target.Interface())
		}
	}
	return "(no --" + name + ")"
}

// slurmIs: --slurm holds exactly these sbatch options.
func slurmIs(kctx *kong.Context, want string) bool {
	v := flagValue(kctx, "slurm")
	return strings.Contains(v, " "+want+"}") || v == want
}

// TestProfileOtherCommands: attach takes the host's defaults for its flags; ls, stop,
// logs, apps and forward HOST take only how to reach the host; commands on this machine none.
func TestProfileOtherCommands(t *testing.T) {
	withConfig(t, testConfig)
	cli, _, stderr, err := parseCLI(t, "attach", "hpc")
	if err != nil || cli.Attach.Port != 8888 || cli.Attach.SSH != "openssh" || !cli.Attach.ViaNodeSSH || cli.Attach.NoBrowser {
		t.Errorf("attach: %v %+v", err, cli.Attach)
	}
	if stderr != "tether: defaults for hpc: --ssh openssh --port 8888 --via-node-ssh\n" {
		t.Errorf("attach stderr %q", stderr)
	}
	for _, args := range [][]string{{"ls", "hpc"}, {"stop", "hpc", "abc"}, {"stop", "hpc", "--all"}, {"logs", "hpc", "abc"}, {"apps", "hpc"}, {"forward", "hpc", "8787"}} {
		cli, _, stderr, err := parseCLI(t, args...)
		var ssh string
		switch args[0] {
		case "ls":
			ssh = cli.Ls.SSH
		case "stop":
			ssh = cli.Stop.SSH
		case "logs":
			ssh = cli.Logs.SSH
		case "apps":
			ssh = cli.Apps.SSH
		case "forward":
			ssh = cli.Forward.SSH
		}
		if err != nil || ssh != "openssh" || stderr != "" {
			t.Errorf("%q: %v ssh %q stderr %q", args, err, ssh, stderr)
		}
	}
	for _, args := range [][]string{{"ls"}, {"stop", "abc"}, {"logs", "abc"}, {"apps"}, {"serve"}} {
		if _, _, stderr, err := parseCLI(t, args...); err != nil || stderr != "" {
			t.Errorf("%q: %v %q", args, err, stderr)
		}
	}
}

// TestProfileErrors: a bad config file is one line naming FILE:LINE and the fix, exit
// 2, before anything is reached; so is a bad value for a flag's own parser.
func TestProfileErrors(t *testing.T) {
	tests := []struct{ text, want string }{
		{"hosts:\n  hpc:\n    partition: gpu\n", `config.yaml:3: unknown key "partition"`},
		{"hosts:\n  hpc:\n    port: eighty\n", `config.yaml:3: port: expected a valid 64 bit int but got "eighty"`},
		{"hosts:\n  hpc:\n    ssh: putty\n", `config.yaml:3: ssh: "putty": choose native, openssh or auto`},
		{"hosts:\n  hpc:\n    app: jupyterlab\n", `config.yaml:3: app: "jupyterlab" is not a preset`},
		{"profiles:\n  p:\n    ready-timeout: soon\n", `config.yaml:3: ready-timeout: expected duration but got "soon"`},
		{"profiles:\n  p:\n    slurm: [a, b]\n", "config.yaml:3: slurm: takes one value, not a list"},
		{"profiles:\n  p:\n    remote-binary: /no/such/file\n", "config.yaml:3: remote-binary: stat /no/such/file: no such file or directory"},
		{"profiles:\n  p:\n    token: abc\n", "config.yaml:3: token looks like a secret"},
		{"profiles:\n  p:\n    profile: other\n", `config.yaml:3: unknown key "profile"`},
		{"profiles:\n  p:\n    slurm-session: x\n", `config.yaml:3: unknown key "slurm-session"`}, // hidden flags are no keys
		{"profiles:\n  p:\n    help: true\n", `config.yaml:3: unknown key "help"`},
	}
	for _, tt := range tests {
		path := withConfig(t, tt.text)
		var out, errb bytes.Buffer
		code := run(context.Background(), []string{"launch", "-F", "none", "no-such-host.invalid"}, &out, &errb)
		msg := errb.String()
		if code != 2 || !strings.HasPrefix(msg, "tether: "+path+":") || !strings.Contains(msg, tt.want) || strings.Count(msg, "\n") != 1 {
			t.Errorf("%q: exit %d, %q; want %q", tt.text, code, msg, tt.want)
		}
	}
	// ls HOST refuses it as well (the file is read for every command that takes HOST).
	withConfig(t, "hosts: [1]\n")
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"ls", "-F", "none", "no-such-host.invalid"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "hosts: must be a mapping") {
		t.Errorf("ls: exit %d %q", code, errb.String())
	}
}

// A long value in an error is cut at a character, never inside one: the message shows
// whole characters and "…", not a byte escape (\xe2) of a character cut in two.
func TestProfileErrorClipsWholeCharacters(t *testing.T) {
	long := "a" + strings.Repeat("€", 100) // 1 + 300 bytes: byte 200 is inside a €
	withConfig(t, "hosts:\n  hpc:\n    app: "+long+"\n")
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"launch", "-F", "none", "no-such-host.invalid"}, &out, &errb)
	msg := errb.String()
	if code != 2 || !strings.Contains(msg, "is not a preset") || !strings.Contains(msg, "€…") || strings.Contains(msg, `\x`) {
		t.Errorf("exit %d, %q; want the value cut after a whole € and marked …", code, msg)
	}
}

// TestEveryLaunchFlagIsAKey: a profile may set each of launch's flags by its long
// name, with no code per flag: this walks launch's flags as kong built them (so a flag
// added later, --setup or --sge, is covered the day it exists), sets each from a
// profile, and checks it reached the flag's field as typing it would have.
func TestEveryLaunchFlagIsAKey(t *testing.T) {
	var cli CLI
	p, err := kong.New(&cli, kong.Vars{"version": "test"})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "tether-linux-amd64")
	os.WriteFile(file, []byte("x"), 0o600)
	flags := launchFlags(p.Model)
	if len(flags) < 15 {
		t.Fatalf("only %d launch flags found", len(flags))
	}
	var names []string
	for name := range flags {
		names = append(names, name)
	}
	sort.Strings(names)
	t.Logf("%d keys: %s", len(names), strings.Join(names, " "))
	for name, f := range flags {
		value := sampleValue(f, file)
		config := "profiles:\n  p:\n    " + name + ": " + quoteYAML(value) + "\n"
		withConfig(t, config)
		viaProfile, _, _, err := parseCLI(t, "launch", "h", "--profile", "p")
		if err != nil {
			t.Errorf("--%s from a profile: %v", name, err)
			continue
		}
		typed, _, _, err := parseCLI(t, "launch", "h", "--no-profile", "--"+name+"="+value)
		if f.IsBool() {
			typed, _, _, err = parseCLI(t, "launch", "h", "--no-profile", "--"+name)
		}
		if name == "slurm" {
			typed, _, _, err = parseCLI(t, "launch", "h", "--no-profile", "--slurm", value)
		}
		if err != nil {
			t.Errorf("--%s typed: %v", name, err)
			continue
		}
		viaProfile.Launch.state, typed.Launch.state = nil, nil
		viaProfile.Launch.Profile, viaProfile.Launch.NoProfile, typed.Launch.NoProfile = "", false, false
		if !reflect.DeepEqual(viaProfile.Launch, typed.Launch) {
			t.Errorf("--%s: from a profile %+v\ntyped %+v", name, viaProfile.Launch, typed.Launch)
		}
	}
}

// sampleValue is a good value for f, by its type.
func sampleValue(f *kong.Flag, file string) string {
	switch {
	case f.Name == "ssh":
		return "openssh"
	case f.Tag.Type == "existingfile" || f.Tag.Type == "path":
		return file
	case f.IsBool():
		return "true"
	case f.Target.Type() == reflect.TypeOf(time.Duration(0)):
		return "7m"
	case f.Target.Kind() == reflect.Int:
		return "4321"
	case f.Enum != "":
		return strings.Split(f.Enum, ",")[0]
	}
	return "-p x"
}

func quoteYAML(s string) string { return `"` + s + `"` }

// TestSiteProfiles: a site profile is found when the user has none of that name,
// applied over the host's defaults (not over flags given), may not touch the laptop's
// flags, and a name found nowhere lists what there is.
func TestSiteProfiles(t *testing.T) {
	withConfig(t, strings.Replace(testConfig, `    app-header: ["A: 1", "B: 2"]`+"\n", "", 1))
	site := launcher.SiteProfiles{Dir: "/etc/tether/profiles.d", Files: []launcher.SiteFile{
		{Path: "/etc/tether/profiles.d/lab.yaml", Data: []byte("profiles:\n  small:\n    slurm: \"-p small\"\n    name: site-small\n    app: static\n  gpu:\n    slurm: \"-p site-gpu\"\n")},
		{Path: "/etc/tether/profiles.d/evil.yaml", Data: []byte("profiles:\n  evil:\n    remote-binary: /home/me/.ssh/id_ed25519\n")},
		{Path: "/etc/tether/profiles.d/port.yaml", Data: []byte("profiles:\n  port:\n    port: 80\n")},
		{Path: "/etc/tether/profiles.d/dup.yaml", Data: []byte("profiles:\n  small:\n    name: other\n")},
		{Path: "/etc/tether/profiles.d/esc.yaml", Data: []byte("profiles:\n  esc:\n    name: \"\\e]0;pwned\\a\\u202e\"\n")},
	}, Ignored: []string{"/etc/tether/profiles.d/open.yaml: writable by others (-rw-rw-rw-)"}}

	cli, kctx, stderr, err := parseCLI(t, "launch", "hpc", "--profile", "small", "--ready-timeout", "1m")
	if err != nil {
		t.Fatal(err)
	}
	if stderr != "" {
		t.Errorf("said something before the site profiles were read: %q", stderr)
	}
	env := &Env{Version: "test", Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}}
	cb := cli.Launch.siteProfile(env, kctx)
	if cb == nil {
		t.Fatal("no site profile callback")
	}
	o, line, err := cb(site)
	if err != nil {
		t.Fatal(err)
	}
	if o.Name != "site-small" || !slurmIs(kctx, "-p small") || o.App != "static" || o.Port != 8888 || o.SSHMode != "openssh" || o.ReadyTimeout != time.Minute {
		t.Errorf("options: %+v", o)
	}
	// The app came from the host's defaults before; the site's is a preset too, and
	// the site profile wins over the defaults.
	if cli.Launch.App != "static" {
		t.Errorf("app %q", cli.Launch.App)
	}
	if want := `site profile small: static --slurm "-p small" --name site-small; defaults for hpc: --ssh openssh --port 8888 --via-node-ssh`; line != want {
		t.Errorf("line %q\nwant %q", line, want)
	}

	// The user's own gpu wins: the site is not even asked.
	cli, kctx, _, _ = parseCLI(t, "launch", "hpc", "--profile", "gpu")
	if cli.Launch.siteProfile(env, kctx) != nil {
		t.Error("a site lookup for a profile the user has")
	}

	for _, tt := range []struct{ name, want string }{
		{"evil", `no profile "evil" for hpc`},
		{"port", `no profile "port" for hpc`},
		{"nope", `no profile "nope" for hpc: not in ` + profileDisplay(t) + ` (big, gpu), nor among hpc's site profiles (esc, gpu, small)`},
	} {
		cli, kctx, _, _ := parseCLI(t, "launch", "hpc", "--profile", tt.name)
		_, _, err := cli.Launch.siteProfile(env, kctx)(site)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v; want %q", tt.name, err, tt.want)
		}
	}
	_, problems := parseSite(site, (&profileState{launch: launchFlags(kctx.Model)}).checker(true))
	all := strings.Join(problems, "\n")
	for _, want := range []string{
		"open.yaml: writable by others",
		"/etc/tether/profiles.d/evil.yaml:3: remote-binary: a site profile cannot set it: --remote-binary acts on your laptop",
		"/etc/tether/profiles.d/port.yaml:3: port: a site profile cannot set it",
		"/etc/tether/profiles.d/dup.yaml:2: profile small is also in /etc/tether/profiles.d/lab.yaml:2; the first is used",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("problems lack %q:\n%s", want, all)
		}
	}

	// What a site profile holds is shown escaped, never as terminal controls.
	cli, kctx, _, _ = parseCLI(t, "launch", "hpc", "--profile", "esc")
	_, line, err = cli.Launch.siteProfile(env, kctx)(site)
	if err != nil || strings.ContainsAny(line, "\x1b\a\u202e") || !strings.Contains(line, `--name "\x1b]0;pwned\a\u202e"`) {
		t.Errorf("line %q %v", line, err)
	}

	// No site directory.
	cli, kctx, _, _ = parseCLI(t, "launch", "hpc", "--profile", "nope")
	if _, _, err := cli.Launch.siteProfile(env, kctx)(launcher.SiteProfiles{}); err == nil || !strings.Contains(err.Error(), "and hpc has no site profiles") {
		t.Errorf("no site dir: %v", err)
	}
}

func profileDisplay(t *testing.T) string {
	return filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "tether", "config.yaml")
}

// TestAppsListsProfiles: apps HOST shows the host's defaults, the user's profiles and
// the site's, the user's winning over a site profile of the same name.
func TestAppsListsProfiles(t *testing.T) {
	withConfig(t, testConfig)
	cli, _, _, err := parseCLI(t, "apps", "hpc")
	if err != nil || cli.Apps.state == nil {
		t.Fatalf("%v %+v", err, cli.Apps)
	}
	var out, errb bytes.Buffer
	site := launcher.SiteProfiles{Dir: "/s", Files: []launcher.SiteFile{{Path: "/s/a.yaml", Data: []byte("profiles:\n  gpu:\n    slurm: \"-p a100\"\n  small:\n    name: s\n")}},
		Ignored: []string{"/s/b.yaml: owned by uid 5, not root"}}
	if err := cli.Apps.profilesLister(&Env{Stderr: &errb})(&out, site); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{
		"PROFILE     FROM",
		"(defaults)  " + profileDisplay(t) + ":3",
		"big         " + profileDisplay(t) + ":10",
		"gpu         " + profileDisplay(t) + ":15",
		`gpu         site /s/a.yaml:2 (yours wins)`,
		`small       site /s/a.yaml:4`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("apps lacks %q:\n%s", want, text)
		}
	}
	if errb.String() != "tether: site profiles on hpc: ignored /s/b.yaml: owned by uid 5, not root\n" {
		t.Errorf("stderr %q", errb.String())
	}
	// --json keeps its array of apps: no listing.
	cli, _, _, _ = parseCLI(t, "apps", "hpc", "--json")
	if cli.Apps.profilesLister(&Env{}) != nil {
		t.Error("apps --json lists profiles")
	}
}

// TestReadmeProfileExamples: the README's example config and site file parse, and the
// line it shows is what tether prints for them.
func TestReadmeProfileExamples(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "### Host profiles")
	if !ok {
		t.Fatal("README has no Host profiles section")
	}
	var blocks []string
	for rest := section; ; {
		_, after, ok := strings.Cut(rest, "```yaml\n")
		if !ok {
			break
		}
		block, tail, _ := strings.Cut(after, "```")
		blocks, rest = append(blocks, block), tail
	}
	if len(blocks) != 2 {
		t.Fatalf("%d yaml blocks in the section; want the config and the site file", len(blocks))
	}
	withConfig(t, blocks[0])
	_, kctx, stderr, err := parseCLI(t, "launch", "hpc", "--profile", "gpu")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(section, "    $ tether launch hpc --profile gpu\n    "+stderr) {
		t.Errorf("README shows another line than %q", stderr)
	}
	site := launcher.SiteProfiles{Dir: "/etc/tether/profiles.d", Files: []launcher.SiteFile{{Path: "/etc/tether/profiles.d/cluster.yaml", Data: []byte(blocks[1])}}}
	ps, problems := parseSite(site, (&profileState{launch: launchFlags(kctx.Model)}).checker(true))
	if len(ps) != 1 || len(problems) != 0 {
		t.Errorf("the site example: %v %v", ps, problems)
	}
}
