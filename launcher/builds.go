package launcher

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"runtime"
	"strings"
	"sync"

	"github.com/tether-dev/tether/internal/termsafe"
)

// Where the build a remote runs comes from, first match wins (build.payload):
//
//  1. --remote-binary FILE, whatever the remote's platform;
//  2. this executable, when the remote's platform is this one's;
//  3. tether-OS-ARCH beside this executable, or in dist/ beside it (`just cross`);
//  4. the Linux builds a release carries inside the launcher, compressed (linux/amd64
//     and linux/arm64; the Linux launchers carry the other one): sent compressed and
//     decompressed on the remote, which checks the SHA-256 of what it decompressed;
//  5. a build made once with the local Go toolchain from this version's module source,
//     kept per version in the user's cache directory (toolchain.go);
//  6. otherwise one line naming what to download or install.

// payload is one file to install on a remote: what it is called in messages, and its
// content plain and, when the release carries it so, compressed.
type payload struct {
	Name     string // a path, or "the linux/arm64 build inside this tether"
	Platform string // GOOS/GOARCH
	Size     int64  // the installed file's size
	Sum      string // its SHA-256, hex
	path     string // the file to send; "" for an embedded build

	// An embedded build: its gzip stream is read from fsys only when it is sent.
	fsys   fs.FS
	gzName string
	GzSize int64
}

// compressed is an embedded build's gzip stream; nil for a file.
func (p *payload) compressed() ([]byte, error) {
	if p.fsys == nil {
		return nil, nil
	}
	gz, err := fs.ReadFile(p.fsys, p.gzName)
	if err == nil && int64(len(gz)) != p.GzSize {
		err = fmt.Errorf("%d bytes, not %d", len(gz), p.GzSize)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.Name, err)
	}
	return gz, nil
}

// plain opens the payload's installed content; seekable, so Upload hashes it in place.
func (p *payload) plain() (io.ReadSeekCloser, error) {
	if p.fsys == nil {
		return os.Open(p.path)
	}
	gz, err := p.compressed()
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.Name, err)
	}
	b, err := io.ReadAll(io.LimitReader(zr, p.Size+1))
	if err != nil || int64(len(b)) != p.Size {
		return nil, fmt.Errorf("%s is damaged (%d of %d bytes: %v)", p.Name, len(b), p.Size, err)
	}
	return nopCloser{bytes.NewReader(b)}, nil
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// filePayload describes the local file p for platform.
func filePayload(p, platform string) (*payload, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", p)
	}
	sum, err := fileSHA256(p)
	if err != nil {
		return nil, err
	}
	return &payload{Name: p, Platform: platform, Size: fi.Size(), Sum: sum, path: p}, nil
}

// The release's builds: the launcher's package directory builds/, supplied by
// internal/release (go build -overlay) and embedded under the build tag tether_release
// (builds_release.go),
// as tether-OS-ARCH.gz and a SHA256SUMS file ("SHA-256  tether-OS-ARCH", the sums of
// the decompressed files, as sha256sum prints them).
const (
	embeddedDir  = "builds"
	embeddedSums = "SHA256SUMS"
)

// embedded lists the builds the release put inside this executable (none in any other
// build), read once; their compressed content stays in the executable until a build is
// sent. A variable for tests.
var embedded = sync.OnceValue(func() map[string]*payload {
	return readEmbedded(embeddedFS)
})

// readEmbedded reads the builds in fsys: each named in the sums file and present,
// compressed, with a trailer that gives its size.
func readEmbedded(fsys fs.FS) map[string]*payload {
	out := map[string]*payload{}
	if fsys == nil {
		return out
	}
	sums, err := fs.ReadFile(fsys, path.Join(embeddedDir, embeddedSums))
	if err != nil {
		return out
	}
	sc := bufio.NewScanner(bytes.NewReader(sums))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 || len(f[0]) != 64 || !strings.HasPrefix(f[1], "tether-") {
			continue
		}
		platform := strings.Replace(strings.TrimPrefix(f[1], "tether-"), "-", "/", 1)
		name := path.Join(embeddedDir, f[1]+".gz")
		gzSize, size, err := gzipSizes(fsys, name)
		if err != nil {
			continue
		}
		out[platform] = &payload{Name: "the " + platform + " build inside this tether", Platform: platform,
			Size: size, Sum: strings.ToLower(f[0]), fsys: fsys, gzName: name, GzSize: gzSize}
	}
	return out
}

// gzipSizes reads the size of the gzip stream in fsys at name and, from its trailer,
// of what it decompresses to (mod 2^32: every build is far below 4 GB).
func gzipSizes(fsys fs.FS, name string) (gzSize, size int64, err error) {
	f, err := fsys.Open(name)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	ra, ok := f.(io.ReaderAt)
	if !ok || st.Size() < 18 {
		return 0, 0, fmt.Errorf("%s: not a gzip stream", name)
	}
	var trailer [4]byte
	if _, err := ra.ReadAt(trailer[:], st.Size()-4); err != nil {
		return 0, 0, err
	}
	return st.Size(), int64(binary.LittleEndian.Uint32(trailer[:])), nil
}

// payload picks what to install for the remote platform of p (see the list above).
// Building with the local toolchain may take a while: it says so on the status line.
func (b *build) payload(ctx context.Context, p *probe, host string, st *status) (*payload, error) {
	if b.forced {
		return filePayload(b.Self, "")
	}
	if p.GOOS == "" || p.GOARCH == "" {
		return nil, errorf("tether runs on Linux, macOS and the BSDs (amd64, arm64, 386, arm, ppc64le, s390x, riscv64); give a build with --remote-binary FILE if you have one",
			"%s runs %s on %s, for which tether has no build", host, termsafe.Clip(termsafe.OneLine(p.OS), 40), termsafe.Clip(termsafe.OneLine(p.Arch), 40))
	}
	platform := p.GOOS + "/" + p.GOARCH
	if p.GOOS == runtime.GOOS && p.GOARCH == runtime.GOARCH {
		return filePayload(b.Self, platform)
	}
	tried := crossCandidates(b.Self, p.GOOS, p.GOARCH)
	for _, c := range tried {
		if fi, err := os.Stat(c); err == nil && fi.Mode().IsRegular() {
			return filePayload(c, platform)
		}
	}
	if e, ok := embedded()[platform]; ok {
		return e, nil
	}
	built, err := toolchainBuild(ctx, b.Version, p.GOOS, p.GOARCH, st)
	if err == nil {
		return filePayload(built, platform)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	var fail *Error
	if errors.As(err, &fail) {
		return nil, fail // the build was tried and failed: its own words
	}
	return nil, noBuildError(host, platform, b.Version, p.GOOS, p.GOARCH, tried, err)
}

// noBuildError words "no build for the remote" with the one next step that fits:
// download the release archive (which carries the Linux builds), install Go (tether
// then builds one), or build one by hand; why is what the toolchain said.
func noBuildError(host, platform, version, goos, goarch string, tried []string, why error) error {
	name := "tether-" + goos + "-" + goarch
	msg := fmt.Sprintf("%s is %s, and this tether carries no build for it (%v)", host, platform, why)
	by := fmt.Sprintf("CGO_ENABLED=0 GOOS=%s GOARCH=%s go build -o %s .", goos, goarch, name)
	if !sourceVersion(version) {
		// A development build: the source is where it was built.
		return errorf(fmt.Sprintf("build it with `just cross` (or %s) and put it beside tether, or pass --remote-binary FILE", by),
			"%s is %s but there is no %s beside this tether (looked for %s)", host, platform, name, strings.Join(tried, " and "))
	}
	if releasePlatforms[platform] {
		return errorf(fmt.Sprintf("download %s from %s (its tether carries the Linux builds), or install Go so that tether can build one", releaseArchive(version, runtime.GOOS, runtime.GOARCH), releasesURL), "%s", msg)
	}
	return errorf(fmt.Sprintf("install Go so that tether can build one, or build it (%s) and pass --remote-binary FILE", by), "%s", msg)
}

// releasePlatforms are the remote platforms every release archive's launcher carries.
var releasePlatforms = map[string]bool{"linux/amd64": true, "linux/arm64": true}

// releasesURL is where the release archives are.
const releasesURL = "https://github.com/tether-dev/tether/releases"

// releaseArchive names the release archive for a laptop of goos/goarch, as
// internal/release writes it (a .zip for Windows).
func releaseArchive(version, goos, goarch string) string {
	ext := "tar.gz"
	if goos == "windows" {
		ext = "zip"
	}
	if !sourceVersion(version) {
		version = "VERSION"
	}
	return fmt.Sprintf("tether_%s_%s_%s.%s", version, goos, goarch, ext)
}
