package remote

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// tether's session directory under another name is refused too: the static app
// compares directories by identity at every step of a path, not only by name. The
// other names here are bind mounts (root only), as a case-insensitive filesystem gives
// STATE for state, or a share mounted twice gives (issue 11, item 6).
func TestStaticDenyByIdentity(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to bind-mount a second name for the session directory")
	}
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	must(t, os.MkdirAll(filepath.Join(state, "abcdefgh"), 0o700))
	must(t, os.WriteFile(filepath.Join(state, "abcdefgh", "session.json"), []byte(`{"token":"secret-token"}`), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "ok.txt"), []byte("ok"), 0o644))
	for _, other := range []string{"STATE", "mirror"} {
		must(t, os.Mkdir(filepath.Join(dir, other), 0o755))
		if err := syscall.Mount(state, filepath.Join(dir, other), "", syscall.MS_BIND, ""); err != nil {
			t.Skipf("cannot bind-mount here: %v", err)
		}
		t.Cleanup(func() { syscall.Unmount(filepath.Join(dir, other), syscall.MNT_DETACH) })
	}
	app, err := newStaticApp(dir, "/", []string{state}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	get := func(p string) (int, string) {
		w := httptest.NewRecorder()
		app.ServeHTTP(w, httptest.NewRequest("GET", "http://127.0.0.1"+p, nil))
		return w.Code, w.Body.String()
	}
	for _, p := range []string{"/STATE/abcdefgh/session.json", "/mirror/abcdefgh/session.json", "/mirror/", "/mirror/abcdefgh/"} {
		if code, body := get(p); code != http.StatusNotFound || strings.Contains(body, "secret-token") {
			t.Errorf("GET %s: %d %.80q; want 404", p, code, body)
		}
	}
	if code, body := get("/"); code != 200 || strings.Contains(body, "mirror") || strings.Contains(body, "STATE") || !strings.Contains(body, "ok.txt") {
		t.Errorf("the listing shows the session directory under another name: %d %q", code, body)
	}
	if code, _ := get("/ok.txt"); code != 200 {
		t.Errorf("GET /ok.txt: %d", code)
	}
	// Serving the session directory under another name is refused at start.
	for _, other := range []string{"STATE", "mirror/abcdefgh"} {
		if _, err := newStaticApp(filepath.Join(dir, other), "/", []string{state}, nil); err == nil {
			t.Errorf("serving %s (the session directory under another name) was accepted", other)
		}
	}
}
