package batch

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeRunner answers a scheduler's commands from canned outputs, keyed by the
// program and its first argument ("qstat -xml"), and records every call.
type fakeRunner struct {
	out   map[string]string
	err   map[string]error
	calls []string
}

func (f *fakeRunner) run(_ context.Context, _ []string, name string, args ...string) (string, error) {
	f.calls = append(f.calls, strings.Join(append([]string{name}, args...), " "))
	key := name
	if len(args) > 0 {
		key += " " + args[0]
	}
	return f.out[key], f.err[key]
}

func testdata(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", path))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
