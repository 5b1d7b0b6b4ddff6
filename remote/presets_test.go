//go:build unix

package remote

import (
	"encoding/base64"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/tokenserver"
	"github.com/tether-dev/tether/wire"
)

// onlyFound is a lookPath that finds exactly the given executables, under /opt/bin.
func onlyFound(names ...string) func(string) (string, error) {
	return func(n string) (string, error) {
		for _, x := range names {
			if x == n {
				if filepath.IsAbs(n) {
					return n, nil
				}
				return "/opt/bin/" + n, nil
			}
		}
		return "", exec.ErrNotFound
	}
}

var placeholder = regexp.MustCompile(`\{[a-z_]+\}`)

// Every flavour of every preset expands to an argv with every placeholder filled and
// no secret in it; the secret reaches the app only by environment or by a 0600 file
// without a trailing newline, and comes back on each request as the preset's header.
func TestPresetsExpandWithoutSecrets(t *testing.T) {
	root := tempRoot(t)
	t.Setenv("TETHER_TOKEN", "tether-own-token-never-for-the-app-0123")
	for _, p := range wire.Presets() {
		if p.Kind != KindApp {
			continue
		}
		for _, f := range p.Flavours {
			for _, base := range []string{"/", "/pre/"} {
				if p.RootOnly && base != "/" {
					continue
				}
				name := p.Name + "/" + f.Exec + base
				extra := []string{"--extra-flag"}
				if p.NoExtraArgs {
					extra = nil
				}
				r, err := resolvePreset(p, extra, base, onlyFound(f.Exec))
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if r.flavour != f.Name || r.spec == nil {
					t.Fatalf("%s: resolved to %+v", name, r)
				}
				s, err := newSession(root)
				if err != nil {
					t.Fatal(err)
				}
				plan, err := r.spec.plan(s, base)
				if err != nil {
					t.Fatalf("%s: plan: %v", name, err)
				}
				argv := strings.Join(plan.argv, "\x00")
				if plan.argv[0] != filepath.Join("/opt/bin", filepath.Base(f.Exec)) && plan.argv[0] != f.Exec {
					t.Errorf("%s: argv[0] %q is not the executable found", name, plan.argv[0])
				}
				if m := placeholder.FindString(argv); m != "" {
					t.Errorf("%s: placeholder %s left in argv %q", name, m, plan.argv)
				}
				if !p.NoExtraArgs && !strings.Contains(argv, "--extra-flag") {
					t.Errorf("%s: the extra argument is missing from %q", name, plan.argv)
				}
				if strings.Contains(argv, "tether-own-token") || strings.Contains(strings.Join(plan.env, "\n"), "tether-own-token") {
					t.Errorf("%s: tether's own token reaches the app", name)
				}
				if p.Bind == BindSocket && (plan.network != "unix" || !strings.Contains(argv+strings.Join(plan.env, "\x00"), s.appSocket())) {
					t.Errorf("%s: a socket preset whose argv and env do not name the socket: %q", name, plan.argv)
				}
				if p.Bind == BindTCP && (plan.network != "tcp" || !strings.Contains(argv, strings.TrimPrefix(plan.address, "127.0.0.1:"))) {
					t.Errorf("%s: a TCP preset whose argv lacks the port: %q", name, plan.argv)
				}
				if base != "/" && len(p.BaseURLArgs) == 0 && !strings.Contains(argv, base) && !strings.Contains(argv, strings.TrimSuffix(base, "/")) {
					t.Errorf("%s: --base-url %s is not passed to the app: %q", name, base, plan.argv)
				}
				if plan.host != p.Host {
					t.Errorf("%s: host policy %v; want %v", name, plan.host, p.Host)
				}
				checkSecret(t, name, p, s, plan)
				removeAppFiles(plan.files)
				s.remove()
			}
		}
	}
}

// checkSecret: a preset with a header gets a fresh secret; it is in no argv; the
// secret file (when used) is 0600 and holds exactly the secret; the header carries it.
func checkSecret(t *testing.T, name string, p Preset, s *session, plan *appPlan) {
	t.Helper()
	if len(p.Header) == 0 {
		if len(plan.secrets) != 0 {
			t.Errorf("%s: a secret nobody sends", name)
		}
		return
	}
	// One fresh secret, scrubbed as it is and in its HTTP Basic form.
	if len(plan.secrets) != 2 || len(plan.secrets[0]) != 43 || !tokenserver.TokensEqual(plan.secrets[1], base64.StdEncoding.EncodeToString([]byte("tether:"+plan.secrets[0]))) {
		t.Fatalf("%s: secrets %d; want one fresh 43-character secret and its Basic form", name, len(plan.secrets))
	}
	secret := plan.secrets[0]
	if strings.Contains(strings.Join(plan.argv, " "), secret) {
		t.Errorf("%s: the app's secret is on its command line", name)
	}
	var carried bool
	for _, vs := range plan.header {
		for _, v := range vs {
			if strings.Contains(v, secret) || strings.Contains(v, base64.StdEncoding.EncodeToString([]byte("tether:"+secret))) {
				carried = true
			}
		}
	}
	if !carried {
		t.Errorf("%s: no injected header carries the secret: %v", name, plan.header)
	}
	env := strings.Join(plan.env, "\n")
	file := filepath.Join(s.Dir, appSecretFile)
	b, ferr := os.ReadFile(file)
	switch {
	case ferr == nil:
		if !tokenserver.TokensEqual(string(b), secret) {
			t.Errorf("%s: the secret file holds %q; want exactly the secret, no newline", name, b)
		}
		fi, _ := os.Stat(file)
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: the secret file is %04o; want 0600", name, fi.Mode().Perm())
		}
		if !strings.Contains(env, "="+file) && !strings.Contains(strings.Join(plan.argv, " "), file) {
			t.Errorf("%s: the secret file is written but not given to the app", name)
		}
	case strings.Contains(env, "="+secret):
		// by environment
	default:
		t.Errorf("%s: the app is given the secret neither by file nor by environment", name)
	}
}

// Detection follows the table's order: JupyterLab first, then the Notebook, then
// Jupyter Server; nothing found names what was looked for.
func TestPresetDetectionOrder(t *testing.T) {
	p, _ := wire.LookupPreset("jupyter")
	for _, tt := range []struct {
		found []string
		want  string
	}{
		{[]string{"jupyter-lab", "jupyter-notebook", "jupyter-server"}, "JupyterLab"},
		{[]string{"jupyter-notebook", "jupyter-server"}, "Jupyter Notebook"},
		{[]string{"jupyter-server"}, "Jupyter Server"},
	} {
		r, err := resolvePreset(p, nil, "/", onlyFound(tt.found...))
		if err != nil || r.flavour != tt.want {
			t.Errorf("for %v, got %v, %v; want %s", tt.found, r, err, tt.want)
		}
	}
	_, err := resolvePreset(p, nil, "/", onlyFound())
	var nf errNotFound
	if !errors.As(err, &nf) || !strings.Contains(err.Error(), "jupyter-lab, jupyter-notebook, jupyter-server") {
		t.Errorf("nothing found: %v", err)
	}
	rs, _ := wire.LookupPreset("rstudio")
	if r, err := resolvePreset(rs, nil, "/", onlyFound("/usr/lib/rstudio-server/bin/rserver")); err != nil || r.spec.Command[0] != "/usr/lib/rstudio-server/bin/rserver" {
		t.Errorf("rserver outside PATH: %v, %v", r, err)
	}
}

// The positional argument, extra arguments and base-URL rules of the table.
func TestPresetArguments(t *testing.T) {
	all := onlyFound("jupyter-notebook", "R", "code-server", "tensorboard", "marimo", "streamlit")
	get := func(name string) Preset { p, _ := wire.LookupPreset(name); return p }
	tests := []struct {
		preset string
		extra  []string
		base   string
		check  func(*resolvedPreset) bool
		usage  bool
	}{
		{"static", nil, "/", func(r *resolvedPreset) bool { return r.static == "." }, false},
		{"static", []string{"/srv/www"}, "/", func(r *resolvedPreset) bool { return r.static == "/srv/www" }, false},
		{"static", []string{"/a", "/b"}, "/", nil, true},
		{"builtin", nil, "/", func(r *resolvedPreset) bool { return r.spec == nil && r.static == "" }, false},
		{"builtin", []string{"x"}, "/", nil, true},
		{"shiny", nil, "/", func(r *resolvedPreset) bool { return r.spec.Vars["arg"] == "." }, false},
		{"shiny", []string{"my app"}, "/", func(r *resolvedPreset) bool { return r.spec.Vars["arg"] == "my app" }, false},
		{"shiny", []string{"app", "more"}, "/", nil, true},
		{"shiny", nil, "/p/", nil, true},
		{"code-server", nil, "/p/", nil, true},
		{"code-server", []string{"/work"}, "/", func(r *resolvedPreset) bool { return last(r.spec.Command) == "/work" }, false},
		{"tensorboard", []string{"runs", "--reload_interval=1"}, "/tb/", func(r *resolvedPreset) bool {
			c := strings.Join(r.spec.Command, " ")
			return strings.Contains(c, "--logdir={arg}") && r.spec.Vars["arg"] == "runs" && strings.Contains(c, "--reload_interval=1") && strings.HasSuffix(c, "--path_prefix={base_path}")
		}, false},
		{"tensorboard", []string{"--reload_interval=1"}, "/", func(r *resolvedPreset) bool { return r.spec.Vars["arg"] == "." }, false},
		{"marimo", nil, "/", func(r *resolvedPreset) bool { return !strings.Contains(strings.Join(r.spec.Command, " "), "{arg}") }, false},
		{"marimo", []string{"nb.py"}, "/", func(r *resolvedPreset) bool { return r.spec.Command[2] == "{arg}" && r.spec.Vars["arg"] == "nb.py" }, false},
		{"jupyter", []string{"--notebook-dir=/data"}, "/lab/", func(r *resolvedPreset) bool { return last(r.spec.Command) == "--notebook-dir=/data" }, false},
		{"streamlit", nil, "/", func(r *resolvedPreset) bool { return r.spec.Vars["arg"] == "app.py" }, false},
	}
	for _, tt := range tests {
		r, err := resolvePreset(get(tt.preset), tt.extra, tt.base, all)
		var ue *UsageError
		if tt.usage {
			if !errors.As(err, &ue) {
				t.Errorf("%s %q base %s: got %v; want a usage error", tt.preset, tt.extra, tt.base, err)
			}
			continue
		}
		if err != nil || !tt.check(r) {
			t.Errorf("%s %q base %s: got %+v, %v", tt.preset, tt.extra, tt.base, r, err)
		}
	}
	if _, err := presetByName("jupyterr"); err == nil || !strings.Contains(err.Error(), "did you mean jupyter? the presets are jupyter, notebook, code-server") {
		t.Errorf("unknown preset: %v", err)
	}
}

func last(s []string) string { return s[len(s)-1] }

// The table itself: names unique and usable on a command line, every app preset
// says how it keeps its door shut and how to install it, and only presets without a
// socket and a secret admit to an open door.
func TestPresetTable(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range wire.Presets() {
		if seen[p.Name] || !wire.ValidAppName(p.Name) {
			t.Errorf("preset name %q is duplicated or malformed", p.Name)
		}
		seen[p.Name] = true
		if p.Description == "" || p.Door == "" || p.Install == "" || p.Idle == "" {
			t.Errorf("%s: description, door, install and idle must all be said", p.Name)
		}
		if p.Kind != KindApp {
			continue
		}
		if len(p.Flavours) == 0 {
			t.Errorf("%s: nothing to look for", p.Name)
		}
		open := p.Bind != BindSocket && len(p.Header) == 0
		if open != strings.HasPrefix(p.Door, "OPEN") {
			t.Errorf("%s: bind %v with header %v, but the door says %q", p.Name, p.Bind, p.Header, p.Door)
		}
		for _, f := range p.Flavours {
			if f.Command[0] != f.Exec {
				t.Errorf("%s: flavour %s runs %s but looks for %s", p.Name, f.Name, f.Command[0], f.Exec)
			}
		}
	}
	for _, want := range []string{"jupyter", "notebook", "code-server", "shiny", "rstudio", "tensorboard", "streamlit", "marimo", "static", "builtin"} {
		if !seen[want] {
			t.Errorf("preset %s is missing", want)
		}
	}
}

// The secret never goes on a command line, nor into a file other than its own.
func TestAppSecretRefusedOnArgv(t *testing.T) {
	root := tempRoot(t)
	s, _ := newSession(root)
	for _, spec := range []AppSpec{
		{Command: []string{"app", "--token={app_secret}"}},
		{Command: []string{"app", "--auth={app_secret_basic}"}},
		{Command: []string{"app"}, Files: []AppFile{{Name: "c.yaml", Content: "password: {app_secret}"}}},
	} {
		if _, err := spec.plan(s, "/"); err == nil {
			t.Errorf("%+v was accepted", spec)
		}
	}
	if _, err := os.Stat(filepath.Join(s.Dir, appSecretFile)); !os.IsNotExist(err) {
		t.Errorf("a refused spec left a secret file: %v", err)
	}
	// {app_secret_file} on the command line is fine: the path is no secret.
	p, err := AppSpec{Command: []string{"app", "--token-file={app_secret_file}"}, Header: map[string][]string{"X-Key": {"{app_secret}"}}}.plan(s, "/")
	if err != nil || p.argv[1] != "--token-file="+filepath.Join(s.Dir, appSecretFile) {
		t.Fatalf("%v %v", p, err)
	}
}

// --app-secret-env and --app-header: a consistent pair becomes env plus header; the
// inconsistent and the unsafe are usage errors.
func TestGenericAppSecret(t *testing.T) {
	cmd := []string{"myapp", "--port={port}"}
	spec, err := genericSpec(cmd, "MYAPP_TOKEN", []string{"Authorization: Bearer {app_secret}", "X-Extra: 1"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(spec.Env, ",") != "MYAPP_TOKEN={app_secret}" || spec.Header.Get("Authorization") != "Bearer {app_secret}" || spec.Header.Get("X-Extra") != "1" {
		t.Errorf("spec %+v", spec)
	}
	root := tempRoot(t)
	s, _ := newSession(root)
	p, err := spec.plan(s, "/")
	if err != nil {
		t.Fatal(err)
	}
	secret := p.secrets[0]
	if !strings.Contains(strings.Join(p.env, "\n"), "MYAPP_TOKEN="+secret) || !tokenserver.TokensEqual(p.header.Get("Authorization"), "Bearer "+secret) {
		t.Errorf("the secret did not reach env and header")
	}
	if _, err := spec.plan(s, "/"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, appSecretFile)); !os.IsNotExist(err) {
		t.Errorf("a secret file was written though nothing names it")
	}
	if spec, err := genericSpec([]string{"app", "--key-file={app_secret_file}"}, "", []string{"X-Key: {app_secret}"}); err != nil || len(spec.Env) != 0 {
		t.Errorf("secret by file: %v %v", spec, err)
	}
	for _, bad := range []struct {
		env     string
		headers []string
	}{
		{"MYAPP_TOKEN", nil}, // nothing carries it
		{"", []string{"Authorization: token {app_secret}"}}, // the app never gets it
		{"1BAD", []string{"X: {app_secret}"}},
		{"TETHER_TOKEN", []string{"X: {app_secret}"}},
		{"K", []string{"no colon {app_secret}"}},
		{"K", []string{"Bad Name: {app_secret}"}},
		{"K", []string{"X: {app_secret}\r\nInjected: 1"}},
		{"K", []string{"Host: {app_secret}"}},
		{"K", []string{"Cookie: s={app_secret}"}},
		{"K", []string{"X-Empty:"}},
	} {
		if _, err := genericSpec(cmd, bad.env, bad.headers); err == nil {
			t.Errorf("env %q headers %q were accepted", bad.env, bad.headers)
		}
	}
}

// serve --app: presets resolve in normalize (before anything starts); a preset and
// --app-header do not mix; the static preset needs no process.
func TestServeAppOptions(t *testing.T) {
	tempRoot(t)
	old := lookPathFunc
	t.Cleanup(func() { lookPathFunc = old })
	lookPathFunc = onlyFound("jupyter-notebook")
	o := ServeOptions{AppName: "jupyter", Command: []string{"--notebook-dir=/x"}}
	if err := o.normalize(); err != nil {
		t.Fatal(err)
	}
	if o.App == nil || o.App.Command[0] != "/opt/bin/jupyter-notebook" || o.App.Host != tokenserver.HostLoopback {
		t.Fatalf("app %+v", o.App)
	}
	if got := strings.Join(childArgs(o), " "); !strings.Contains(got, "--app=jupyter -- --notebook-dir=/x") {
		t.Errorf("child args %q", got)
	}
	if rc := o.recordCommand(); rc[0] != "/opt/bin/jupyter-notebook" {
		t.Errorf("record command %q", rc)
	}
	for _, bad := range []ServeOptions{
		{AppName: "nosuch"},
		{AppName: "jupyter", AppHeaders: []string{"X: {app_secret}"}},
		{AppSecretEnv: "K", AppHeaders: []string{"X: {app_secret}"}},
		{AppName: "code-server", BaseURL: "/p/"},
	} {
		err := bad.normalize()
		var ue *UsageError
		if !errors.As(err, &ue) {
			t.Errorf("%+v: got %v; want a usage error", bad, err)
		}
	}
	if err := (&ServeOptions{AppName: "shiny"}).normalize(); err == nil || !strings.Contains(err.Error(), "not installed") {
		t.Errorf("shiny without R: %v", err)
	}
	o = ServeOptions{AppName: "static", Command: []string{"site"}, ReadyTimeout: time.Second}
	if err := o.normalize(); err != nil || o.App != nil || !filepath.IsAbs(o.staticDir) || filepath.Base(o.staticDir) != "site" {
		t.Errorf("static: %+v %v", o, err)
	}
}
