package main

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/alecthomas/kong"
)

// buildVersion is the version this build reports and names its remote installs with:
// what `-ldflags -X main.version=…` set (a release, `just build`), else the module
// version that `go install github.com/tether-dev/tether@v1.2.3` recorded, else "dev".
func buildVersion(ldflags string, bi *debug.BuildInfo) string {
	if ldflags != "" && ldflags != "dev" {
		return ldflags
	}
	if bi != nil && bi.Main.Version != "" && bi.Main.Version != "(devel)" && vcsSetting(bi, "vcs.revision") == "" {
		// A checkout's own `go build` stamps a pseudo-version too, but also its VCS
		// revision: that is a development build, not a module version.
		return bi.Main.Version
	}
	return "dev"
}

// commit is set by the release build: -ldflags "-X main.commit=$(git rev-parse HEAD)"
// (with a "+dirty" suffix for uncommitted changes). The release does not rely on Go's
// own VCS stamping, which a git worktree or GOFLAGS=-buildvcs=false turn off: the same
// commit then gives the same bytes from any checkout.
var commit string

// versionText is what `tether --version` and `tether version` print: "tether VERSION"
// on the first line, as before (scripts and the remote probe read it), then the commit
// it was built from, when the build recorded one, and the Go that built it with the
// platform.
func versionText(v, commit string, bi *debug.BuildInfo) string {
	var b strings.Builder
	fmt.Fprintf(&b, "tether %s\n", v)
	rev, dirty := commit, ""
	if rev == "" {
		rev = vcsSetting(bi, "vcs.revision")
		if vcsSetting(bi, "vcs.modified") == "true" {
			dirty = "+dirty"
		}
	}
	if r, ok := strings.CutSuffix(rev, "+dirty"); ok {
		rev, dirty = r, "+dirty"
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		fmt.Fprintf(&b, "commit %s%s\n", rev, dirty)
	}
	goVersion := runtime.Version()
	if bi != nil && bi.GoVersion != "" {
		goVersion = bi.GoVersion
	}
	fmt.Fprintf(&b, "%s %s/%s\n", goVersion, runtime.GOOS, runtime.GOARCH)
	return b.String()
}

func vcsSetting(bi *debug.BuildInfo, key string) string {
	if bi == nil {
		return ""
	}
	for _, s := range bi.Settings {
		if s.Key == key {
			return s.Value
		}
	}
	return ""
}

// readBuildInfo is debug.ReadBuildInfo, nil when the binary has none.
func readBuildInfo() *debug.BuildInfo {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return nil
	}
	return bi
}

// errVersionShown ends the parse after --version printed the version: exit 0.
var errVersionShown = errors.New("version shown")

// versionFlag is --version: it prints the version text and stops, whatever else the
// command line holds (kong's own VersionFlag would call os.Exit below main).
type versionFlag bool

// BeforeReset prints the version text.
func (versionFlag) BeforeReset(app *kong.Kong, vars kong.Vars) error {
	fmt.Fprint(app.Stdout, vars["versiontext"])
	return errVersionShown
}
