//go:build unix

package remote

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// The Slurm job's serve gets --setup-file before "--", and the script in a 0600 file.
func TestWithJobSetup(t *testing.T) {
	dir := t.TempDir()
	got, err := withJobSetup(dir, "module load x\n", []string{"--login-shell", "--", "app", "--flag"})
	want := []string{"--login-shell", "--setup-file=" + filepath.Join(dir, jobSetupFile), "--", "app", "--flag"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("got %q, %v; want %q", got, err, want)
	}
	fi, err := os.Stat(filepath.Join(dir, jobSetupFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("setup file: %v, %v", fi, err)
	}
	if got, _ := withJobSetup(dir, "", []string{"a"}); !slices.Equal(got, []string{"a"}) {
		t.Errorf("no setup: %q", got)
	}
}
