//go:build unix

package remote

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestCappedLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	l, err := openCappedLog(path, 100)
	if err != nil {
		t.Fatal(err)
	}
	var all bytes.Buffer
	for i := range 200 {
		line := fmt.Sprintf("line %03d\n", i)
		all.WriteString(line)
		if n, err := l.Write([]byte(line)); n != len(line) || err != nil {
			t.Fatalf("write: %d, %v", n, err)
		}
	}
	// One write larger than the cap keeps its end.
	big := strings.Repeat("x", 250) + "END\n"
	lines := all.String()
	l.Write([]byte(big))
	l.Close()
	for _, p := range []string{path, path + ".1"} {
		fi, err := os.Stat(p)
		if err != nil || fi.Size() > 100 {
			t.Fatalf("%s: %v, size %d; want at most 100", p, err, fi.Size())
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %04o", p, fi.Mode().Perm())
		}
	}
	var got bytes.Buffer
	f, err := copyLog(&got, path)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	kept := big[len(big)-100:]
	before, ok := strings.CutSuffix(got.String(), kept)
	if !ok || !strings.HasSuffix(lines, before) {
		t.Fatalf("copyLog gave %q; want a tail of what was written", got.String())
	}
}

func TestTailLines(t *testing.T) {
	tb := newTail(64)
	fmt.Fprintf(tb, "%s\nfirst\r\n\nsecond\x1b[31mred\x07\n   \nthird\n", strings.Repeat("z", 100))
	got := tb.Lines(2)
	if len(got) != 2 || got[0] != "secondred" || got[1] != "third" {
		t.Fatalf("got %q", got)
	}
	if all := tb.Lines(10); len(all) > 4 {
		t.Fatalf("the tail kept more than its 64 bytes: %q", all)
	}
}

func TestFollowLogAcrossRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	l, err := openCappedLog(path, 64)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Write([]byte("before\n"))
	var out syncBuffer
	finished := make(chan struct{})
	var stop atomic.Bool
	done := stop.Load
	go func() {
		followLog(context.Background(), &out, path, done)
		close(finished)
	}()
	waitUntil(t, 5*time.Second, "the existing log", func() bool { return strings.Contains(out.String(), "before") })
	for i := range 20 {
		fmt.Fprintf(l, "line %02d\n", i) // 8 bytes each: several rotations
		time.Sleep(15 * time.Millisecond)
	}
	waitUntil(t, 5*time.Second, "the last line", func() bool { return strings.Contains(out.String(), "line 19") })
	stop.Store(true)
	select {
	case <-finished:
	case <-time.After(5 * time.Second):
		t.Fatal("followLog did not end")
	}
	// Lines may be lost only if several rotations pass between two polls; at this
	// pace every line arrives, in order.
	last := -1
	for _, ln := range strings.Split(out.String(), "\n") {
		var n int
		if _, err := fmt.Sscanf(ln, "line %d", &n); err == nil {
			if n != last+1 {
				t.Fatalf("line %d after %d in:\n%s", n, last, out.String())
			}
			last = n
		}
	}
}
