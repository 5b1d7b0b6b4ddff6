//go:build unix

package remote

import (
	"os"
	"testing"
	"time"

	"github.com/tether-dev/tether/wire"
)

// TestWatchParent: a starting background server learns within a beat that nobody
// reads its ready pipe any more (its parent was killed), and stops watching once it
// has reported.
func TestWatchParent(t *testing.T) {
	old := parentBeat
	parentBeat = 20 * time.Millisecond
	t.Cleanup(func() { parentBeat = old })
	pipeReporterFor := func() (*pipeReporter, *os.File) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		p, err := newPipeReporter(int(w.Fd()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.close(); w.Close(); r.Close() })
		return p, r
	}

	p, r := pipeReporterFor()
	gone := make(chan struct{})
	p.watchParent(func() { close(gone) })
	select {
	case <-gone:
		t.Fatal("gone while the parent still reads the pipe")
	case <-time.After(200 * time.Millisecond):
	}
	r.Close() // the parent dies
	select {
	case <-gone:
	case <-time.After(5 * time.Second):
		t.Fatal("a ready pipe without a reader went unnoticed")
	}

	// Once ready was sent, the parent may go: nothing is cancelled.
	p2, r2 := pipeReporterFor()
	called := make(chan struct{}, 1)
	p2.watchParent(func() { called <- struct{}{} })
	p2.ready(wire.Record{ID: "abcdefgh"})
	r2.Close()
	select {
	case <-called:
		t.Fatal("a server that reported ready was told its parent is gone")
	case <-time.After(200 * time.Millisecond):
	}
}
