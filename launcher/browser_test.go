package launcher

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Without a graphical display xdg-open is not even tried; $BROWSER still is.
func TestOpenersWithoutDisplay(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	const u = "http://127.0.0.1:1/?code=x"
	for _, c := range []struct {
		name string
		env  func(string) string
		goos string
		want [][]string
	}{
		{"linux, no display", env(), "linux", nil},
		{"linux, X11", env("DISPLAY", ":0"), "linux", [][]string{{"xdg-open", u}}},
		{"linux, Wayland", env("WAYLAND_DISPLAY", "wayland-0"), "linux", [][]string{{"xdg-open", u}}},
		{"freebsd, no display", env(), "freebsd", nil},
		{"linux, no display, BROWSER", env("BROWSER", "w3m"), "linux", [][]string{{"w3m", u}}},
		{"darwin needs no DISPLAY", env(), "darwin", [][]string{{"open", u}}},
		{"darwin never tries xdg-open", env("DISPLAY", ":0"), "darwin", [][]string{{"open", u}}},
		{"darwin, BROWSER first", env("BROWSER", "firefox %s"), "darwin", [][]string{{"firefox", u}, {"open", u}}},
		{"windows", env("DISPLAY", ":0"), "windows", [][]string{{"rundll32", "url.dll,FileProtocolHandler", u}}},
		{"TETHER_BROWSER wins", env("TETHER_BROWSER", "cap -x", "DISPLAY", ":0"), "linux", [][]string{{"cap", "-x", u}}},
	} {
		if got := openers(u, c.env, c.goos); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %q; want %q", c.name, got, c.want)
		}
	}
}

// An opener that exits non-zero is a failure, told without the target (it holds the
// login code); one that exits 0, or keeps running like a browser, is a success.
func TestOpenURLOpenerFails(t *testing.T) {
	old := openerCheck
	openerCheck = 500 * time.Millisecond
	defer func() { openerCheck = old }()
	dir := t.TempDir()
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o700); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Setenv("BROWSER", "")
	t.Setenv("DISPLAY", "")
	t.Setenv("WAYLAND_DISPLAY", "")
	const target = "http://127.0.0.1:1/?code=tc1.secret-code"
	for _, c := range []struct {
		name, body, wantErr string
	}{
		{"fails", "echo no method available >&2; exit 3", "fails exited with status 3"},
		{"ok", "exit 0", ""},
		{"stays", "echo $$ > " + filepath.Join(dir, "pid") + "; exec sleep 30", ""},
	} {
		t.Setenv("TETHER_BROWSER", script(c.name, c.body))
		err := OpenURL(target)
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("%s: %v; want success", c.name, err)
		case c.wantErr != "" && (err == nil || err.Error() != c.wantErr):
			t.Errorf("%s: %v; want %q", c.name, err, c.wantErr)
		}
		if err != nil && strings.Contains(err.Error(), "secret-code") {
			t.Errorf("%s: the error holds the target: %v", c.name, err)
		}
	}
	// The opener that stayed (a browser) is ours to stop.
	if b, err := os.ReadFile(filepath.Join(dir, "pid")); err != nil {
		t.Error(err)
	} else if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
		if p, err := os.FindProcess(pid); err == nil {
			p.Kill()
		}
	}
	t.Setenv("TETHER_BROWSER", "")
	if err := OpenURL(target); err == nil || !strings.Contains(err.Error(), "no graphical display") {
		t.Errorf("no display, no BROWSER: %v; want a no-display error", err)
	}
}

// When the browser cannot be opened the user gets the URL with the token on stdout and
// a line on stderr saying why; stderr never holds the token.
func TestLaunchBrowserFailsPrintsURL(t *testing.T) {
	t.Setenv("TETHER_BROWSER", "")
	t.Setenv("BROWSER", "")
	t.Setenv("DISPLAY", "")
	t.Setenv("WAYLAND_DISPLAY", "")
	for _, c := range []struct {
		name string
		open func(string) error
		why  string
	}{
		{"no display", OpenURL, "no graphical display"},
		{"opener exits non-zero", func(string) error { return fmt.Errorf("xdg-open exited with status 3") }, "xdg-open exited with status 3"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeRemote(t)
			f.install()
			fs := startFakeServer(t, false)
			f.write("serve.out", recordLine(t, fs.rec)+"\n")
			r := startLaunch(t, f, LaunchOptions{ForwardOptions: ForwardOptions{Open: c.open}})
			waitFor(t, "the URL on stdout", func() bool { return strings.HasSuffix(r.stdout.String(), "\n") })
			url := strings.TrimSpace(r.stdout.String())
			if !strings.HasPrefix(url, "http://127.0.0.1:") || !strings.HasSuffix(url, "/?token="+fs.rec.Token) {
				t.Errorf("stdout %q; want the local URL with the token", url)
			}
			waitFor(t, "the ready line", func() bool { return strings.Contains(r.stderr.String(), "ready") })
			e := r.stderr.String()
			if !strings.Contains(e, "could not open a browser ("+c.why) || !strings.Contains(e, "open this URL yourself") {
				t.Errorf("stderr lacks why and what to do:\n%s", e)
			}
			if strings.Contains(e, fs.rec.Token) {
				t.Errorf("stderr holds the token:\n%s", e)
			}
		})
	}
}
