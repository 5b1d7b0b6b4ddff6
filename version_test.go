package main

import (
	"bytes"
	"context"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestBuildVersion(t *testing.T) {
	installed := &debug.BuildInfo{Main: debug.Module{Path: module, Version: "v1.2.3"}}
	checkout := &debug.BuildInfo{Main: debug.Module{Path: module, Version: "v0.0.0-20261206104015-6125dd8abcde+dirty"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "6125dd8abcdef0123"}}}
	tests := []struct {
		ldflags string
		bi      *debug.BuildInfo
		want    string
	}{
		{"v2.0.0", installed, "v2.0.0"}, // -X main.version wins
		{"dev", installed, "v1.2.3"},    // go install module@v1.2.3
		{"dev", checkout, "dev"},        // go build in a checkout: a development build
		{"dev", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "dev"},
		{"dev", nil, "dev"},
		{"", nil, "dev"},
	}
	for _, tt := range tests {
		if got := buildVersion(tt.ldflags, tt.bi); got != tt.want {
			t.Errorf("for %q and %+v, got %q; want %q", tt.ldflags, tt.bi, got, tt.want)
		}
	}
}

func TestVersionText(t *testing.T) {
	plat := runtime.GOOS + "/" + runtime.GOARCH
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"}}}
	tests := []struct {
		v, commit string
		bi        *debug.BuildInfo
		want      string
	}{
		{"v1.2.3", "fedcba9876543210fedc", bi, "tether v1.2.3\ncommit fedcba987654\ngo1.26.8 " + plat + "\n"},
		{"v1.2.3", "fedcba9876543210fedc+dirty", nil, "tether v1.2.3\ncommit fedcba987654+dirty\n" + runtime.Version() + " " + plat + "\n"},
		{"dev", "", bi, "tether dev\ncommit 0123456789ab+dirty\ngo1.26.8 " + plat + "\n"},
		{"v1.2.3", "", &debug.BuildInfo{GoVersion: "go1.26.8"}, "tether v1.2.3\ngo1.26.8 " + plat + "\n"},
	}
	for _, tt := range tests {
		if got := versionText(tt.v, tt.commit, tt.bi); got != tt.want {
			t.Errorf("for %q %q, got %q; want %q", tt.v, tt.commit, got, tt.want)
		}
	}
}

// --version prints the version text and exits 0, with or without a command, like the
// version command does; its first line is "tether VERSION", as it always was.
func TestVersionFlag(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"launch", "--version"}, {"version"}} {
		var out, errw bytes.Buffer
		code := run(context.Background(), args, &out, &errw)
		v := buildVersion(version, readBuildInfo())
		want := versionText(v, commit, readBuildInfo())
		if code != 0 || out.String() != want || errw.Len() != 0 {
			t.Errorf("for %q, got %d %q %q; want 0 %q", args, code, out.String(), errw.String(), want)
		}
		if !strings.HasPrefix(out.String(), "tether "+v+"\n") {
			t.Errorf("for %q, the first line is not \"tether %s\" (the remote probe and scripts read it): %q", args, v, out.String())
		}
	}
}
