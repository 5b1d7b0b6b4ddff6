//go:build unix

package remote

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/tether-dev/tether/wire"
)

// The batch job's serve gets --setup-file, and the script in a 0600 file.
func TestWithJobSetup(t *testing.T) {
	dir := t.TempDir()
	got, err := withJobSetup(dir, "module load x\n", wire.Serve{LoginShell: true, Command: []string{"app", "--flag"}})
	want := []string{"--setup-file=" + filepath.Join(dir, jobSetupFile), "--login-shell", "--", "app", "--flag"}
	if err != nil || !slices.Equal(got.Args(), want) {
		t.Errorf("got %q, %v; want %q", got.Args(), err, want)
	}
	fi, err := os.Stat(filepath.Join(dir, jobSetupFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("setup file: %v, %v", fi, err)
	}
	if got, _ := withJobSetup(dir, "", wire.Serve{Command: []string{"a"}}); !slices.Equal(got.Args(), []string{"--", "a"}) {
		t.Errorf("no setup: %q", got.Args())
	}
}
