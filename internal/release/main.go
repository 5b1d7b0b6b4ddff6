// Command release builds tether's release archives, reproducibly:
//
//	go run ./internal/release [-out dist] [-only linux/amd64,...] VERSION
//
// For each of linux/amd64, linux/arm64, darwin/amd64, darwin/arm64 and windows/amd64 it
// writes OUT/tether_VERSION_OS_ARCH.tar.gz (.zip for Windows) holding the launcher and
// README.md, and OUT/checksums.txt (sha256sum's format). Each launcher carries the
// Linux server builds it does not itself run as (both for macOS and Windows; the other
// one for Linux), compressed: it installs onto linux/amd64 and linux/arm64 remotes with
// nothing beside it (launcher/builds.go).
//
// The same source, VERSION and Go give the same bytes: -trimpath, an empty build ID,
// no VCS stamp (the commit goes in by -X main.commit), GOAMD64/GOARM64 pinned, and
// archives with fixed entry order, owners, modes and times (the commit's time, or
// SOURCE_DATE_EPOCH), written with archive/tar, archive/zip and compress/gzip, so macOS
// and GNU tar make no difference.
//
// The Linux builds reach the launcher as launcher/builds/ through go build -overlay
// (the source tree is not written); the launcher embeds them under the build tag
// tether_release.
package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// platform is a GOOS/GOARCH pair.
type platform struct{ OS, Arch string }

func (p platform) String() string { return p.OS + "/" + p.Arch }

// launchers are the platforms with a release archive.
var launchers = []platform{{"linux", "amd64"}, {"linux", "arm64"}, {"darwin", "amd64"}, {"darwin", "arm64"}, {"windows", "amd64"}}

// servers are the remote platforms every launcher installs onto with nothing beside it.
var servers = []platform{{"linux", "amd64"}, {"linux", "arm64"}}

// carried is what the launcher for p embeds: the servers it is not itself.
func carried(p platform) []platform {
	var out []platform
	for _, s := range servers {
		if s != p {
			out = append(out, s)
		}
	}
	return out
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	fs := flag.NewFlagSet("release", flag.ContinueOnError)
	out := fs.String("out", "dist", "where the archives and checksums.txt go")
	only := fs.String("only", "", "build only these launchers (comma-separated GOOS/GOARCH), e.g. for tests")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: go run ./internal/release [-out DIR] [-only linux/amd64,...] VERSION")
		fs.PrintDefaults()
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if fs.NArg() != 1 {
		fs.Usage()
		os.Exit(2)
	}
	o := options{Version: fs.Arg(0), Out: *out, Log: os.Stderr}
	if *only != "" {
		for _, s := range strings.Split(*only, ",") {
			i := slices.IndexFunc(launchers, func(p platform) bool { return p.String() == s })
			if i < 0 {
				fmt.Fprintf(os.Stderr, "release: %q is not one of the release platforms %v\n", s, launchers)
				os.Exit(2)
			}
			o.Only = append(o.Only, launchers[i])
		}
	}
	if err := release(ctx, o); err != nil {
		fmt.Fprintf(os.Stderr, "release: %v\n", err)
		os.Exit(1)
	}
}

// options are one release's inputs.
type options struct {
	Version string
	Out     string
	Only    []platform // empty: all launchers
	Root    string     // the module's directory; empty: found with go env GOMOD
	Log     io.Writer
}

// validVersion keeps the version usable in file names and ldflags.
func validVersion(v string) error {
	if v == "" || len(v) > 64 || strings.IndexFunc(v, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(".-+_", r))
	}) >= 0 {
		return fmt.Errorf("version %q: use letters, digits and . - + _ (e.g. v1.2.3)", v)
	}
	return nil
}

func release(ctx context.Context, o options) error {
	if err := validVersion(o.Version); err != nil {
		return err
	}
	if o.Root == "" {
		gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
		if err != nil || strings.TrimSpace(string(gomod)) == "" || strings.TrimSpace(string(gomod)) == os.DevNull {
			return fmt.Errorf("run it in tether's module (go env GOMOD: %v)", err)
		}
		o.Root = filepath.Dir(strings.TrimSpace(string(gomod)))
	}
	targets := o.Only
	if len(targets) == 0 {
		targets = launchers
	}
	commit, when := sourceStamp(ctx, o.Root)
	fmt.Fprintf(o.Log, "release: tether %s, commit %s, file times %s\n", o.Version, orNone(commit), when.Format(time.RFC3339))
	work, err := os.MkdirTemp("", "tether-release-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return err
	}

	// The Linux server builds the chosen launchers carry, compressed once each.
	type server struct {
		gz  []byte
		sum string
	}
	built := map[platform]server{}
	for _, t := range targets {
		for _, s := range carried(t) {
			if _, ok := built[s]; ok {
				continue
			}
			bin := filepath.Join(work, "server", "tether-"+s.OS+"-"+s.Arch)
			if err := goBuild(ctx, o, commit, s, bin, ""); err != nil {
				return err
			}
			b, err := os.ReadFile(bin)
			if err != nil {
				return err
			}
			gz, err := gzipBytes(b)
			if err != nil {
				return err
			}
			h := sha256.Sum256(b)
			built[s] = server{gz: gz, sum: hex.EncodeToString(h[:])}
			fmt.Fprintf(o.Log, "release: %s server build: %d bytes, %d compressed (%.0f%%)\n", s, len(b), len(gz), 100*float64(len(gz))/float64(len(b)))
		}
	}

	var archives []string
	for _, t := range targets {
		// What this launcher embeds, its carried builds and their sums, reaches
		// launcher/builds through an overlay: the source tree is not touched.
		embed := filepath.Join(work, "embed-"+t.OS+"-"+t.Arch)
		if err := os.MkdirAll(embed, 0o755); err != nil {
			return err
		}
		overlay := map[string]string{}
		var sums strings.Builder
		for _, s := range carried(t) {
			name := "tether-" + s.OS + "-" + s.Arch + ".gz"
			if err := os.WriteFile(filepath.Join(embed, name), built[s].gz, 0o644); err != nil {
				return err
			}
			overlay[filepath.Join(o.Root, "launcher", "builds", name)] = filepath.Join(embed, name)
			fmt.Fprintf(&sums, "%s  %s\n", built[s].sum, strings.TrimSuffix(name, ".gz"))
		}
		if err := os.WriteFile(filepath.Join(embed, "SHA256SUMS"), []byte(sums.String()), 0o644); err != nil {
			return err
		}
		overlay[filepath.Join(o.Root, "launcher", "builds", "SHA256SUMS")] = filepath.Join(embed, "SHA256SUMS")
		js, err := json.Marshal(map[string]any{"Replace": overlay})
		if err != nil {
			return err
		}
		overlayFile := filepath.Join(work, "overlay-"+t.OS+"-"+t.Arch+".json")
		if err := os.WriteFile(overlayFile, js, 0o644); err != nil {
			return err
		}
		exe := "tether"
		if t.OS == "windows" {
			exe = "tether.exe"
		}
		bin := filepath.Join(work, t.OS+"-"+t.Arch, exe)
		if err := goBuild(ctx, o, commit, t, bin, overlayFile); err != nil {
			return err
		}
		readme, err := os.ReadFile(filepath.Join(o.Root, "README.md"))
		if err != nil {
			return err
		}
		launcher, err := os.ReadFile(bin)
		if err != nil {
			return err
		}
		files := []file{{Name: exe, Mode: 0o755, Data: launcher}, {Name: "README.md", Mode: 0o644, Data: readme}}
		name := archiveName(o.Version, t)
		var data []byte
		if t.OS == "windows" {
			data, err = zipFiles(files, when)
		} else {
			data, err = tarGz(files, when)
		}
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(o.Out, name), data, 0o644); err != nil {
			return err
		}
		archives = append(archives, name)
		fmt.Fprintf(o.Log, "release: %s (launcher %d bytes, archive %d bytes)\n", filepath.Join(o.Out, name), len(launcher), len(data))
	}
	sums, err := checksums(o.Out, archives)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.Out, "checksums.txt"), sums, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(o.Log, "release: %s\n", filepath.Join(o.Out, "checksums.txt"))
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// archiveName is the archive for launcher platform p (what launcher/builds.go's
// releaseArchive names to users).
func archiveName(version string, p platform) string {
	ext := "tar.gz"
	if p.OS == "windows" {
		ext = "zip"
	}
	return fmt.Sprintf("tether_%s_%s_%s.%s", version, p.OS, p.Arch, ext)
}

// sourceStamp is the commit (with +dirty when files changed or were added) and the time the
// archives' files get: SOURCE_DATE_EPOCH when set, else the commit's time, else the
// Unix epoch. No git: no commit, the epoch.
func sourceStamp(ctx context.Context, root string) (commit string, when time.Time) {
	when = time.Unix(0, 0).UTC()
	if out, err := exec.CommandContext(ctx, "git", "-C", root, "log", "-1", "--format=%H %ct").Output(); err == nil {
		if f := strings.Fields(string(out)); len(f) == 2 {
			commit = f[0]
			if sec, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				when = time.Unix(sec, 0).UTC()
			}
			if st, err := exec.CommandContext(ctx, "git", "-C", root, "status", "--porcelain").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
				commit += "+dirty"
			}
		}
	}
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		if sec, err := strconv.ParseInt(s, 10, 64); err == nil {
			when = time.Unix(sec, 0).UTC()
		}
	}
	return commit, when
}

// goBuild builds tether for p into out: static, trimmed, reproducible. With an
// overlay (the launchers) it embeds the launcher/builds files the overlay supplies;
// without, it is a plain server build.
func goBuild(ctx context.Context, o options, commit string, p platform, out, overlay string) error {
	ldflags := "-s -w -buildid= -X main.version=" + o.Version
	if commit != "" {
		ldflags += " -X main.commit=" + commit
	}
	args := []string{"build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", out}
	if overlay != "" {
		args = append(args, "-tags", "tether_release", "-overlay", overlay)
	}
	args = append(args, ".")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = o.Root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Arch,
		"GOAMD64=v1", "GOARM64=v8.0", "GOFLAGS=-mod=readonly", "GOWORK=off")
	start := time.Now()
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build for %s: %v\n%s", p, err, b)
	}
	what := "server"
	if overlay != "" {
		what = "launcher"
	}
	fmt.Fprintf(o.Log, "release: built the %s %s in %.1fs\n", p, what, time.Since(start).Seconds())
	return nil
}

// gzipBytes compresses b as gzip -9 would, with an empty header (no name, no time).
func gzipBytes(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// file is one archive entry.
type file struct {
	Name string
	Mode int64
	Data []byte
}

// tarGz writes files, in order, as a gzip'd ustar archive owned by root:root (0:0, no
// names), every entry timed when.
func tarGz(files []file, when time.Time) ([]byte, error) {
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	for _, f := range files {
		h := &tar.Header{Typeflag: tar.TypeReg, Name: f.Name, Mode: f.Mode, Size: int64(len(f.Data)),
			ModTime: when, Format: tar.FormatUSTAR}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.Data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return gzipBytes(tb.Bytes())
}

// zipFiles writes files, in order, as a zip archive (deflate, best compression), every
// entry timed when (UTC).
func zipFiles(files []file, when time.Time) ([]byte, error) {
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(w, flate.BestCompression)
	})
	for _, f := range files {
		h := &zip.FileHeader{Name: f.Name, Method: zip.Deflate, Modified: when.UTC()}
		h.SetMode(os.FileMode(f.Mode))
		w, err := zw.CreateHeader(h)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(f.Data); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return zb.Bytes(), nil
}

// checksums is checksums.txt for the named files in dir: "SHA-256  name" lines sorted
// by name, as sha256sum prints them (sha256sum -c checksums.txt checks them).
func checksums(dir string, names []string) ([]byte, error) {
	names = slices.Clone(names)
	sort.Strings(names)
	var b bytes.Buffer
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return nil, err
		}
		h := sha256.Sum256(data)
		fmt.Fprintf(&b, "%s  %s\n", hex.EncodeToString(h[:]), n)
	}
	if b.Len() == 0 {
		return nil, errors.New("no archives")
	}
	return b.Bytes(), nil
}
