package tunnel

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestHostAliases: the names spelled out in Host lines, through Include, without
// patterns; the system file too unless -F names one.
func TestHostAliases(t *testing.T) {
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, ".ssh", "conf.d"), 0o700)
	os.WriteFile(filepath.Join(home, ".ssh", "config"), []byte(
		"Host gpu-box gpu-*\n  HostName 10.0.0.1\nHost \"login.hpc\" !bad\n\nInclude conf.d/*\nHost *\n  User me\n"), 0o600)
	os.WriteFile(filepath.Join(home, ".ssh", "conf.d", "lab"), []byte("Host lab1 lab2\nHost gpu-box\n"), 0o600)
	sys := filepath.Join(home, "system_config")
	os.WriteFile(sys, []byte("Host bastion\n"), 0o600)
	got := HostAliases(ResolveOptions{Home: home, SystemConfigFile: sys})
	want := []string{"bastion", "gpu-box", "lab1", "lab2", "login.hpc"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q; want %q", got, want)
	}
	only := filepath.Join(home, "only")
	os.WriteFile(only, []byte("Host only-this\n"), 0o600)
	if got := HostAliases(ResolveOptions{ConfigFile: only, Home: home, SystemConfigFile: sys}); !reflect.DeepEqual(got, []string{"only-this"}) {
		t.Errorf("-F only: got %q", got)
	}
	if got := HostAliases(ResolveOptions{ConfigFile: filepath.Join(home, "missing"), Home: home}); len(got) != 0 {
		t.Errorf("missing file: got %q", got)
	}
}
