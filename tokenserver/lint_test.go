package tokenserver

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/constant"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Secrets are compared in constant time, never with == / != or
// strings.EqualFold and friends, which stop at the first differing byte. This test
// type-checks every .go file of the module and fails on any comparison of strings (or
// an EqualFold/Compare/bytes.Equal call, or a switch) where an operand names a token,
// secret, code or password: a variable or field whose name contains "token",
// "secret", "code", "password" or "passwd", or is the word "tok", "mac" or "sig".
// Comparing with "" (is it set?) is allowed, as are constants with such names (a
// protocol name is not a secret). Files the type checker cannot see (other
// platforms' build tags) get a syntactic check: a secret-named operand against a
// non-empty string literal or another secret-named operand.
func TestNoTokenComparedWithEquals(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list -export over the module")
	}
	l := newLinter(t, moduleRoot(t))
	findings := l.lintModule(t)
	for _, f := range findings {
		t.Errorf("%s", f)
	}
	if len(findings) > 0 {
		t.Log("compare secrets with tokenserver.TokensEqual (or crypto/subtle / hmac.Equal), not == or strings.EqualFold")
	}
}

// The checker itself, on a planted example: it must catch every marked line and
// nothing else.
func TestTokenComparisonLinterCatchesPlanted(t *testing.T) {
	const src = `package planted

import (
	"bytes"
	"crypto/subtle"
	"net/http"
	"strings"
)

type creds struct{ Password, user string }

const tokenPrefix = "tc1."

func check(token, got string, secret []byte, r *http.Request, code int, c creds, loginCode string) bool {
	if got == token { // want
		return true
	}
	if token != "abc" { // want
	}
	if r.Header.Get("Authorization") == "Bearer "+token { // want
	}
	if strings.EqualFold(token, got) { // want
	}
	if bytes.Equal(secret, []byte(got)) { // want
	}
	if c.Password == got { // want
	}
	if string(secret) == got { // want
	}
	tok := r.URL.Query().Get("token")
	if tok == got { // want
	}
	switch loginCode { // want
	case "x":
	}
	if strings.Compare(got, loginCode) == 0 { // want
	}
	// Not secret comparisons:
	if token == "" || len(token) == 43 || code == 200 || c.user == got || got == tokenPrefix {
	}
	if strings.EqualFold(got, "bearer") || strings.HasPrefix(token, tokenPrefix) {
	}
	resp := &http.Response{}
	if resp.StatusCode == 200 || r.URL.Query().Get("token") == "" {
	}
	switch got {
	case "token", "secret":
	}
	return subtle.ConstantTimeCompare([]byte(token), []byte(got)) == 1
}
`
	root := moduleRoot(t)
	l := newLinter(t, root)
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "planted.go", src, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int]bool{}
	for _, fd := range l.check(fset, []*ast.File{f}, "planted") {
		got[fd.pos.Line] = true
	}
	want := map[int]bool{}
	for i, line := range strings.Split(src, "\n") {
		if strings.HasSuffix(line, "// want") {
			want[i+1] = true
		}
	}
	for line := range want {
		if !got[line] {
			t.Errorf("line %d: the linter missed a planted secret comparison", line)
		}
	}
	for line := range got {
		if !want[line] {
			t.Errorf("line %d: the linter flagged a comparison that is not of a secret", line)
		}
	}
	// The syntactic fallback, for files the type checker cannot see.
	untyped := l.checkUntyped(fset, f)
	if len(untyped) == 0 {
		t.Error("the syntactic fallback found nothing in the planted file")
	}
}

// moduleRoot walks up from this package's directory to the directory holding go.mod.
func moduleRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("no go.mod above the package directory")
		}
		dir = parent
	}
}

type linter struct {
	root    string
	exports map[string]string // import path -> export data file
}

func goList(tb testing.TB, dir string, args ...string) []byte {
	tb.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

func newLinter(tb testing.TB, root string) *linter {
	l := &linter{root: root, exports: map[string]string{}}
	out := goList(tb, root, "-e", "-export", "-deps", "-test", "-f", "{{if .Export}}{{.ImportPath}}={{.Export}}{{end}}", "./...")
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		path, file, ok := strings.Cut(sc.Text(), "=")
		if !ok || strings.Contains(path, " ") { // skip test variants "p [q.test]"
			continue
		}
		l.exports[path] = file
	}
	return l
}

func (l *linter) importer(fset *token.FileSet) types.Importer {
	return importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		file, ok := l.exports[path]
		if !ok {
			out, err := exec.Command("go", "list", "-export", "-f", "{{.Export}}", path).Output()
			if err != nil || len(bytes.TrimSpace(out)) == 0 {
				return nil, fmt.Errorf("no export data for %s", path)
			}
			file = string(bytes.TrimSpace(out))
			l.exports[path] = file
		}
		return os.Open(file)
	})
}

type listedPkg struct {
	Dir, ImportPath, Name                                        string
	GoFiles, CgoFiles, TestGoFiles, XTestGoFiles, IgnoredGoFiles []string
}

// lintModule checks every .go file under the module root (but testdata, vendor and
// hidden or underscore directories, which are not the module's code).
func (l *linter) lintModule(tb testing.TB) []string {
	out := goList(tb, l.root, "-e", "-json=Dir,ImportPath,Name,GoFiles,CgoFiles,TestGoFiles,XTestGoFiles,IgnoredGoFiles", "./...")
	dec := json.NewDecoder(bytes.NewReader(out))
	typed := map[string]bool{}
	var findings []string
	for {
		var p listedPkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			tb.Fatal(err)
		}
		groups := [][]string{append(append(slices.Clone(p.GoFiles), p.CgoFiles...), p.TestGoFiles...), p.XTestGoFiles}
		for i, names := range groups {
			if len(names) == 0 {
				continue
			}
			fset := token.NewFileSet()
			var files []*ast.File
			for _, n := range names {
				path := filepath.Join(p.Dir, n)
				f, err := parser.ParseFile(fset, path, nil, 0)
				if err != nil {
					tb.Fatal(err)
				}
				files = append(files, f)
				typed[path] = true
			}
			pkgPath := p.ImportPath
			if i == 1 {
				pkgPath += "_test"
			}
			for _, fd := range l.check(fset, files, pkgPath) {
				findings = append(findings, fd.String(l.root))
			}
		}
	}
	// Everything else: other platforms' files and anything go list did not report.
	err := filepath.WalkDir(l.root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != l.root && (name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || typed[path] {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		for _, fd := range l.checkUntyped(fset, f) {
			findings = append(findings, fd.String(l.root))
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	if len(typed) == 0 {
		tb.Fatal("the linter type-checked no file")
	}
	return findings
}

type lintFinding struct {
	pos token.Position
	msg string
}

func (f lintFinding) String(root string) string {
	name := f.pos.Filename
	if rel, err := filepath.Rel(root, name); err == nil {
		name = rel
	}
	return fmt.Sprintf("%s:%d: %s", name, f.pos.Line, f.msg)
}

// secretName reports whether an identifier names a secret.
func secretName(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"token", "secret", "code", "password", "passwd"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return slices.Contains([]string{"tok", "mac", "sig"}, n)
}

// checker functions that compare without constant time.
var variableTimeFuncs = map[string]bool{
	"strings.EqualFold": true, "strings.Compare": true,
	"bytes.Equal": true, "bytes.Compare": true, "bytes.EqualFold": true,
}

// check type-checks one package's files and reports secret comparisons.
func (l *linter) check(fset *token.FileSet, files []*ast.File, pkgPath string) []lintFinding {
	info := &types.Info{
		Types: map[ast.Expr]types.TypeAndValue{},
		Uses:  map[*ast.Ident]types.Object{},
		Defs:  map[*ast.Ident]types.Object{},
	}
	conf := types.Config{Importer: l.importer(fset), Error: func(error) {}}
	conf.Check(pkgPath, fset, files, info) // errors tolerated: partial types still help

	stringish := func(e ast.Expr) bool {
		tv, ok := info.Types[e]
		if !ok || tv.Type == nil {
			return false
		}
		b, ok := tv.Type.Underlying().(*types.Basic)
		return ok && b.Info()&types.IsString != 0
	}
	emptyConst := func(e ast.Expr) bool {
		tv, ok := info.Types[e]
		return ok && tv.Value != nil && tv.Value.Kind() == constant.String && constant.StringVal(tv.Value) == ""
	}
	names := func(e ast.Expr) bool {
		return namesSecret(e, func(id *ast.Ident) bool {
			switch info.ObjectOf(id).(type) {
			case *types.Var, nil:
				return true // variables, parameters, fields; unresolved: assume the worst
			}
			return false // constants, types, functions, packages
		})
	}
	var out []lintFinding
	flag := func(n ast.Node, msg string) {
		out = append(out, lintFinding{fset.Position(n.Pos()), msg})
	}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BinaryExpr:
				if (n.Op == token.EQL || n.Op == token.NEQ) && stringish(n.X) && stringish(n.Y) &&
					!emptyConst(n.X) && !emptyConst(n.Y) && (names(n.X) || names(n.Y)) {
					flag(n, fmt.Sprintf("a secret compared with %s; use TokensEqual", n.Op))
				}
			case *ast.CallExpr:
				if fn, ok := typeutilCallee(info, n); ok && variableTimeFuncs[fn] {
					secret, empty := false, false
					for _, a := range n.Args {
						secret = secret || names(a)
						empty = empty || emptyConst(a)
					}
					if secret && !empty {
						flag(n, fmt.Sprintf("a secret compared with %s; use TokensEqual", fn))
					}
				}
			case *ast.SwitchStmt:
				if n.Tag != nil && stringish(n.Tag) && names(n.Tag) {
					for _, s := range n.Body.List {
						for _, e := range s.(*ast.CaseClause).List {
							if !emptyConst(e) {
								flag(n, "a secret compared in a switch; use TokensEqual")
								return true
							}
						}
					}
				}
			}
			return true
		})
	}
	return out
}

// typeutilCallee returns "pkg.Func" for a call of a package-level function.
func typeutilCallee(info *types.Info, call *ast.CallExpr) (string, bool) {
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok {
		return "", false
	}
	fn, ok := info.Uses[sel.Sel].(*types.Func)
	if !ok || fn.Pkg() == nil || fn.Type().(*types.Signature).Recv() != nil {
		return "", false
	}
	return fn.Pkg().Path() + "." + fn.Name(), true
}

// namesSecret reports whether an expression holds an identifier that names a secret
// (as judged by isVar), looking through conversions and into call arguments but not
// at the names of called functions (Decode, EncodeToString).
func namesSecret(e ast.Expr, isVar func(*ast.Ident) bool) bool {
	found := false
	var walk func(ast.Node) bool
	walk = func(n ast.Node) bool {
		if found {
			return false
		}
		switch n := n.(type) {
		case *ast.CallExpr:
			for _, a := range n.Args {
				ast.Inspect(a, walk)
			}
			return false
		case *ast.FuncLit:
			return false
		case *ast.Ident:
			if secretName(n.Name) && isVar(n) {
				found = true
			}
		}
		return true
	}
	ast.Inspect(e, walk)
	return found
}

// checkUntyped is the syntactic fallback: a secret-named operand compared with a
// non-empty string literal or with another secret-named operand.
func (l *linter) checkUntyped(fset *token.FileSet, f *ast.File) []lintFinding {
	anyIdent := func(*ast.Ident) bool { return true }
	nonEmptyString := func(e ast.Expr) bool {
		b, ok := e.(*ast.BasicLit)
		return ok && b.Kind == token.STRING && b.Value != `""` && b.Value != "``"
	}
	var out []lintFinding
	ast.Inspect(f, func(n ast.Node) bool {
		be, ok := n.(*ast.BinaryExpr)
		if !ok || (be.Op != token.EQL && be.Op != token.NEQ) {
			return true
		}
		x, y := namesSecret(be.X, anyIdent), namesSecret(be.Y, anyIdent)
		if x && (y || nonEmptyString(be.Y)) || y && nonEmptyString(be.X) {
			out = append(out, lintFinding{fset.Position(be.Pos()), "a secret compared with " + be.Op.String() + " (syntactic check); use TokensEqual"})
		}
		return true
	})
	return out
}
