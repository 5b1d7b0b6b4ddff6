package remote

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeRefusesAPageless404: once the app answers its ready path, the page a
// browser would open is asked for; a 404 there ends the start at once with the fix.
func TestServeRefusesAPageless404(t *testing.T) {
	needPython3(t)
	tempRoot(t)
	site := t.TempDir()
	os.WriteFile(filepath.Join(site, "api"), []byte("{}"), 0o644)
	spec := &AppSpec{Command: []string{"python3", "-m", "http.server", "{port}", "--bind", "127.0.0.1", "--directory", site},
		Bind: BindTCP, ReadyPath: "api", UIPath: "tree"}
	var stderr syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ready := &cancelOnWrite{cancel: cancel}
	start := time.Now()
	err := Serve(ctx, ServeOptions{App: spec, Command: spec.Command, JSON: true, Stdout: ready, Stderr: &stderr, ReadyTimeout: 20 * time.Second})
	if ready.String() != "" || err == nil || !strings.Contains(err.Error(), "404 on /tree") || time.Since(start) > 10*time.Second {
		t.Fatalf("Serve after %s: %v; want the 404 refusal within seconds\n%s", time.Since(start), err, stderr.String())
	}
	os.Mkdir(filepath.Join(site, "tree"), 0o755)
	r := startServe(t, ServeOptions{App: spec, Command: spec.Command, ReadyTimeout: 20 * time.Second})
	r.stop(t)
}
