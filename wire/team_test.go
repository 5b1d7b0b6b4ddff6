package wire

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseTeamApp(t *testing.T) {
	good := []struct {
		in   string
		want TeamApp
	}{
		{"nb=jupyter", TeamApp{Name: "nb", Preset: "jupyter"}},
		{"site=static:~/www", TeamApp{Name: "site", Preset: "static", Arg: "~/www"}},
		{"site=static:/data/a b", TeamApp{Name: "site", Preset: "static", Arg: "/data/a b"}},
		{"dash=python3 -m http.server {port}", TeamApp{Name: "dash", Command: []string{"python3", "-m", "http.server", "{port}"}}},
		{"x.1=sh -c 'echo a=b; sleep 9'", TeamApp{Name: "x.1", Command: []string{"sh", "-c", "echo a=b; sleep 9"}}},
		// A preset's name with more words is a command (the jupyter executable).
		{"j=jupyter lab --port {port}", TeamApp{Name: "j", Command: []string{"jupyter", "lab", "--port", "{port}"}}},
	}
	for _, tt := range good {
		got, err := ParseTeamApp(tt.in)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseTeamApp(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	bad := []struct{ in, why string }{
		{"=jupyter", "not valid"},
		{"-x=jupyter", "not valid"},
		{"a/b=jupyter", "not valid"},
		{"proxy=jupyter", "serves your other ports"},
		{"AbsProxy=jupyter", "serves your other ports"},
		{"nb=", "say what nb runs"},
		{"nb=static:", "nothing after static:"},
		{"nb=python3 $HOME/app.py", "without a shell"},
		{"nb=python3 'open", "unterminated"},
	}
	for _, tt := range bad {
		got, err := ParseTeamApp(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.why) || strings.Contains(err.Error(), "\n") {
			t.Errorf("ParseTeamApp(%q) = %+v, %v; want a one-line error about %q", tt.in, got, err, tt.why)
		}
	}
}

// TestServeTeamCheck: a team server's flags are judged before anything starts.
func TestServeTeamCheck(t *testing.T) {
	team := func(s Serve) Serve {
		s.Apps = append([]string{"nb=jupyter", "site=static:/www"}, s.Apps...)
		return s
	}
	ok := []Serve{
		team(Serve{}),
		team(Serve{Access: "/t.yml"}),
		{Access: "/t.yml", Apps: []string{"nb=jupyter"}},
		team(Serve{Access: "/t.yml", Listen: "127.0.0.1:8443"}),
		team(Serve{Access: "/t.yml", Listen: "[::1]:0"}),
		team(Serve{Access: "/t.yml", Listen: "0.0.0.0:8443", TLSCert: "/c.pem"}),
		team(Serve{Access: "/t.yml", Listen: "10.1.2.3:8443", TLS: true}),
		{App: "jupyter"}, // the single-app forms as before
		{Command: []string{"python3", "-m", "http.server", "{port}"}},
	}
	for _, s := range ok {
		if err := s.Check(); err != nil {
			t.Errorf("Check(%q): %v", s.Args(), err)
		}
	}
	bad := []struct {
		s   Serve
		why string
	}{
		{team(Serve{Access: "/t.yml", Listen: "0.0.0.0:8443"}), "--access on --listen 0.0.0.0:8443 (beyond loopback) needs TLS"},
		{team(Serve{Access: "/t.yml", Listen: "lab.example.org:8443"}), "--tls-cert FILE --tls-key FILE"},
		{team(Serve{Apps: []string{"NB=notebook"}}), "--app NB is given twice"},
		{team(Serve{App: "jupyter"}), "name it too: --app jupyter=jupyter"},
		{team(Serve{Command: []string{"python3", "x y"}}), "name it too: --app NAME='python3 'x y''"},
		{team(Serve{AppSecretEnv: "S"}), "--app-secret-env and --app-header"},
		{team(Serve{Reuse: true}), "tether serve only"},
		{Serve{Access: "/t.yml", App: "jupyter"}, "--access needs the apps it governs"},
		{Serve{Access: "/t.yml"}, "--access needs the apps it governs"},
		{Serve{Apps: []string{"nb=python3 `id`"}}, "backquote"},
	}
	for _, tt := range bad {
		err := tt.s.Check()
		if err == nil || !strings.Contains(err.Error(), tt.why) {
			t.Errorf("Check(%q) = %v; want an error about %q", tt.s.Args(), err, tt.why)
		}
	}
	if !team(Serve{}).Team() || !(Serve{Access: "/t", Apps: []string{"a=jupyter"}}).Team() || (Serve{Apps: []string{"a=jupyter"}}).Team() {
		t.Errorf("Team(): several apps, or --access, make a team server")
	}
}

// TestServeAppFlag: --app is the preset once, NAME=SPEC any number of times, through
// Args and ParseServe alike.
func TestServeAppFlag(t *testing.T) {
	s, err := ParseServe([]string{"--app", "nb=jupyter", "--app=site=static:/w", "--access", "/t.yml"})
	if err != nil || s.App != "" || !reflect.DeepEqual(s.Apps, []string{"nb=jupyter", "site=static:/w"}) || s.Access != "/t.yml" {
		t.Fatalf("ParseServe: %+v, %v", s, err)
	}
	again, err := ParseServe(s.Args())
	if err != nil || !reflect.DeepEqual(again, s) {
		t.Errorf("round trip through Args %q: %+v, %v", s.Args(), again, err)
	}
	if _, err := ParseServe([]string{"--app", "jupyter", "--app", "rstudio"}); err == nil || !strings.Contains(err.Error(), "give one preset, or name each app") {
		t.Errorf("two presets: %v", err)
	}
}
