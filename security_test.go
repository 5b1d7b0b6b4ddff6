package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoInsecureHostKeyCallback: no code of ours, in any package, turns host key
// checking off (ssh.InsecureIgnoreHostKey); tests may (their servers are in-process
// fakes).
func TestNoInsecureHostKeyCallback(t *testing.T) {
	n := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "dist") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		n++
		if strings.Contains(string(b), "InsecureIgnoreHostKey") {
			t.Errorf("%s uses ssh.InsecureIgnoreHostKey; check the host key (knownhosts or a pinned key)", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 20 {
		t.Fatalf("read only %d Go files; the walk missed the packages", n)
	}
}
