package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// The launcher and the remote talk in data (package wire): a failure's kind, a note's
// level, the text's references to the machine and to commands. A launcher that finds
// its way by the remote's words (strings.Contains(msg, "nothing listens"), a regexp on
// "`tether ls`", TrimSuffix(msg, "; check the command and try again")) breaks silently
// the day the remote words them otherwise. TestLauncherMatchesNoRemoteProse reads the
// launcher's code for every string it matches anything against (strings and bytes
// matchers, regexps, ==, !=, switch cases) and fails when such a string is part of a
// message the remote (or wire, for it) writes.

// matchers are the functions whose string arguments are matched against text.
var matchers = map[string]map[string]bool{
	"strings": {"Contains": true, "ContainsAny": true, "HasPrefix": true, "HasSuffix": true, "TrimPrefix": true, "TrimSuffix": true,
		"CutPrefix": true, "CutSuffix": true, "Cut": true, "Index": true, "LastIndex": true, "EqualFold": true, "Replace": true,
		"ReplaceAll": true, "Count": true, "Split": true, "SplitN": true, "Trim": false},
	"bytes":  {"Contains": true, "HasPrefix": true, "HasSuffix": true, "TrimPrefix": true, "TrimSuffix": true, "Index": true, "Equal": true},
	"regexp": {"MustCompile": true, "Compile": true, "MatchString": true, "Match": true},
}

// minMatched is the shortest string that counts: shorter ones (": ", "\n", "{") are
// punctuation both sides share, not words. A single word ("RUNNING", "unsafe") is
// vocabulary (a job state, a probe state), not prose: what counts has two words.
const minMatched = 5

type lit struct {
	s   string
	pos token.Position
}

// literals returns the string literals of the non-test Go files in dirs, split at
// format verbs (%q, %s, %d…) into the fragments a message is made of.
func remoteWords(t *testing.T, dirs ...string) []lit {
	t.Helper()
	verb := regexp.MustCompile(`%[-+# 0-9.]*[a-zA-Z%]`)
	var out []lit
	for _, dir := range dirs {
		fset := token.NewFileSet()
		for _, f := range goFiles(t, fset, dir) {
			ast.Inspect(f, func(n ast.Node) bool {
				if b, ok := n.(*ast.BasicLit); ok && b.Kind == token.STRING {
					if s, err := strconv.Unquote(b.Value); err == nil {
						for _, frag := range verb.Split(s, -1) {
							if strings.TrimSpace(frag) != "" {
								out = append(out, lit{frag, fset.Position(b.Pos())})
							}
						}
					}
				}
				return true
			})
		}
	}
	return out
}

func goFiles(t *testing.T, fset *token.FileSet, dir string) []*ast.File {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no Go files in %s: %v", dir, err)
	}
	var files []*ast.File
	for _, n := range names {
		if strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, n, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	return files
}

// matchedStrings returns the string literals the files in dir match text against.
func matchedStrings(t *testing.T, dir string) []lit {
	t.Helper()
	fset := token.NewFileSet()
	var out []lit
	add := func(e ast.Expr, regex bool) {
		b, ok := e.(*ast.BasicLit)
		if !ok || b.Kind != token.STRING {
			return
		}
		s, err := strconv.Unquote(b.Value)
		if err != nil {
			return
		}
		if !regex {
			out = append(out, lit{s, fset.Position(b.Pos())})
			return
		}
		// A regexp's literal runs: what it would find in the text (character classes
		// and operators cut them).
		s = regexp.MustCompile(`\[[^\]]*\]`).ReplaceAllString(s, "|")
		for _, run := range regexp.MustCompile(`[\\^$.|?*+()\[\]{}]+`).Split(s, -1) {
			out = append(out, lit{run, fset.Position(b.Pos())})
		}
	}
	for _, f := range goFiles(t, fset, dir) {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				sel, ok := n.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				pkg, ok := sel.X.(*ast.Ident)
				if !ok || !matchers[pkg.Name][sel.Sel.Name] {
					return true
				}
				for _, a := range n.Args {
					add(a, pkg.Name == "regexp")
				}
			case *ast.BinaryExpr:
				if n.Op == token.EQL || n.Op == token.NEQ {
					add(n.X, false)
					add(n.Y, false)
				}
			case *ast.CaseClause:
				for _, e := range n.List {
					add(e, false)
				}
			}
			return true
		})
	}
	return out
}

// proseMatches lists the launcher's matched strings that are part of the remote's words.
func proseMatches(t *testing.T, launcher string, remote ...string) []string {
	words := remoteWords(t, remote...)
	var found []string
	for _, m := range matchedStrings(t, launcher) {
		s := strings.TrimFunc(m.s, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '`' })
		if len(s) < minMatched || !strings.Contains(s, " ") {
			continue
		}
		for _, w := range words {
			if strings.Contains(w.s, s) {
				found = append(found, m.pos.String()+": matches "+strconv.Quote(s)+", which "+w.pos.String()+" writes")
				break
			}
		}
	}
	return found
}

func TestLauncherMatchesNoRemoteProse(t *testing.T) {
	for _, f := range proseMatches(t, "launcher", "remote", "wire") {
		t.Error(f)
	}
}

// The check finds what it is for: the launcher as it read serve's failures before it
// had wire.Failure (testdata/prose, kept from that launcher) matches the remote's words.
func TestProseCheckFindsMatches(t *testing.T) {
	dir := t.TempDir()
	old, err := os.ReadFile(filepath.Join("testdata", "prose", "oldlauncher.go.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "old.go"), old, 0o600); err != nil {
		t.Fatal(err)
	}
	found := proseMatches(t, dir, "remote", "wire")
	for _, want := range []string{"check the command and try again", "the app's last output", "this machine", "your login shell"} {
		hit := false
		for _, f := range found {
			hit = hit || strings.Contains(f, strconv.Quote(want))
		}
		if !hit {
			t.Errorf("the old launcher's match on %q was not found; found %q", want, found)
		}
	}
}
