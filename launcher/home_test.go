package launcher

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func TestUnderHome(t *testing.T) {
	tests := []struct {
		w, home, want string
		ok            bool
	}{
		{"/Users/ann/site", "/Users/ann", "~/site", true},
		{"/Users/ann", "/Users/ann", "~", true},
		{"/Users/ann/", "/Users/ann", "~/", true},
		{"/Users/ann/a/b", "/Users/ann/", "~/a/b", true},
		{"/Users/anna/site", "/Users/ann", "", false},
		{"site", "/Users/ann", "", false},
		{"/srv/site", "/Users/ann", "", false},
		{`C:\Users\ann\site\x`, `C:\Users\ann`, "~/site/x", true},
		{"/x", "/", "", false},
		{"{port}", "/home/ann", "", false},
	}
	for _, tt := range tests {
		got, ok := underHome(tt.w, tt.home)
		if got != tt.want || ok != tt.ok {
			t.Errorf("for %q under %q, got %q %v; want %q %v", tt.w, tt.home, got, ok, tt.want, tt.ok)
		}
	}
}

func TestRemoteHome(t *testing.T) {
	t.Setenv("HOME", "/home/ann")
	var stderr bytes.Buffer
	got := remoteHome([]string{"/home/ann/site", "-m", "/srv"}, "gpu-box", &stderr)
	if want := []string{"~/site", "-m", "/srv"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q; want %q", got, want)
	}
	if !strings.Contains(stderr.String(), "tether: note: /home/ann/site is this computer's home (your shell expanded ~); gpu-box gets ~/site, your home there\n") {
		t.Errorf("note: %q", stderr.String())
	}
}
