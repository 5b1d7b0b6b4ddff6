//go:build unix

package remote

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The static preset's file server: files and listings under the base URL; nothing
// written; no way out of the directory, into hidden names, through symlinks, or into
// tether's own session directories.
func TestStaticApp(t *testing.T) {
	top := t.TempDir()
	dir := filepath.Join(top, "site")
	state := filepath.Join(dir, "state") // a TETHER_STATE_DIR inside the served tree
	must(t, os.MkdirAll(filepath.Join(dir, "sub"), 0o755))
	must(t, os.MkdirAll(filepath.Join(dir, ".hidden"), 0o755))
	must(t, os.MkdirAll(filepath.Join(state, "abcdefgh"), 0o700))
	must(t, os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("hello"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "sub", "a b.txt"), []byte("spaced"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, ".env"), []byte("SECRET=1"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, ".hidden", "x"), []byte("x"), 0o644))
	must(t, os.WriteFile(filepath.Join(state, "abcdefgh", "session.json"), []byte(`{"token":"t"}`), 0o600))
	must(t, os.WriteFile(filepath.Join(top, "outside.txt"), []byte("outside"), 0o644))
	must(t, os.Symlink(filepath.Join(top, "outside.txt"), filepath.Join(dir, "out-link")))
	must(t, os.Symlink("hello.txt", filepath.Join(dir, "in-link")))
	must(t, os.Symlink("state", filepath.Join(dir, "state-link")))
	must(t, os.Mkdir(filepath.Join(dir, "site2"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "site2", "index.html"), []byte("<h1>index</h1>"), 0o644))

	app, err := newStaticApp(dir, "/files/", []string{state}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	do := func(method, target string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(method, "http://127.0.0.1"+target, strings.NewReader("body"))
		app.ServeHTTP(w, r)
		return w
	}
	tests := []struct {
		method, path string
		code         int
		body         string
	}{
		{"GET", "/files/hello.txt", 200, "hello"},
		{"HEAD", "/files/hello.txt", 200, ""},
		{"GET", "/files/sub/a%20b.txt", 200, "spaced"},
		{"GET", "/files/", 200, "hello.txt"},
		{"GET", "/files/sub/", 200, "a%20b.txt"},
		{"GET", "/files/sub", 301, ""},
		{"GET", "/files", 301, ""},
		{"GET", "/files/site2/", 200, "<h1>index</h1>"},
		{"PUT", "/files/hello.txt", 405, ""},
		{"POST", "/files/new.txt", 405, ""},
		{"DELETE", "/files/hello.txt", 405, ""},
		{"PATCH", "/files/hello.txt", 405, ""},
		{"GET", "/files/../outside.txt", 404, ""},
		{"GET", "/files/%2e%2e/outside.txt", 404, ""},
		{"GET", "/files/sub/..%2f..%2foutside.txt", 404, ""},
		{"GET", "/files/..%5coutside.txt", 404, ""},
		{"GET", "/files/.env", 404, ""},
		{"GET", "/files/.hidden/x", 404, ""},
		{"GET", "/files/out-link", 404, ""},
		{"GET", "/files/in-link", 404, ""},
		{"GET", "/files/state/abcdefgh/session.json", 404, ""},
		{"GET", "/files/state/", 404, ""},
		{"GET", "/files/state-link/abcdefgh/session.json", 404, ""},
		{"GET", "/files/nosuch", 404, ""},
		{"GET", "/other/hello.txt", 404, ""},
		{"GET", "/files/hello.txt%00.png", 404, ""},
	}
	for _, tt := range tests {
		w := do(tt.method, tt.path)
		if w.Code != tt.code || !strings.Contains(w.Body.String(), tt.body) {
			t.Errorf("%s %s: %d %.80q; want %d with %q", tt.method, tt.path, w.Code, w.Body.String(), tt.code, tt.body)
		}
		if tt.code == 405 && w.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s %s: Allow %q", tt.method, tt.path, w.Header().Get("Allow"))
		}
	}
	listing := do("GET", "/files/").Body.String()
	for _, hidden := range []string{".env", ".hidden", "out-link", "in-link", "state"} {
		if strings.Contains(listing, ">"+hidden) {
			t.Errorf("the listing shows %s:\n%s", hidden, listing)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "hello.txt")); string(b) != "hello" {
		t.Errorf("a write reached the file: %q", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "new.txt")); !os.IsNotExist(err) {
		t.Errorf("POST created a file")
	}

	// A session directory itself, or a directory inside one, is never served.
	if _, err := newStaticApp(state, "/", []string{state}, nil); err == nil {
		t.Error("serving the state root was accepted")
	}
	if _, err := newStaticApp(filepath.Join(state, "abcdefgh"), "/", []string{state}, nil); err == nil {
		t.Error("serving a session directory was accepted")
	}
	if _, err := newStaticApp(filepath.Join(dir, "hello.txt"), "/", nil, nil); err == nil {
		t.Error("serving a file was accepted")
	}
}

// serve --app static end to end in-process: the gate in front, the file behind it.
func TestServeStatic(t *testing.T) {
	tempRoot(t)
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "f.txt"), []byte("static file"), 0o644))
	r := startServe(t, ServeOptions{AppName: "static", Command: []string{dir}})
	c := socketClient(r.rec.Socket, nil)
	if code, body := fetch(t, c, "http://localhost/f.txt", r.rec.Token); code != 200 || body != "static file" {
		t.Errorf("GET: %d %q", code, body)
	}
	if code, _ := fetch(t, c, "http://localhost/f.txt", ""); code != http.StatusUnauthorized {
		t.Errorf("without the token: %d", code)
	}
	req, _ := http.NewRequest("PUT", "http://localhost/f.txt", strings.NewReader("x"))
	req.Header.Set("Authorization", "token "+r.rec.Token)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("PUT: %d", resp.StatusCode)
	}
	if r.rec.App != "static" || strings.Join(r.rec.Command, " ") != "static "+dir {
		t.Errorf("record: app %q command %q", r.rec.App, r.rec.Command)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// The deny list ignores case: on a case-insensitive filesystem (macOS, SMB shares)
// STATE/… names the session directory state/… (issue 11, item 6).
func TestStaticDenyIgnoresCase(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	must(t, os.MkdirAll(filepath.Join(state, "abcdefgh"), 0o700))
	app, err := newStaticApp(dir, "/", []string{state}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	for _, p := range []string{"state/abcdefgh/session.json", "STATE/abcdefgh/session.json", "State", "sTaTe/", "/STATE/x"} {
		if rel, ok := app.clean(p); ok {
			t.Errorf("clean(%q) = %q; want it refused (tether's state directory, whatever the case)", p, rel)
		}
	}
	for _, p := range []string{"states/x", "stat", "other/state/x"} {
		if _, ok := app.clean(p); !ok {
			t.Errorf("clean(%q) refused a path outside the state directory", p)
		}
	}
}
