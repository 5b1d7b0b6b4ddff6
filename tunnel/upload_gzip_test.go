package tunnel

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func gzipped(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestUploadGzip: a file sent compressed arrives decompressed, checked against the
// SHA-256 of its content, 0700 in 0700 directories; progress counts what was sent.
func TestUploadGzip(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.dial(t, ts.config(), Options{})
	ctx := context.Background()
	// Half random, half zeros: it compresses, so sent and written sizes differ.
	data := make([]byte, 2<<20)
	rand.Read(data[:1<<20])
	gz := gzipped(t, data)
	sum := sha256.Sum256(data)
	target := filepath.Join(ts.Dir, "a b", "c'd", "tether")
	var last int64
	if err := c.UploadGzip(ctx, bytes.NewReader(gz), int64(len(gz)), hex.EncodeToString(sum[:]), target, func(n int64) { last = n }); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(target)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("content differs (%v, %d bytes)", err, len(got))
	}
	if last != int64(len(gz)) || last >= int64(len(data)) {
		t.Errorf("progress ended at %d; want the %d compressed bytes (of %d)", last, len(gz), len(data))
	}
	for _, p := range []string{target, filepath.Dir(target), filepath.Dir(filepath.Dir(target))} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v (%v); want 0700", p, fi.Mode().Perm(), err)
		}
	}

	// The SHA-256 is the decompressed content's: any other is refused, the old file
	// stays and nothing is left behind.
	other := gzipped(t, []byte("something else"))
	err = c.UploadGzip(ctx, bytes.NewReader(other), int64(len(other)), hex.EncodeToString(sum[:]), target, nil)
	var ue *UploadError
	if !errors.As(err, &ue) || !strings.Contains(ue.Stderr, "checksum mismatch") {
		t.Errorf("wrong content: got %v; want a checksum mismatch", err)
	}
	// A damaged stream is refused by gzip.
	bad := append([]byte(nil), gz...)
	bad[len(bad)/2] ^= 0xff
	if err := c.UploadGzip(ctx, bytes.NewReader(bad), int64(len(bad)), hex.EncodeToString(sum[:]), target, nil); err == nil {
		t.Errorf("a damaged stream was accepted")
	}
	if got, _ := os.ReadFile(target); !bytes.Equal(got, data) {
		t.Errorf("a refused upload changed the installed file")
	}
	assertNoTemp(t, ts.Dir)

	// What goes on the command line must be a SHA-256.
	for _, s := range []string{"", "x", strings.Repeat("A", 64), hex.EncodeToString(sum[:]) + "; rm -rf ~"} {
		if err := c.UploadGzip(ctx, bytes.NewReader(gz), int64(len(gz)), s, target, nil); err == nil || !strings.Contains(err.Error(), "not a SHA-256") {
			t.Errorf("sum %q: got %v", s, err)
		}
	}
}

// TestUploadGzipWithoutGzip: a remote without gzip gets nothing (not even the
// directories), and the error says so, so the caller can send the file plain.
func TestUploadGzipWithoutGzip(t *testing.T) {
	bin := t.TempDir() // a PATH with no gzip in it
	ts := startServer(t, func(s *Server) { s.Env = append(s.Env, "PATH="+bin) })
	c := ts.dial(t, ts.config(), Options{})
	data := []byte("tether")
	gz := gzipped(t, data)
	sum := sha256.Sum256(data)
	target := filepath.Join(ts.Dir, "new", "tether")
	err := c.UploadGzip(context.Background(), bytes.NewReader(gz), int64(len(gz)), hex.EncodeToString(sum[:]), target, nil)
	if !errors.Is(err, ErrNoGzip) {
		t.Fatalf("got %v; want ErrNoGzip", err)
	}
	if _, err := os.Lstat(filepath.Dir(target)); err == nil {
		t.Errorf("the directory was created")
	}
}
