//go:build unix

package openssh

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/e2e"
)

// TestHostProfilesE2E: host profiles through a real sshd, with no flag but --profile
// naming the host's transport, ssh_config, local port or app. The config file gives the
// host's defaults (ssh: openssh, ssh-config, port, app: static) and a profile of the
// user's; the "remote" has site profiles in a directory the test makes (pointed at by
// TETHER_SITE_PROFILES_DIR in sshd's SetEnv, so /etc is left alone), one of them
// shadowed by the user's, one writable by others and one that tries to set a laptop
// flag. apps HOST lists them; a launch with the user's profile and one with the site's
// reach the remote with the applied values (the session's name in the record the
// remote wrote, the local port, one login through tether's ssh master for everything);
// a profile found nowhere fails before anything starts; the config file is untouched.
func TestHostProfilesE2E(t *testing.T) {
	began := time.Now()
	if os.Geteuid() != 0 {
		msg := "site profiles must be root's: run as root (CI does)"
		if e2e.Required() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	site := t.TempDir() // root's, 0700, below root's 0700 and the sticky /tmp
	s := e2e.StartSSHD(t, e2e.SSHDOptions{Env: map[string]string{"TETHER_SITE_PROFILES_DIR": site}})
	e2e.StopAllOnCleanup(t, s)
	env, dir := e2e.OpenSSHEnv(t, s)

	cfgHome := t.TempDir()
	port := e2e.FreePort(t)
	config := fmt.Sprintf("hosts:\n  %s:\n    ssh: openssh\n    ssh-config: %s\n    port: %d\n    app: static\nprofiles:\n  mine:\n    name: from-my-profile\n",
		s.Alias, s.Config, port)
	cfgPath := filepath.Join(cfgHome, "tether", "config.yaml")
	os.MkdirAll(filepath.Dir(cfgPath), 0o700)
	e2e.WriteFile(t, cfgPath, config, 0o600)
	cfgBefore, _ := os.Stat(cfgPath)
	env = append(env, "XDG_CONFIG_HOME="+cfgHome)

	e2e.WriteFile(t, filepath.Join(site, "lab.yaml"), "profiles:\n  small:\n    name: from-site\n    ready-timeout: 2m\n  mine:\n    name: not-used\n", 0o644)
	e2e.WriteFile(t, filepath.Join(site, "open.yaml"), "profiles:\n  open:\n    name: planted\n", 0o644)
	os.Chmod(filepath.Join(site, "open.yaml"), 0o666)
	e2e.WriteFile(t, filepath.Join(site, "laptop.yaml"), "profiles:\n  grab:\n    remote-binary: /etc/hostname\n", 0o644)

	// apps HOST: the presets and the profiles, over one login, nothing installed.
	start := time.Now()
	out, errOut, code := e2e.RunTetherEnv(t, env, "apps", s.Alias)
	t.Logf("apps HOST: %s:\n%s%s", e2e.FmtDur(time.Since(start)), out, errOut)
	if code != 0 {
		t.Fatalf("apps: exit %d: %s", code, errOut)
	}
	e2e.MustContain(t, "apps HOST", out, "static ", "PROFILE", "(defaults)", cfgPath+":3", "static --ssh openssh --ssh-config "+s.Config+" --port "+fmt.Sprint(port),
		"mine ", cfgPath+":8", "--name from-my-profile",
		"small ", "site "+site+"/lab.yaml:2", "--name from-site --ready-timeout 2m", "site "+site+"/lab.yaml:5 (yours wins)")
	e2e.MustContain(t, "apps HOST stderr", errOut, site+"/open.yaml: writable by others (-rw-rw-rw-)",
		site+"/laptop.yaml:3: remote-binary: a site profile cannot set it: --remote-binary acts on your laptop")
	if strings.Contains(out, "planted") || strings.Contains(out, "grab") {
		t.Errorf("apps listed a profile it should have left out:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(s.Home, ".cache", "tether")); !os.IsNotExist(err) {
		t.Errorf("apps HOST installed something on the remote: %v", err)
	}
	if n := logins(s); n != 1 || len(ownMasters(dir)) != 1 {
		t.Errorf("apps through the host's ssh: openssh: %d logins, masters %v; want 1 and one", n, ownMasters(dir))
	}

	// The user's profile over the host's defaults.
	start = time.Now()
	l := e2e.StartLauncher(t, []string{"launch", s.Alias, "--profile", "mine", "--json", "--no-browser"}, true, env...)
	t.Logf("launch --profile mine: URL ready after %s", e2e.FmtDur(time.Since(start)))
	if l.Line.LocalPort != port || l.Line.Session.Name != "from-my-profile" {
		t.Errorf("launch --profile mine: local port %d name %q; want %d and from-my-profile", l.Line.LocalPort, l.Line.Session.Name, port)
	}
	e2e.MustContain(t, "launcher stderr", l.Stderr.String(),
		fmt.Sprintf("tether: profile mine: --name from-my-profile; defaults for %s: static --ssh openssh --ssh-config %s --port %d\n", s.Alias, s.Config, port),
		"connecting to "+s.Alias+" (OpenSSH)")
	base := fmt.Sprintf("http://127.0.0.1:%d/", port)
	if status, body, _ := e2e.Fetch(t, base, "Authorization", "token "+l.Line.Session.Token); status != 200 || !strings.Contains(body, "<a ") {
		t.Errorf("GET %s: %d %.200q", base, status, body)
	}
	if recs := sessions(t, env, s); len(recs) != 1 || recs[0]["name"] != "from-my-profile" || recs[0]["app"] != "static" {
		t.Errorf("the remote's sessions: %v", recs)
	}
	l.Interrupt(t)

	// A site profile: the flags given (--port) win over the host's defaults.
	start = time.Now()
	other := e2e.FreePort(t)
	l2 := e2e.StartLauncher(t, []string{"launch", s.Alias, "--profile", "small", "--port", fmt.Sprint(other), "--json", "--no-browser"}, true, env...)
	t.Logf("launch --profile small (site): URL ready after %s", e2e.FmtDur(time.Since(start)))
	if l2.Line.LocalPort != other || l2.Line.Session.Name != "from-site" {
		t.Errorf("launch --profile small: local port %d name %q; want %d and from-site", l2.Line.LocalPort, l2.Line.Session.Name, other)
	}
	e2e.MustContain(t, "launcher stderr", l2.Stderr.String(),
		fmt.Sprintf("tether: site profile small: --name from-site --ready-timeout 2m; defaults for %s: static --ssh openssh --ssh-config %s\n", s.Alias, s.Config))
	base = fmt.Sprintf("http://127.0.0.1:%d/", other)
	if status, _, _ := e2e.Fetch(t, base, "Authorization", "token "+l2.Line.Session.Token); status != 200 {
		t.Errorf("GET %s: %d", base, status)
	}
	l2.Interrupt(t)

	// ls HOST takes the transport and ssh_config from the host's defaults too.
	out, errOut, code = e2e.RunTetherEnv(t, env, "ls", s.Alias)
	if code != 0 || !strings.Contains(out, l.Line.Session.ID) || !strings.Contains(out, l2.Line.Session.ID) {
		t.Errorf("ls HOST: exit %d %q %q", code, out, errOut)
	}

	// A profile found nowhere (the one that would set a laptop flag included): one
	// line, exit 2, nothing started.
	for _, name := range []string{"grab", "nope"} {
		_, errOut, code = e2e.RunTetherEnv(t, env, "launch", s.Alias, "--profile", name, "--no-browser")
		if code != 2 || !strings.Contains(errOut, fmt.Sprintf("tether: no profile %q for %s: not in %s (mine), nor among %s's site profiles (mine, small)", name, s.Alias, cfgPath, s.Alias)) ||
			!strings.Contains(errOut, "--remote-binary acts on your laptop") {
			t.Errorf("--profile %s: exit %d %q", name, code, errOut)
		}
	}
	if recs := sessions(t, env, s); len(recs) != 2 {
		t.Errorf("sessions after the failed launches: %v; want the two", recs)
	}
	if n := logins(s); n != 1 {
		t.Errorf("%d logins for apps, two launches, ls and two failed launches; want 1 (tether's own ssh master)", n)
	}
	if b, _ := os.ReadFile(cfgPath); string(b) != config {
		t.Errorf("the config file changed: %q", b)
	}
	if fi, _ := os.Stat(cfgPath); !fi.ModTime().Equal(cfgBefore.ModTime()) || fi.Mode() != cfgBefore.Mode() {
		t.Errorf("the config file was written")
	}
	t.Logf("host profiles test: %s in all", e2e.FmtDur(time.Since(began)))
}

// sessions is `tether ls HOST --json` with env (and so the host's defaults).
func sessions(t *testing.T, env []string, s *e2e.SSHD) []map[string]any {
	t.Helper()
	out, errOut, code := e2e.RunTetherEnv(t, env, "ls", s.Alias, "--json")
	var list []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil {
		t.Fatalf("tether ls %s --json: exit %d: %q %s", s.Alias, code, out, errOut)
	}
	return list
}
