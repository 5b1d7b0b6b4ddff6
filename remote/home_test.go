package remote

import (
	"reflect"
	"testing"
)

func TestExpandHome(t *testing.T) {
	t.Setenv("HOME", "/home/ann")
	got := expandHome([]string{"~", "~/site", "~/", "a~/b", "~bob/x", "--dir=~/x", "{port}"})
	want := []string{"/home/ann", "/home/ann/site", "/home/ann", "a~/b", "~bob/x", "--dir=~/x", "{port}"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q; want %q", got, want)
	}
	in := []string{"python3", "-m", "http.server"}
	if got := expandHome(in); !reflect.DeepEqual(got, in) {
		t.Errorf("no ~: got %q", got)
	}
}
