package launcher

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// asOwner makes the site checks expect the test's own uid where they expect root, for
// the length of the test.
func asOwner(t *testing.T) {
	t.Helper()
	old := siteOwner
	siteOwner = strconv.Itoa(os.Getuid())
	t.Cleanup(func() { siteOwner = old })
}

// runSite runs the site script with /bin/sh, the site directory set to dir (or unset),
// and parses its output.
func runSite(t *testing.T, dir string) (SiteProfiles, string, error) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", siteCommand())
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	if dir != "" {
		cmd.Env = append(cmd.Env, SiteDirEnv+"="+dir)
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("running the site script: %v", err)
	}
	sp, err := readSite(bufio.NewReader(strings.NewReader(string(out))))
	return sp, string(out), err
}

// TestSiteScript: the real script over a directory the test makes: plain files are
// read whole (however their content looks), the others are listed as ignored and why,
// and the script holds no backslash or newline (any login shell passes it on).
func TestSiteScript(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("runs /bin/sh")
	}
	if strings.ContainsAny(siteScript, "\\\n") {
		t.Errorf("the script holds a backslash or newline: %s", siteScript)
	}
	asOwner(t)
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
	}
	tricky := "profiles:\n  a:\n    name: x\n" + siteTag + "data 3\n" + siteEndTag + "\n" + siteDoneTag + "\nno newline at the end"
	write("a.yaml", tricky, 0o644)
	write("b.yml", "profiles: {}\n", 0o600)
	write("empty.yaml", "", 0o644)
	write("open.yaml", "profiles: {}\n", 0o664)
	write("big.yaml", strings.Repeat("#", maxSiteFile+1), 0o644)
	write("notes.txt", "not a profile", 0o644)
	write("sp ace.yaml", "profiles: {}\n", 0o644)
	os.Symlink(filepath.Join(dir, "b.yml"), filepath.Join(dir, "link.yaml"))
	os.Mkdir(filepath.Join(dir, "sub.yaml"), 0o700)

	sp, out, err := runSite(t, dir)
	if err != nil {
		t.Fatalf("%v in %q", err, out)
	}
	real, _ := filepath.EvalSymlinks(dir)
	if sp.Dir != real {
		t.Errorf("dir %q; want %q", sp.Dir, real)
	}
	var got []string
	for _, f := range sp.Files {
		got = append(got, filepath.Base(f.Path))
	}
	if strings.Join(got, " ") != "a.yaml empty.yaml b.yml" {
		t.Errorf("files %v; want a.yaml empty.yaml b.yml (output %q)", got, out)
	}
	if len(sp.Files) == 3 && (string(sp.Files[0].Data) != tricky || len(sp.Files[1].Data) != 0) {
		t.Errorf("a.yaml read as %q", sp.Files[0].Data)
	}
	ignored := strings.Join(sp.Ignored, "\n")
	for _, want := range []string{
		"open.yaml: writable by others (-rw-rw-r--)",
		"big.yaml: larger than 64 KiB",
		"link.yaml: not a regular file (symbolic links are not followed)",
		"sub.yaml: not a regular file",
		"a file whose name is not plain",
	} {
		if !strings.Contains(ignored, want) {
			t.Errorf("ignored lacks %q:\n%s", want, ignored)
		}
	}
	if strings.Contains(ignored, "notes.txt") {
		t.Errorf("a file that is not *.yaml was considered: %s", ignored)
	}

	// A directory someone else may write: nothing of it is used.
	os.Chmod(dir, 0o777)
	sp, out, err = runSite(t, dir)
	os.Chmod(dir, 0o700)
	if err != nil || len(sp.Files) != 0 || len(sp.Ignored) == 0 || !strings.Contains(sp.Ignored[0], "the directory is writable by others (drwxrwxrwx); its profiles are ignored") {
		t.Errorf("a world-writable directory: %v %+v (%q)", err, sp, out)
	}
	// No directory, and a relative one: no site profiles, no error.
	for _, d := range []string{filepath.Join(dir, "absent"), "relative/dir"} {
		if sp, out, err := runSite(t, d); err != nil || sp.Dir != "" || len(sp.Files) != 0 || len(sp.Ignored) != 0 {
			t.Errorf("%s: %v %+v (%q)", d, err, sp, out)
		}
	}
}

// TestReadSite: what a remote prints is checked, not believed.
func TestReadSite(t *testing.T) {
	asOwner(t)
	me := siteOwner
	other := "4242"
	if me == other {
		other = "4243"
	}
	dirs := fmt.Sprintf("%sdir drwxr-xr-x %s /etc/tether/profiles.d\n%sdir drwxr-xr-x 0 /etc/tether\n%sdir drwxr-xr-x 0 /etc\n%sdir drwxr-xr-x 0 /\n", siteTag, me, siteTag, siteTag, siteTag)
	file := func(name, mode, uid, content string) string {
		s := fmt.Sprintf("%sfile %s %s %d %s\n", siteTag, mode, uid, len(content), name)
		if mode[0] == '-' {
			s += fmt.Sprintf("%sdata %d\n%s\n%s\n", siteTag, len(content), content, siteEndTag)
		}
		return s
	}
	done := siteDoneTag + "\n"
	tests := []struct {
		name, out string
		files     string // base names read
		ignored   string // in Ignored
		err       string
	}{
		{"chatty shell", "Welcome to the cluster!\n" + siteTag + "bogus\n" + dirs + file("a.yaml", "-rw-r--r--", me, "x: 1") + done, "a.yaml", "", ""},
		{"none", siteTag + "none /etc/tether/profiles.d\n" + done, "", "", ""},
		{"someone else's file", dirs + file("a.yaml", "-rw-r--r--", other, "x") + file("b.yaml", "-rw-r--r--", me, "y") + done, "b.yaml", "a.yaml: owned by uid " + other + ", not root", ""},
		{"others may write", dirs + file("a.yaml", "-rw-rw-rw-", me, "x") + done, "", "a.yaml: writable by others (-rw-rw-rw-)", ""},
		{"escape in mode", dirs + file("a.yaml", "-rw-rw-\x1b]0;x", me, "x") + done, "", "a.yaml: writable by others (-rw-rw-)", ""},
		{"someone else's dir", strings.Replace(dirs, "drwxr-xr-x "+me, "drwxr-xr-x "+other, 1) + file("a.yaml", "-rw-r--r--", me, "x") + done, "", "the directory is owned by uid " + other, ""},
		{"open parent", strings.Replace(dirs, "drwxr-xr-x 0 /etc/tether\n", "drwxrwxrwx 0 /etc/tether\n", 1) + file("a.yaml", "-rw-r--r--", me, "x") + done, "", "/etc/tether, above it, is writable by others", ""},
		{"sticky parent", strings.Replace(dirs, "drwxr-xr-x 0 /etc\n", "drwxrwxrwt 0 /etc\n", 1) + file("a.yaml", "-rw-r--r--", me, "x") + done, "a.yaml", "", ""},
		{"parent of another user", strings.Replace(dirs, "drwxr-xr-x 0 /etc\n", "drwxr-xr-x "+other+" /etc\n", 1) + file("a.yaml", "-rw-r--r--", me, "x") + done, "", "/etc, above it, is owned by uid", ""},
		{"changed while read", dirs + siteTag + "file -rw-r--r-- " + me + " 3 a.yaml\n" + siteTag + "data 3\nabcdef\n" + siteEndTag + "\n" + done, "", "", "a.yaml changed while it was read"},
		{"cut short", dirs + siteTag + "file -rw-r--r-- " + me + " 9 a.yaml\n" + siteTag + "data 9\nabc", "", "", "cut short"},
		{"no end", dirs, "", "", "cut short"},
		{"bad name", dirs + siteTag + "file -rw-r--r-- " + me + " 1 ../x.yaml\n" + done, "", "", "malformed"},
		{"relative dir", siteTag + "dir drwxr-xr-x 0 etc\n" + done, "", "", "malformed"},
		{"data too big", dirs + siteTag + "file -rw-r--r-- " + me + " 1 a.yaml\n" + siteTag + "data 99999999\n" + done, "", "", "malformed"},
		{"data without file", dirs + siteTag + "data 1\nx\n" + siteEndTag + "\n" + done, "", "", "malformed"},
		{"too many", dirs + strings.Repeat(siteTag+"file lrwxrwxrwx 0 0 a.yaml\n", maxSiteFiles+1) + done, "", "", "more than 100"},
	}
	for _, tt := range tests {
		sp, err := readSite(bufio.NewReader(strings.NewReader(tt.out)))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: got %v; want %q", tt.name, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		var got []string
		for _, f := range sp.Files {
			got = append(got, filepath.Base(f.Path))
		}
		ign := strings.Join(sp.Ignored, "\n")
		if strings.Join(got, " ") != tt.files || tt.ignored == "" && ign != "" || !strings.Contains(ign, tt.ignored) {
			t.Errorf("%s: files %v ignored %q; want %q and %q", tt.name, got, ign, tt.files, tt.ignored)
		}
		if strings.ContainsRune(ign, '\x1b') {
			t.Errorf("%s: an escape reached the message: %q", tt.name, ign)
		}
	}
}

// TestLaunchSiteProfile: a launch whose --profile names a site profile reads the site
// directory over the same connection, then starts serve with the options the callback
// returned, but keeps the laptop's own (the local port, the transport) as they were.
func TestLaunchSiteProfile(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the fake remote runs /bin/sh")
	}
	asOwner(t)
	f := newFakeRemote(t)
	site := t.TempDir()
	if err := os.WriteFile(filepath.Join(site, "lab.yaml"), []byte("profiles:\n  small:\n    name: from-site\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.srv.Env = append(f.srv.Env, SiteDirEnv+"="+site)
	f.install()
	fs := startFakeServer(t, false)
	f.write("serve.out", recordLine(t, fs.rec)+"\n")
	var seen SiteProfiles
	o := LaunchOptions{ForwardOptions: ForwardOptions{JSON: true, Port: 0}, Command: []string{"app", "{port}"}}
	o.SiteProfile = func(sp SiteProfiles) (LaunchOptions, string, error) {
		seen = sp
		n := o
		n.Name = "from-site"
		n.ForwardOptions.NoBrowser = true // a laptop option: must not be taken
		n.Options.SSHMode = SSHOpenSSH    // nor this
		return n, "site profile small: --name from-site", nil
	}
	r := startLaunch(t, f, o)
	waitFor(t, "the JSON line", func() bool { return strings.HasSuffix(r.stdout.String(), "\n") })
	if len(seen.Files) != 1 || string(seen.Files[0].Data) != "profiles:\n  small:\n    name: from-site\n" {
		t.Errorf("the callback saw %+v", seen)
	}
	if c := f.calls(); !strings.Contains(c, "serve --detach --json --json-notes --cancel-on-eof --reuse --login-shell --name=from-site -- app {port}") {
		t.Errorf("remote calls: %q", c)
	}
	select {
	case <-r.opened: // the browser still opens: NoBrowser was not taken
	case <-r.done:
		t.Fatalf("launch ended: %v\n%s", r.wait(t), r.stderr.String())
	}
	if e := r.stderr.String(); !strings.Contains(e, "tether: site profile small: --name from-site") || strings.Contains(e, "OpenSSH") {
		t.Errorf("stderr:\n%s", e)
	}

	// A callback's error ends the launch before anything starts there.
	f2 := newFakeRemote(t)
	f2.install()
	o2 := LaunchOptions{Command: []string{"app"}}
	o2.SiteProfile = func(SiteProfiles) (LaunchOptions, string, error) {
		return LaunchOptions{}, "", usageError("no profile \"nope\"")
	}
	r2 := startLaunch(t, f2, o2)
	if err := r2.wait(t); err == nil || !strings.Contains(err.Error(), `no profile "nope"`) {
		t.Errorf("got %v", err)
	}
	if strings.Contains(f2.calls(), "serve") {
		t.Errorf("serve ran: %q", f2.calls())
	}
}
