//go:build unix

package remote

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// unixEchoApp is a small app that listens on a Unix socket given as its argument and
// answers with the path and the X-App-Secret header it received.
const unixEchoApp = `
import http.server, socketserver, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("path=%s secret=%s auth=%s" % (self.path, self.headers.get("X-App-Secret"), self.headers.get("Authorization"))).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
class S(socketserver.UnixStreamServer):
    def get_request(self):
        r, _ = super().get_request(); return r, ("unix", 0)
print("listening on", sys.argv[1], flush=True)
S(sys.argv[1], H).serve_forever()
`

// TestServeAppOnPrivateSocketWithInjectedHeader: an app spec is data — here an app on
// {socket} (in the session's private directory, so no other user can reach it
// around the gate) with a header the proxy adds to every request; nothing of ours
// (the Authorization header with the token) reaches it.
func TestServeAppOnPrivateSocketWithInjectedHeader(t *testing.T) {
	root := tempRoot(t)
	r := startServe(t, ServeOptions{App: &AppSpec{
		Command: []string{"python3", "-c", unixEchoApp, "{socket}"},
		Header:  http.Header{"X-App-Secret": {"injected-for-{base_url}"}},
	}})
	rec := r.rec
	appSock := filepath.Join(root, rec.ID, appSocket)
	if fi, err := os.Lstat(appSock); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("the app's socket %s: %v", appSock, err)
	}
	if fi, _ := os.Lstat(filepath.Dir(appSock)); fi.Mode().Perm() != 0o700 {
		t.Errorf("the app socket's directory is %04o; want 0700", fi.Mode().Perm())
	}
	c := socketClient(rec.Socket, nil)
	code, body := fetch(t, c, "http://localhost/some/path?q=1", rec.Token)
	if code != http.StatusOK || body != "path=/some/path?q=1 secret=injected-for-/ auth=None" {
		t.Errorf("through the gate: %d %q", code, body)
	}
	if code, _ := fetch(t, c, "http://localhost/", ""); code != http.StatusUnauthorized {
		t.Errorf("without token: %d", code)
	}
	if strings.Join(rec.Command, " ") != "python3 -c "+unixEchoApp+" {socket}" {
		t.Errorf("the record's command is not the template: %q", rec.Command)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(appSock); !os.IsNotExist(err) {
		t.Errorf("the app socket is left: %v", err)
	}
}

// guardedEchoApp listens on the Unix socket given as its argument and demands the
// secret from $MYAPP_TOKEN in X-App-Secret (403 otherwise); it then echoes it back,
// in a header and in its page, as careless apps do.
const guardedEchoApp = `
import http.server, os, socketserver, sys
secret = os.environ["MYAPP_TOKEN"]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.headers.get("X-App-Secret") != secret:
            self.send_response(403); self.send_header("Content-Length", "0"); self.end_headers(); return
        body = ("<a href='/next?token=%s'>next</a> ok" % secret).encode()
        self.send_response(200); self.send_header("Content-Type", "text/html"); self.send_header("X-Echo", secret)
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
class S(socketserver.UnixStreamServer):
    def get_request(self):
        r, _ = super().get_request(); return r, ("unix", 0)
S(sys.argv[1], H).serve_forever()
`

// TestServeGenericAppSecret: --app-secret-env and --app-header give a COMMAND of the
// user's own the presets' protection: the app gets a fresh secret by environment (not
// argv), the proxy sends it on every request, a request to the app's socket without
// it is refused, and the browser never sees it even when the app echoes it.
func TestServeGenericAppSecret(t *testing.T) {
	root := tempRoot(t)
	r := startServe(t, ServeOptions{Command: []string{"python3", "-c", guardedEchoApp, "{socket}"},
		AppSecretEnv: "MYAPP_TOKEN", AppHeaders: []string{"X-App-Secret: {app_secret}"}})
	rec := r.rec
	c := socketClient(rec.Socket, nil)
	req, _ := http.NewRequest("GET", "http://localhost/", nil)
	req.Header.Set("Authorization", "token "+rec.Token)
	req.Header.Set("X-App-Secret", "forged-by-the-client") // replaced by the proxy
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != "<a href='/next?'>next</a> ok" || resp.Header.Get("X-Echo") != "" {
		t.Errorf("through the gate: %d %q %v", resp.StatusCode, b, resp.Header)
	}
	appSock := filepath.Join(root, rec.ID, appSocket)
	if code, _ := fetch(t, socketClient(appSock, nil), "http://localhost/", ""); code != http.StatusForbidden {
		t.Errorf("straight to the app without the secret: %d; want 403", code)
	}
	if _, err := os.Stat(filepath.Join(root, rec.ID, appSecretFile)); !os.IsNotExist(err) {
		t.Errorf("a secret file was written though the app gets the secret by environment")
	}
}

func TestPortHint(t *testing.T) {
	for _, c := range []struct {
		command []string
		hint    bool
	}{
		{nil, false},
		{[]string{"jupyter", "lab", "--port={port}"}, false},
		{[]string{"code-server", "--socket", "{socket}"}, false},
		{[]string{"sh", "-c", `exec myapp --port "$PORT"`}, false},
		{[]string{"sh", "-c", "exec myapp --port ${PORT:-8000}"}, false},
		{[]string{"python3", "-m", "http.server"}, true},
		{[]string{"jupyter", "lab"}, true},
		{[]string{"myapp", "--port", "{Port}"}, true},
	} {
		h := PortHint(c.command)
		if (h != "") != c.hint {
			t.Errorf("PortHint(%q) = %q; want a hint: %v", c.command, h, c.hint)
		}
		if h != "" && (strings.Contains(h, "\n") || !strings.Contains(h, "{port}") || !strings.Contains(h, "$PORT")) {
			t.Errorf("hint %q: want one line naming {port} and $PORT", h)
		}
	}
}

// TestServePortHint: a command with no {port}, {socket} or $PORT gets the note up
// front only where serve cannot find the app's own port (not Linux); an app that reads
// PORT from its environment without saying so still starts there, with no note of a
// port found. A command with {port} gets no note.
func TestServePortHint(t *testing.T) {
	tempRoot(t)
	py := `import os, sys, runpy; sys.argv = ["http.server", os.environ["PORT"], "--bind", "127.0.0.1"]; runpy.run_module("http.server", run_name="__main__")`
	r := startServe(t, ServeOptions{Command: []string{"python3", "-c", py}})
	if got := strings.Contains(r.stderr.String(), "tether: note: the command has no {port} or {socket}"); got == findsPorts {
		t.Errorf("the note up front: %v; want %v\n%s", got, !findsPorts, r.stderr)
	}
	if strings.Contains(r.stderr.String(), "using it") {
		t.Errorf("a port found though the app listens on $PORT:\n%s", r.stderr)
	}
	if code, _ := fetch(t, socketClient(r.rec.Socket, nil), "http://localhost/", r.rec.Token); code != http.StatusOK {
		t.Errorf("the app that reads PORT: %d; want 200", code)
	}
	r2 := startServe(t, ServeOptions{Command: []string{"python3", "-m", "http.server", "{port}", "--bind", "127.0.0.1"}})
	if strings.Contains(r2.stderr.String(), "no {port}") {
		t.Errorf("a command with {port} got the note:\n%s", r2.stderr)
	}
}

// TestPortNote: where serve cannot find the app's port, the note says so and how to
// fix the command; where it can, there is none.
func TestPortNote(t *testing.T) {
	cmd := []string{"python3", "-m", "http.server"}
	if n := portNote(cmd, true); n != "" {
		t.Errorf("portNote where ports are found: %q; want none", n)
	}
	n := portNote(cmd, false)
	if !strings.HasPrefix(n, "the command has no {port} or {socket}") || !strings.Contains(n, "does not tell tether which port") || strings.Contains(n, "\n") {
		t.Errorf("portNote elsewhere: %q", n)
	}
	if n := portNote([]string{"python3", "-m", "http.server", "{port}"}, false); n != "" {
		t.Errorf("portNote for a command with {port}: %q", n)
	}
}
