package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The daemons' log tails: the last lines of each file under its heading, an empty or
// absent file left out, the first of a name's alternatives that has anything.
func TestLogTails(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("a.log", "1\n2\n3\n4\n")
	write("b.log", "")
	write("b.out", "early fatal\n")
	write("c.log", "")
	got := logTails(dir, 2, "a.log", "b.log|b.out", "c.log", "missing.log")
	want := "==> a.log <==\n…\n3\n4\n==> b.out <==\nearly fatal\n"
	if got != want {
		t.Errorf("logTails:\n%s\nwant:\n%s", got, want)
	}
	if strings.Contains(got, "c.log") {
		t.Error("an empty file is shown")
	}
}
