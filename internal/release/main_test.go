package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var sample = []file{{Name: "tether", Mode: 0o755, Data: bytes.Repeat([]byte("binary "), 5000)}, {Name: "README.md", Mode: 0o644, Data: []byte("# tether\n")}}

// The same files and time give the same bytes; a tar entry is owned by 0:0 with the
// given mode and time, in the given order; gzip's header has no name and no time.
func TestTarGzIsReproducible(t *testing.T) {
	when := time.Unix(1765000000, 0)
	a, err := tarGz(sample, when)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // a clock tick the archive must not see
	b, _ := tarGz(sample, when)
	if !bytes.Equal(a, b) {
		t.Fatal("two runs differ")
	}
	zr, err := gzip.NewReader(bytes.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	if zr.Name != "" || !zr.ModTime.IsZero() {
		t.Errorf("gzip header: name %q, time %v; want none", zr.Name, zr.ModTime)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		want := sample[len(names)-1]
		data, _ := io.ReadAll(tr)
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" || h.Mode != want.Mode || !h.ModTime.Equal(when) || !bytes.Equal(data, want.Data) {
			t.Errorf("%s: uid %d gid %d %q %q mode %o time %v; want 0 0, mode %o, %v, the content", h.Name, h.Uid, h.Gid, h.Uname, h.Gname, h.Mode, h.ModTime, want.Mode, when)
		}
	}
	if !reflect.DeepEqual(names, []string{"tether", "README.md"}) {
		t.Errorf("entries %v", names)
	}
	if c, _ := tarGz(sample, when.Add(time.Second)); bytes.Equal(a, c) {
		t.Errorf("the time is not in the archive")
	}
}

func TestZipIsReproducible(t *testing.T) {
	when := time.Unix(1765000000, 0)
	a, err := zipFiles(sample, when)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := zipFiles(sample, when)
	if !bytes.Equal(a, b) {
		t.Fatal("two runs differ")
	}
	zr, err := zip.NewReader(bytes.NewReader(a), int64(len(a)))
	if err != nil {
		t.Fatal(err)
	}
	if len(zr.File) != 2 {
		t.Fatalf("%d entries", len(zr.File))
	}
	for i, f := range zr.File {
		rc, _ := f.Open()
		data, _ := io.ReadAll(rc)
		if f.Name != sample[i].Name || f.Mode().Perm() != os.FileMode(sample[i].Mode) || !f.Modified.Equal(when) || !bytes.Equal(data, sample[i].Data) {
			t.Errorf("%s: mode %v, time %v", f.Name, f.Mode(), f.Modified)
		}
	}
}

// checksums.txt is what sha256sum prints for the archives, sorted by name.
func TestChecksums(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "b.zip"), []byte("b"), 0o644)
	os.WriteFile(filepath.Join(dir, "a.tar.gz"), []byte("a"), 0o644)
	got, err := checksums(dir, []string{"b.zip", "a.tar.gz"})
	want := "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb  a.tar.gz\n" +
		"3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d  b.zip\n"
	if err != nil || string(got) != want {
		t.Errorf("got %q, %v; want %q", got, err, want)
	}
}

// Every launcher installs onto linux/amd64 and linux/arm64: itself, or a build it carries.
func TestEveryLauncherReachesBothLinuxPlatforms(t *testing.T) {
	for _, l := range launchers {
		reach := map[platform]bool{l: true}
		for _, s := range carried(l) {
			reach[s] = true
		}
		for _, s := range servers {
			if !reach[s] {
				t.Errorf("the %s launcher does not reach %s", l, s)
			}
		}
		if (l.OS == "linux") != (len(carried(l)) == 1) {
			t.Errorf("the %s launcher carries %v", l, carried(l))
		}
	}
	if got := archiveName("v1.2.3", platform{"windows", "amd64"}); got != "tether_v1.2.3_windows_amd64.zip" {
		t.Errorf("windows archive: %q", got)
	}
	if got := archiveName("v1.2.3", platform{"darwin", "arm64"}); got != "tether_v1.2.3_darwin_arm64.tar.gz" {
		t.Errorf("darwin archive: %q", got)
	}
}

func TestValidVersion(t *testing.T) {
	for v, ok := range map[string]bool{"v1.2.3": true, "v1.3.0-rc.1+x_y": true, "": false, "v1 2": false, "v1;rm": false, "../v1": false, strings.Repeat("v", 65): false} {
		if err := validVersion(v); (err == nil) != ok {
			t.Errorf("for %q, got %v", v, err)
		}
	}
}
