package main

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
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

// textLeaves are the small shared leaves for text that any package may use: one
// definition of a control character, one way to flatten and clip a line, one shell
// quoting rule. They import nothing of ours.
var textLeaves = []string{"internal/termsafe", "internal/shquote"}

// TestImportRules keeps the arrows of DESIGN.md pointing one way: launcher → tunnel,
// launcher → wire ← remote → tokenserver, both sides → batch (the schedulers, a leaf),
// and nothing else between our packages: the launcher and the remote share the
// vocabulary of what crosses SSH (wire) and nothing of each other. Each package lists
// the packages of ours it may depend on (directly or not, tests included); anything
// else is an error.
func TestImportRules(t *testing.T) {
	pkgs := listPackages(t)
	for _, name := range []string{"launcher", "remote", "wire", "tunnel", "tokenserver", "batch", "e2e", "profile", "relay", "host"} {
		if _, ok := pkgs[name]; !ok {
			t.Errorf("package %s is missing", name)
		}
	}
	allowed := map[string][]string{
		// The gate knows nothing of tether's other parts.
		"tokenserver": nil,
		// SSH: knows nothing of the CLI or of the remote side.
		"tunnel": textLeaves,
		// The schedulers' vocabulary: remote drives it, the launcher checks options with it.
		"batch": textLeaves,
		// The vocabulary both sides speak: only leaves (the gate's rules for tokens, base
		// URLs and Host names; the scheduler's job).
		"wire": append([]string{"tokenserver", "batch"}, textLeaves...),
		// remote wires a team server: the access policy (package access) into the gate.
		"remote":   append([]string{"wire", "tokenserver", "access", "batch", "internal/localpeer", "internal/didyoumean", "internal/stripe"}, textLeaves...),
		"launcher": append([]string{"wire", "tunnel", "tokenserver", "batch", "internal/localpeer", "internal/didyoumean", "internal/stripe"}, textLeaves...),
		// Shared leaves: what launcher and remote both need, knowing neither.
		"internal/localpeer":  nil,
		"internal/termsafe":   nil,
		"internal/shquote":    nil,
		"internal/didyoumean": nil,
		// One stream over several SSH channels (past one channel's window per round
		// trip): the launcher dials the stripes, the remote gate joins them; it knows
		// neither.
		"internal/stripe": nil,
		// A team server's access policy (keys, OIDC, rights): knows no command and no
		// gate (remote hands it to the gate as a tokenserver.Team); the text leaves for
		// clipping a hostile value in an error, as everyone else does.
		"access": append([]string{"internal/didyoumean"}, textLeaves...),
		// Host profiles: the config file's format and rules, knowing no command;
		// the CLI gives it the flags.
		"profile": textLeaves,
		// The relay (router, tokens, stream ends): launcher and host use it; it knows
		// neither, nor SSH; only the text leaves.
		"relay": textLeaves,
		// tether host: this machine offered through a relay, its SSH server being
		// tunnel's and its streams relay's; no launcher, no remote side.
		"host": append([]string{"tunnel", "relay"}, textLeaves...),
	}
	for name, ok := range allowed {
		p, found := pkgs[name]
		if !found {
			t.Errorf("package %s is missing", name)
			continue
		}
		imports := append(append(append([]string{}, p.Deps...), p.TestImports...), p.XTestImports...)
		for _, imp := range imports {
			rel, ours := strings.CutPrefix(imp, module+"/")
			if !ours || imp == p.ImportPath || slices.Contains(ok, rel) {
				continue
			}
			t.Errorf("%s depends on %s, which DESIGN.md forbids", name, rel)
		}
	}
	// The remote side never speaks SSH itself.
	for _, imp := range pkgs["remote"].Deps {
		if imp == "golang.org/x/crypto/ssh" || strings.HasPrefix(imp, "golang.org/x/crypto/ssh/") {
			t.Errorf("remote depends on %s, which DESIGN.md forbids", imp)
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
