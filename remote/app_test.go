//go:build unix

package remote

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/tokenserver"
	"github.com/tether-dev/tether/wire"
)

func TestExpand(t *testing.T) {
	vars := map[string]string{"port": "8888", "host": "127.0.0.1", "base_url": "/lab/", "socket": "/s/app.sock", "evil": "{port}"}
	tests := []struct{ in, want string }{
		{"--port={port}", "--port=8888"},
		{"{host}:{port}", "127.0.0.1:8888"},
		{"--ServerApp.base_url={base_url}", "--ServerApp.base_url=/lab/"},
		{"unix:{socket}", "unix:/s/app.sock"},
		{"{evil}", "{port}"}, // values are not expanded again
		{"print({1: 2})", "print({1: 2})"},
		{"{unknown} {PORT}", "{unknown} {PORT}"},
		{"{{port}}", "{8888}"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := expand(tt.in, vars); got != tt.want {
			t.Errorf("for %q, got %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestPlan(t *testing.T) {
	root := tempRoot(t)
	s, err := newSession(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("TETHER_TOKEN", "secret-token-value-1234567890")
	t.Setenv("TETHER_SOMETHING", "x")
	t.Setenv("PORT", "1")

	p, err := AppSpec{Command: []string{"python3", "-m", "http.server", "{port}", "--bind", "{host}"},
		Env: []string{"APP_BASE={base_url}"}, Header: http.Header{"X-App": {"p{port}"}}}.plan(s, "/p/")
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(p.address)
	if p.network != "tcp" || host != "127.0.0.1" || port == "0" {
		t.Fatalf("tcp plan: %s %s", p.network, p.address)
	}
	if want := []string{"python3", "-m", "http.server", port, "--bind", "127.0.0.1"}; strings.Join(p.argv, " ") != strings.Join(want, " ") {
		t.Fatalf("argv %q; want %q", p.argv, want)
	}
	env := strings.Join(p.env, "\n")
	for _, want := range []string{"PORT=" + port, "APP_BASE=/p/"} {
		if !strings.Contains(env, want+"\n") && !strings.HasSuffix(env, want) {
			t.Errorf("env lacks %s", want)
		}
	}
	if strings.Contains(env, "PORT=1\n") || strings.Contains(env, "TETHER_") || strings.Contains(env, "secret-token-value") {
		t.Errorf("env keeps what it must not:\n%s", env)
	}
	if got := p.header.Get("X-App"); got != "p"+port {
		t.Errorf("header %q", got)
	}

	p, err = AppSpec{Command: []string{"app", "--socket={socket}"}}.plan(s, "/")
	if err != nil {
		t.Fatal(err)
	}
	if p.network != "unix" || p.address != s.appSocket() || p.argv[1] != "--socket="+s.appSocket() {
		t.Fatalf("socket plan: %s %s %q", p.network, p.address, p.argv)
	}
	if _, err := (AppSpec{Command: []string{"a"}, Env: []string{"NOEQUALS"}}).plan(s, "/"); err == nil {
		t.Error("a malformed env entry was accepted")
	}
}

func testPlan(t *testing.T, argv ...string) *appPlan {
	t.Helper()
	root := tempRoot(t)
	s, err := newSession(root)
	if err != nil {
		t.Fatal(err)
	}
	p, err := AppSpec{Command: argv}.plan(s, "/")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAppEnvironmentHasNoToken(t *testing.T) {
	const token = "tok-EnvironmentSecret-0123456789"
	t.Setenv("TETHER_TOKEN", token)
	p := testPlan(t, "sh", "-c", "env; cat /proc/$$/cmdline")
	var out syncBuffer
	app, err := startApp(p, &out)
	if err != nil {
		t.Fatal(err)
	}
	<-app.done
	if strings.Contains(out.String(), token) || strings.Contains(out.String(), "TETHER_TOKEN") {
		t.Fatalf("the app saw the token:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "PORT=") {
		t.Fatalf("the app did not get PORT:\n%s", out.String())
	}
}

func TestAppStopsPromptlyOnTERM(t *testing.T) {
	p := testPlan(t, "sleep", "300")
	app, err := startApp(p, &syncBuffer{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	app.stop(10 * time.Second)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("stop of a TERM-abiding app took %s", d)
	}
}

func TestWaitReady(t *testing.T) {
	ctx := context.Background()
	t.Run("app exits", func(t *testing.T) {
		p := testPlan(t, "sh", "-c", "echo starting; echo 'boom: bad flag' >&2; exit 3")
		app, err := startApp(p, &syncBuffer{})
		if err != nil {
			t.Fatal(err)
		}
		err = waitReady(ctx, p, app, time.Minute, func(wire.Note) {})
		if !errors.Is(err, errAppExited) {
			t.Fatalf("got %v; want errAppExited", err)
		}
		<-app.done
		if d := describeExit(app.err); d != "exited with status 3" {
			t.Errorf("exit %q", d)
		}
		if tail := app.tail.Lines(5); len(tail) != 2 || tail[1] != "boom: bad flag" {
			t.Errorf("tail %q", tail)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		p := testPlan(t, "sleep", "30")
		app, err := startApp(p, &syncBuffer{})
		if err != nil {
			t.Fatal(err)
		}
		defer app.stop(time.Second)
		start := time.Now()
		err = waitReady(ctx, p, app, 300*time.Millisecond, func(wire.Note) {})
		if err == nil || !strings.Contains(err.Error(), "--ready-timeout") || time.Since(start) > 3*time.Second {
			t.Fatalf("got %v after %s", err, time.Since(start))
		}
	})
	t.Run("listening", func(t *testing.T) {
		p := testPlan(t, "python3", "-m", "http.server", "{port}", "--bind", "127.0.0.1")
		app, err := startApp(p, &syncBuffer{})
		if err != nil {
			t.Fatal(err)
		}
		defer app.stop(time.Second)
		var msgs []string
		if err := waitReady(ctx, p, app, 20*time.Second, func(m wire.Note) { msgs = append(msgs, m.String()) }); err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 0 || !strings.Contains(msgs[0], p.address) {
			t.Errorf("progress %q; want a line naming %s", msgs, p.address)
		}
	})
	t.Run("ready path", func(t *testing.T) {
		if _, err := exec.LookPath("python3"); err != nil {
			t.Skip("needs python3")
		}
		// The app answers 503 until its third request, and 200 only with the header.
		const script = `import http.server, os, sys
n = 0
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        global n
        n += 1
        print("hit", n, self.path, self.headers.get("X-Secret"), flush=True)
        ok = self.path == "/api/status" and self.headers.get("X-Secret") == "s" and n >= 3
        self.send_response(200 if ok else 503)
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()`
		p := testPlan(t, "python3", "-c", script)
		var out syncBuffer
		app, err := startApp(p, &out)
		if err != nil {
			t.Fatal(err)
		}
		defer app.stop(time.Second)
		p.readyPath, p.header = "api/status", http.Header{"X-Secret": {"s"}}
		if err := waitReady(ctx, p, app, 20*time.Second, func(wire.Note) {}); err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
		// The app's output arrives through a pipe: give its last line a moment.
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(out.String(), "hit 3 /api/status s\n") && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if got := out.String(); !strings.Contains(got, "hit 3 /api/status s\n") || strings.Contains(got, "hit 4") {
			t.Fatalf("want ready at the third hit with the header:\n%s", got)
		}
	})
}

// Every form in which the proxy hands the app its secret is one the browser must never
// see: the secret itself and its HTTP Basic form ({app_secret_basic}, marimo's), which
// an app echoing its request headers would otherwise send back whole.
func TestPlanSecretsCoverEveryForm(t *testing.T) {
	root := tempRoot(t)
	s, err := newSession(root)
	if err != nil {
		t.Fatal(err)
	}
	p, err := AppSpec{Command: []string{"app", "--token-file={app_secret_file}"},
		Header: http.Header{"Authorization": {"Basic {app_secret_basic}"}}}.plan(s, "/")
	if err != nil {
		t.Fatal(err)
	}
	defer removeAppFiles(p.files)
	basic := strings.TrimPrefix(p.header.Get("Authorization"), "Basic ")
	if len(p.secrets) == 0 || basic == "" {
		t.Fatalf("secrets %d, header %q", len(p.secrets), p.header.Get("Authorization"))
	}
	if len(p.secrets) != 2 || !tokenserver.TokensEqual(p.secrets[1], basic) {
		t.Errorf("the Basic form of the secret is not among the values scrubbed from responses (%d values)", len(p.secrets))
	}
}
