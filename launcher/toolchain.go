package launcher

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/tether-dev/tether/internal/termsafe"
)

// A tether without the build a remote needs (a `go install`ed one: it carries no
// Linux builds) makes it with the local Go toolchain, once per version and platform:
// the module source of this very version, from the module cache (where `go install`
// left it) or the module proxy, built with CGO_ENABLED=0 (a static binary: the remote's
// libc never matters) and kept in the user's cache directory.

// modulePath is tether's module, whose source the toolchain builds.
const modulePath = "github.com/tether-dev/tether"

// buildTimeout bounds one build with the local toolchain (a cold build of tether and
// its dependencies takes about a minute on a laptop).
var buildTimeout = 10 * time.Minute

var (
	moduleVersionRE = regexp.MustCompile(`^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$`)
	describeRE      = regexp.MustCompile(`-[0-9]+-g[0-9a-f]{4,}(-dirty)?$`)
)

// sourceVersion reports whether version names module source that `go mod download`
// can fetch: a tag (v1.2.3, v1.3.0-rc.1) or the module version of a `go install`.
// "dev", git describe's v1.2.3-4-gabcdef0(-dirty) and +dirty builds name no source.
func sourceVersion(version string) bool {
	return moduleVersionRE.MatchString(version) && !describeRE.MatchString(version) && !strings.Contains(version, "dirty")
}

// buildCacheDir is where builds of version are kept: tether/build/VERSION in the user's
// cache directory (on Linux $XDG_CACHE_HOME or ~/.cache, on macOS ~/Library/Caches, on
// Windows %LocalAppData%).
func buildCacheDir(version string) (string, error) {
	dir, err := userCacheDir(runtime.GOOS, os.Getenv)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "tether", "build", safeVersion(version)), nil
}

// userCacheDir is os.UserCacheDir for goos, so that every platform's answer is tested
// on any (TestUserCacheDir checks it against os.UserCacheDir on the platform it runs).
func userCacheDir(goos string, getenv func(string) string) (string, error) {
	var dir string
	switch goos {
	case "windows":
		if dir = getenv("LocalAppData"); dir == "" {
			return "", errors.New("%LocalAppData% is not defined")
		}
	case "darwin", "ios":
		if dir = getenv("HOME"); dir == "" {
			return "", errors.New("$HOME is not defined")
		}
		dir += "/Library/Caches"
	case "plan9":
		if dir = getenv("home"); dir == "" {
			return "", errors.New("$home is not defined")
		}
		dir += "/lib/cache"
	default:
		if dir = getenv("XDG_CACHE_HOME"); dir == "" {
			if dir = getenv("HOME"); dir == "" {
				return "", errors.New("neither $XDG_CACHE_HOME nor $HOME is defined")
			}
			dir += "/.cache"
		} else if !filepath.IsAbs(dir) {
			return "", errors.New("path in $XDG_CACHE_HOME is relative")
		}
	}
	return dir, nil
}

// cachedBuilds lists the builds of version made earlier (for the probe's sums: the
// remote may hold one of them).
func cachedBuilds(version string) []string {
	if !sourceVersion(version) {
		return nil
	}
	dir, err := buildCacheDir(version)
	if err != nil {
		return nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if e.Type().IsRegular() && strings.HasPrefix(e.Name(), "tether-") && !strings.Contains(e.Name(), ".tmp-") {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}

var errNoGo = errors.New("Go is not installed here")

// toolchainBuild returns the build of version for goos/goarch from the cache, or makes
// it with the local Go toolchain, saying so on st. An error of type *Error is a build
// that was tried and failed (its own words for the user); any other says why none could
// be tried (a development build, no Go).
func toolchainBuild(ctx context.Context, version, goos, goarch string, st *status) (string, error) {
	if !sourceVersion(version) {
		return "", fmt.Errorf("version %q names no module source", version)
	}
	dir, err := buildCacheDir(version)
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "tether-"+goos+"-"+goarch)
	if fi, err := os.Stat(out); err == nil && fi.Mode().IsRegular() {
		return out, nil
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", errNoGo
	}
	ctx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()
	platform := goos + "/" + goarch
	st.step("building tether %s for %s with the local Go toolchain (once: it is kept in %s)", version, platform, dir)
	start := time.Now()
	fail := func(what string, err error, output []byte) error {
		st.done()
		if ctx.Err() != nil && context.Cause(ctx) != context.DeadlineExceeded {
			return ctx.Err()
		}
		detail := lastLine(output)
		if detail == "" {
			detail = err.Error()
		}
		instead := fmt.Sprintf("build it by hand (CGO_ENABLED=0 GOOS=%s GOARCH=%s go build) and pass --remote-binary FILE", goos, goarch)
		if releasePlatforms[platform] {
			instead = fmt.Sprintf("download %s from %s (its tether carries the Linux builds)", releaseArchive(version, runtime.GOOS, runtime.GOARCH), releasesURL)
		}
		return &Error{Msg: fmt.Sprintf("building tether %s for %s with the local Go toolchain failed: %s: %s", version, platform, what, termsafe.Clip(detail, 200)),
			Hint: fmt.Sprintf("check that `go mod download %s@%s` works here, or %s", modulePath, version, instead),
			Err:  err}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fail("the cache directory", err, nil)
	}
	stop := tick(st, func(el time.Duration) {
		st.update("building tether %s for %s with the local Go toolchain: %ds", version, platform, int(el.Seconds()))
	})
	defer stop()

	// The source: where `go install` left it, or from the module proxy.
	dl := exec.CommandContext(ctx, goBin, "mod", "download", "-json", modulePath+"@"+version)
	dl.Dir = dir // outside any module
	dl.Env = append(os.Environ(), "GOWORK=off")
	dl.WaitDelay = 5 * time.Second
	var dlErr bytes.Buffer
	dl.Stderr = &dlErr
	raw, err := dl.Output()
	var mod struct{ Dir, Error string }
	if jerr := json.Unmarshal(raw, &mod); err != nil || jerr != nil || mod.Dir == "" {
		if mod.Error != "" {
			dlErr.Reset()
			dlErr.WriteString(mod.Error)
		}
		if err == nil {
			err = errors.New("no source directory")
		}
		return "", fail("fetching its source", err, dlErr.Bytes())
	}

	var nonce [6]byte
	rand.Read(nonce[:])
	tmp := out + ".tmp-" + hex.EncodeToString(nonce[:])
	defer os.Remove(tmp)
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-ldflags", "-s -w -X main.version="+version, "-o", tmp, ".")
	cmd.Dir = mod.Dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch, "GOWORK=off", "GOFLAGS=-mod=readonly")
	cmd.WaitDelay = 5 * time.Second
	if output, err := cmd.CombinedOutput(); err != nil {
		return "", fail("go build", err, output)
	}
	if err := os.Rename(tmp, out); err != nil {
		return "", fail("keeping the build", err, nil)
	}
	stop()
	st.update("building tether %s for %s with the local Go toolchain: done in %.1fs", version, platform, time.Since(start).Seconds())
	st.done()
	return out, nil
}

// tick calls fn with the time elapsed, every second, until stop.
func tick(st *status, fn func(time.Duration)) (stop func()) {
	start := time.Now()
	t := time.NewTicker(time.Second)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-t.C:
				fn(time.Since(start))
			case <-done:
				return
			}
		}
	}()
	var once bool
	return func() {
		if !once {
			once = true
			t.Stop()
			close(done)
			<-finished
		}
	}
}

// lastLine is the last non-empty line of out, on one line.
func lastLine(out []byte) string {
	ls := strings.Split(strings.TrimSpace(string(out)), "\n")
	return termsafe.OneLine(strings.TrimSpace(ls[len(ls)-1]))
}
