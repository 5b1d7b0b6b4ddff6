//go:build unix

package remote

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/access"
)

// TestStaticTeamRights: with --access, each person sees only what their paths allow
// and writes only under paths.write; the owner reads all and writes nothing.
func TestStaticTeamRights(t *testing.T) {
	top := t.TempDir()
	dir := filepath.Join(top, "www")
	for _, d := range []string{"pub/sub", "drop", "private", "other"} {
		must(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	for f, c := range map[string]string{"pub/a.txt": "A", "pub/sub/b.txt": "B", "private/p.txt": "P", "top.txt": "T", "drop/old.txt": "old"} {
		must(t, os.WriteFile(filepath.Join(dir, f), []byte(c), 0o644))
	}
	must(t, os.WriteFile(filepath.Join(top, "outside.txt"), []byte("outside"), 0o644))
	must(t, os.Symlink(filepath.Join(top, "outside.txt"), filepath.Join(dir, "drop", "link.txt")))
	must(t, os.Symlink(top, filepath.Join(dir, "drop", "updir")))

	paths := map[string]access.Paths{
		"reader": {Read: []string{filepath.Join(dir, "pub"), "/elsewhere"}, LoadDefault: filepath.Join(dir, "pub")},
		"writer": {Read: []string{filepath.Join(dir, "pub")}, Write: []string{filepath.Join(dir, "drop")}},
		"all":    {Read: []string{top}},
	}
	app, err := newStaticApp(dir, "/site/", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	app.team = &staticRights{paths: func(u string) access.Paths { return paths[u] }, dirs: []string{dir}}

	do := func(user, method, target, body string) *httptest.ResponseRecorder {
		t.Helper()
		w := httptest.NewRecorder()
		r := httptest.NewRequest(method, "http://127.0.0.1"+target, strings.NewReader(body))
		if user != "" {
			r.Header.Set(userHeader, user)
		}
		app.ServeHTTP(w, r)
		return w
	}
	tests := []struct {
		user, method, path, body string
		code                     int
		has, hasNot              string
	}{
		{"owner", "GET", "/site/private/p.txt", "", 200, "P", ""},
		{"owner", "GET", "/site/", "", 200, "private/", ""},
		{"owner", "PUT", "/site/drop/x.txt", "x", 403, "", ""},
		{"reader", "GET", "/site/", "", 302, "", ""}, // to load_default
		{"reader", "GET", "/site/pub/a.txt", "", 200, "A", ""},
		{"reader", "GET", "/site/pub/sub/b.txt", "", 200, "B", ""},
		{"reader", "GET", "/site/private/p.txt", "", 404, "", "P"},
		{"reader", "GET", "/site/top.txt", "", 404, "", ""},
		{"reader", "GET", "/site/private/", "", 404, "", ""},
		{"reader", "PUT", "/site/pub/a.txt", "changed", 403, "read this, not change it", ""},
		{"reader", "DELETE", "/site/pub/a.txt", "", 403, "", ""},
		{"writer", "GET", "/site/", "", 200, "pub/", "private/"},
		{"writer", "GET", "/site/", "", 200, "drop/", "top.txt"},
		{"writer", "GET", "/site/drop/old.txt", "", 200, "old", ""},
		{"writer", "PUT", "/site/drop/new.txt", "new", 201, "", ""},
		{"writer", "PUT", "/site/drop/old.txt", "replaced", 204, "", ""},
		{"writer", "PUT", "/site/drop/link.txt", "through a link", 409, "", ""},
		{"writer", "PUT", "/site/drop/updir/outside.txt", "escape", 409, "", ""},
		{"writer", "PUT", "/site/drop/none/x.txt", "x", 409, "does not exist", ""},
		{"writer", "PUT", "/site/drop/.htaccess", "x", 404, "", ""},
		{"writer", "PUT", "/site/drop/../private/p.txt", "x", 404, "", ""},
		{"writer", "PUT", "/site/private/p.txt", "x", 404, "", ""},
		{"writer", "PUT", "/site/drop", "x", 409, "", ""},
		{"writer", "DELETE", "/site/drop/new.txt", "", 204, "", ""},
		{"writer", "DELETE", "/site/drop/link.txt", "", 409, "", ""},
		{"writer", "POST", "/site/drop/x.txt", "", 405, "", ""},
		{"all", "GET", "/site/private/p.txt", "", 200, "P", ""}, // a path above DIR grants all of it
		{"all", "PUT", "/site/top.txt", "x", 403, "", ""},
		{"nobody", "GET", "/site/pub/a.txt", "", 404, "", ""},
		{"", "GET", "/site/pub/a.txt", "", 404, "", ""}, // no X-Tether-User: nothing
	}
	for _, tt := range tests {
		w := do(tt.user, tt.method, tt.path, tt.body)
		b := w.Body.String()
		if w.Code != tt.code || !strings.Contains(b, tt.has) || tt.hasNot != "" && strings.Contains(b, tt.hasNot) {
			t.Errorf("%s %s %s: %d %q; want %d with %q without %q", tt.user, tt.method, tt.path, w.Code, b, tt.code, tt.has, tt.hasNot)
		}
	}
	if loc := do("reader", "GET", "/site/", "").Header().Get("Location"); loc != "/site/pub/" {
		t.Errorf("load_default: redirected to %q; want /site/pub/", loc)
	}
	for f, want := range map[string]string{"drop/old.txt": "replaced", "pub/a.txt": "A", "private/p.txt": "P"} {
		if b, _ := os.ReadFile(filepath.Join(dir, f)); string(b) != want {
			t.Errorf("%s holds %q; want %q", f, b, want)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(top, "outside.txt")); string(b) != "outside" {
		t.Errorf("the file behind the symlink was changed: %q", b)
	}
	for _, gone := range []string{"drop/new.txt", "drop/x.txt"} {
		if _, err := os.Lstat(filepath.Join(dir, gone)); err == nil {
			t.Errorf("%s exists", gone)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "drop", "link.txt")); err != nil {
		t.Errorf("the symlink was deleted: %v", err)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "drop"))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tether-upload-") {
			t.Errorf("a temporary upload file stayed: %s", e.Name())
		}
	}

	// Too large: refused, nothing left.
	w := httptest.NewRecorder()
	r := httptest.NewRequest("PUT", "http://127.0.0.1/site/drop/big.bin", strings.NewReader(strings.Repeat("x", 10)))
	r.Header.Set(userHeader, "writer")
	r.ContentLength = maxUpload + 1
	app.ServeHTTP(w, r)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("a PUT over %d bytes: %d; want 413", maxUpload, w.Code)
	}
	if _, err := os.Lstat(filepath.Join(dir, "drop", "big.bin")); err == nil {
		t.Errorf("the too-large file was written")
	}
}

// Without --access the static app stays read-only whatever X-Tether-User says.
func TestStaticNoTeamReadOnly(t *testing.T) {
	dir := t.TempDir()
	app, err := newStaticApp(dir, "/", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	w := httptest.NewRecorder()
	r := httptest.NewRequest("PUT", "http://127.0.0.1/x.txt", strings.NewReader("x"))
	r.Header.Set(userHeader, "writer")
	app.ServeHTTP(w, r)
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("PUT without --access: %d; want 405", w.Code)
	}
}

// Another user of the machine who may write in a shared directory under a write path
// swaps a subdirectory for a symlink to a read-only part of the served directory,
// again and again, while a member uploads into it: between the check of the path and
// the write, the upload must never land behind the symlink.
func TestStaticTeamWriteSymlinkRace(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"drop", "ro"} {
		must(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	must(t, os.WriteFile(filepath.Join(dir, "ro", "x.txt"), []byte("owner's"), 0o644))
	paths := map[string]access.Paths{"writer": {Write: []string{filepath.Join(dir, "drop")}}}
	app, err := newStaticApp(dir, "/site/", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	app.team = &staticRights{paths: func(u string) access.Paths { return paths[u] }, dirs: []string{dir}}

	// sub is a directory (holding x.txt) and sub.link a symlink to ro; the other user
	// swaps the two names atomically (renameat2 RENAME_EXCHANGE), again and again.
	sub, link := filepath.Join(dir, "drop", "sub"), filepath.Join(dir, "drop", "sub.link")
	must(t, os.Mkdir(sub, 0o755))
	must(t, os.WriteFile(filepath.Join(sub, "x.txt"), []byte("member's"), 0o644))
	must(t, os.Symlink("../ro", link)) // relative: os.Root follows it, inside the root
	if err := swapNames(sub, link); err != nil {
		t.Skipf("renameat2 RENAME_EXCHANGE: %v", err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				swapNames(sub, link)
			}
		}
	}()
	deadline := time.Now().Add(2 * time.Second)
	puts, ok := 0, 0
	for time.Now().Before(deadline) {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("PUT", "http://127.0.0.1/site/drop/sub/x.txt", strings.NewReader("member's"))
		r.Header.Set(userHeader, "writer")
		app.ServeHTTP(w, r)
		puts++
		if w.Code < 300 {
			ok++
		}
		w = httptest.NewRecorder()
		r = httptest.NewRequest("DELETE", "http://127.0.0.1/site/drop/sub/x.txt", nil)
		r.Header.Set(userHeader, "writer")
		app.ServeHTTP(w, r)
	}
	close(stop)
	<-done
	if b, err := os.ReadFile(filepath.Join(dir, "ro", "x.txt")); err != nil || string(b) != "owner's" {
		t.Errorf("after %d uploads and deletes (%d accepted) racing a symlink swap, ro/x.txt holds %q (%v); want it untouched", puts, ok, b, err)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "ro"))
	for _, e := range ents {
		if e.Name() != "x.txt" {
			t.Errorf("an upload landed in ro: %s", e.Name())
		}
	}
	t.Logf("%d uploads, %d accepted", puts, ok)
}

// A written name with a control character (a newline, an escape sequence for the
// owner's terminal) is refused.
func TestStaticTeamWriteControlNames(t *testing.T) {
	dir := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dir, "drop"), 0o755))
	app, err := newStaticApp(dir, "/site/", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	app.team = &staticRights{paths: func(string) access.Paths {
		return access.Paths{Write: []string{filepath.Join(dir, "drop")}}
	}, dirs: []string{dir}}
	for _, name := range []string{"a%0Ab.txt", "a%0Db", "%1B%5B31mred", "tab%09name", "del%7F", "c1%C2%9B"} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("PUT", "http://127.0.0.1/site/drop/"+name, strings.NewReader("x"))
		r.Header.Set(userHeader, "writer")
		app.ServeHTTP(w, r)
		if w.Code < 300 {
			t.Errorf("PUT drop/%s: %d; want refused", name, w.Code)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "drop")); len(ents) != 0 {
		t.Errorf("files were written: %v", ents)
	}
}
