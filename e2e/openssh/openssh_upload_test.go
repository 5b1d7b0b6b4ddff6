//go:build unix

package openssh

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tether-dev/tether/tunnel"

	"github.com/tether-dev/tether/e2e"
)

// TestOpenSSHUploadGzip: the OpenSSH transport sends a carried build compressed, as
// the built-in client does (the release launchers' Linux builds travel at about 41 %
// of their size), through the master, checked by the SHA-256 of what it decompresses
// to on the remote.
func TestOpenSSHUploadGzip(t *testing.T) {
	s := e2e.StartSSHD(t, e2e.SSHDOptions{})
	_, dir := e2e.OpenSSHEnv(t, s)
	t.Setenv("XDG_RUNTIME_DIR", dir)
	ctx := e2e.Context(t, time.Minute)
	c, err := tunnel.DialOpenSSH(ctx, s.Alias, tunnel.OpenSSHOptions{ConfigFile: s.Config, Persist: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	data := make([]byte, 1<<20)
	rand.Read(data[:len(data)/2]) // half random, half zeros: it compresses
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(data)
	zw.Close()
	sum := sha256.Sum256(data)
	target := filepath.Join(s.Home, ".cache", "tether", "bin", "tether-test")
	var sent int64
	if err := c.UploadGzip(ctx, bytes.NewReader(gz.Bytes()), int64(gz.Len()), hex.EncodeToString(sum[:]), target, func(n int64) { sent = n }); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(target)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the remote file differs from what was sent (%v, %d bytes)", err, len(got))
	}
	if sent != int64(gz.Len()) || sent >= int64(len(data)) {
		t.Errorf("sent %d bytes; want the %d compressed bytes (of %d)", sent, gz.Len(), len(data))
	}
	// Another file's sum is refused and the file stays as it was.
	other := sha256.Sum256([]byte("something else"))
	if err := c.UploadGzip(ctx, bytes.NewReader(gz.Bytes()), int64(gz.Len()), hex.EncodeToString(other[:]), target, nil); err == nil {
		t.Error("a stream whose content does not match the sum was accepted")
	}
	if got, _ := os.ReadFile(target); !bytes.Equal(got, data) {
		t.Error("a refused upload changed the file")
	}
}
