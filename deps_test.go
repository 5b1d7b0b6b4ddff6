package main

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/tether-dev/tether"

// listedPackage is the part of `go list -json` these tests read.
type listedPackage struct {
	ImportPath   string
	Name         string
	Doc          string
	Deps         []string
	TestImports  []string
	XTestImports []string
}

func listPackages(t *testing.T) map[string]listedPackage {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", "./...").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string]listedPackage{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p listedPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		pkgs[strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")] = p
	}
	return pkgs
}

// TestImportRules keeps the arrows of DESIGN.md pointing one way: launcher → tunnel,
// launcher → remote → tokenserver, launcher → batch and remote → batch (the schedulers,
// a leaf), and nothing else between our packages.
func TestImportRules(t *testing.T) {
	pkgs := listPackages(t)
	for _, name := range []string{"launcher", "remote", "tunnel", "tokenserver", "batch", "e2e", "profile"} {
		if _, ok := pkgs[name]; !ok {
			t.Errorf("package %s is missing", name)
		}
	}
	forbidden := map[string][]string{
		"tokenserver": {module + "/"},
		"tunnel":      {module + "/"},
		// The schedulers' vocabulary: remote drives it, the launcher checks options with it.
		"batch":    {module + "/"},
		"remote":   {module + "/tunnel", module + "/launcher", "golang.org/x/crypto/ssh"},
		"launcher": {module + "/e2e"},
		// Shared leaves: what launcher and remote both need, knowing neither.
		"internal/localpeer":  {module + "/"},
		"internal/termsafe":   {module + "/"},
		"internal/didyoumean": {module + "/"},
		// Host profiles: the config file's format and rules, knowing no command;
		// the CLI gives it the flags.
		"profile": {module + "/launcher", module + "/remote", module + "/tunnel", module + "/tokenserver", module + "/e2e"},
	}
	for name, bad := range forbidden {
		p := pkgs[name]
		imports := append(append(append([]string{}, p.Deps...), p.TestImports...), p.XTestImports...)
		for _, imp := range imports {
			if imp == p.ImportPath {
				continue // the package's own external test package imports it
			}
			for _, b := range bad {
				if imp == b || strings.HasPrefix(imp, b) && (strings.HasSuffix(b, "/") || strings.HasPrefix(imp, b+"/")) {
					t.Errorf("%s imports %s, which DESIGN.md forbids", name, imp)
				}
			}
		}
	}
}

// TestPackageDocs requires a doc comment on every package, saying what it owns.
func TestPackageDocs(t *testing.T) {
	for name, p := range listPackages(t) {
		if strings.TrimSpace(p.Doc) == "" {
			t.Errorf("package %q (%s) has no doc comment", name, p.ImportPath)
		}
	}
}
