//go:build unix

package remote

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNormalizeTeam: a team server's apps and access file are judged before anything
// starts, each app as a single-app serve would judge it, under {base_url}NAME/.
func TestNormalizeTeam(t *testing.T) {
	t.Setenv("TETHER_STATE_DIR", t.TempDir())
	dir := t.TempDir()
	yml := filepath.Join(dir, "team.yml")
	must(t, os.WriteFile(yml, []byte("access_control: keys\nkeys:\n  k:\n    hash: $argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g\n    apps: [site, typo]\n"), 0o600))
	o := ServeOptions{BaseURL: "/lab/", Apps: []string{"site=static:" + dir, "dash=python3 -m http.server {port}"}, Access: yml}
	if err := o.normalize(); err != nil {
		t.Fatalf("normalize: %v", err)
	}
	if len(o.team.apps) != 2 || o.team.apps[0].o.staticDir != dir || o.team.apps[0].o.BaseURL != "/lab/site/" ||
		o.team.apps[1].o.App == nil || strings.Join(o.team.apps[1].o.App.Command, " ") != "python3 -m http.server {port}" || o.team.apps[1].o.BaseURL != "/lab/dash/" {
		t.Errorf("apps: %+v %+v", o.team.apps[0].o, o.team.apps[1].o)
	}
	if len(o.team.notes) != 1 || !strings.Contains(o.team.notes[0].String(), `grants app "typo", which this server does not serve (it serves site, dash)`) {
		t.Errorf("notes: %v", o.team.notes)
	}
	bad := []struct {
		o   ServeOptions
		env string
		why string
	}{
		{ServeOptions{Apps: []string{"a=builtin", "b=static:/"}}, "", "built-in page is not served on a team server"},
		{ServeOptions{Apps: []string{"a=static:/nonexistent/x"}, Access: yml}, "", ""}, // judged when served
		{ServeOptions{Apps: []string{"a=static:/"}, Access: filepath.Join(dir, "missing.yml")}, "", "missing.yml: cannot read it"},
		{ServeOptions{Apps: []string{"a=static:/", "b=static:/"}}, "1", "TETHER_NO_AUTH=1 and a team server"},
	}
	for _, tt := range bad {
		t.Setenv("TETHER_NO_AUTH", tt.env)
		err := tt.o.normalize()
		if tt.why == "" {
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.why) {
			t.Errorf("normalize(%v): %v; want an error about %q", tt.o.Apps, err, tt.why)
		}
	}
}

// TestPrefixWriter: each app's output goes into the shared app log line by line, with
// its name in front.
func TestPrefixWriter(t *testing.T) {
	var b bytes.Buffer
	w := &prefixWriter{w: &b, prefix: "[nb] "}
	w.Write([]byte("one\ntw"))
	w.Write([]byte("o\nthree"))
	w.Write([]byte("\n"))
	if got := b.String(); got != "[nb] one\n[nb] two\n[nb] three\n" {
		t.Errorf("got %q", got)
	}
}
