//go:build unix

package remote

import (
	"bytes"
	"strings"
	"testing"
)

// Issue 11 item 7(a): the job's output file is Slurm's, which tether cannot rotate, so
// what the job's server writes there is capped: the cap, then one line saying where
// the rest is, then nothing.
func TestJobOutputCapped(t *testing.T) {
	var file bytes.Buffer
	w := newJobOutput(&file, 4096, "/home/u/.cache/tether/slurm/abc")
	line := []byte(strings.Repeat("x", 127) + "\n")
	for range 10_000 {
		if n, err := w.Write(line); n != len(line) || err != nil {
			t.Fatalf("Write: %d, %v; want %d, nil (the writer never fails its caller)", n, err, len(line))
		}
	}
	got := file.String()
	if !strings.HasPrefix(got, strings.Repeat(string(line), 32)) {
		t.Errorf("the first 4096 bytes are not what was written")
	}
	note := "tether: the job's output file reached its cap (4 KiB); the rest is only in the session's logs in /home/u/.cache/tether/slurm/abc (`tether logs`)\n"
	if !strings.HasSuffix(got, note) || len(got) != 4096+1+len(note) {
		t.Errorf("after 1.28 MB written, the file holds %d bytes ending %q; want the cap, then the note", len(got), got[max(0, len(got)-200):])
	}
}
