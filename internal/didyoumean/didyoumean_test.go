package didyoumean

import (
	"reflect"
	"testing"
)

var presets = []string{"jupyter", "notebook", "code-server", "shiny", "rstudio", "tensorboard", "streamlit", "marimo", "static", "builtin"}

func TestClosest(t *testing.T) {
	tests := []struct {
		word string
		want []string
	}{
		{"jupyterlab", []string{"jupyter"}},
		{"jupyter-lab", []string{"jupyter"}},
		{"jupiter", []string{"jupyter"}},
		{"Jupyter", []string{"jupyter"}}, // case differs only: still a suggestion
		{"jup", []string{"jupyter"}},
		{"codeserver", []string{"code-server"}},
		{"vscode", nil},
		{"shinny", []string{"shiny"}},
		{"stremlit", []string{"streamlit"}},
		{"tensorbord", []string{"tensorboard"}},
		{"statc", []string{"static"}},
		{"htop", nil},
		{"python3", nil},
		{"jupyter", nil},
		{"", nil},
	}
	for _, tt := range tests {
		if got := Closest(tt.word, presets); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("for %q, got %q; want %q", tt.word, got, tt.want)
		}
	}
	hosts := []string{"gpu-box", "gpu-box2", "cluster", "login.hpc"}
	if got := Closest("gpubox", hosts); !reflect.DeepEqual(got, []string{"gpu-box"}) {
		t.Errorf("gpubox: got %q", got)
	}
	if got := Closest("clustr", hosts); !reflect.DeepEqual(got, []string{"cluster"}) {
		t.Errorf("clustr: got %q", got)
	}
}

func TestDistance(t *testing.T) {
	tests := []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"a", "", 1}, {"abc", "acb", 1}, {"kitten", "sitting", 3}, {"shiny", "shinny", 1}}
	for _, tt := range tests {
		if got := distance(tt.a, tt.b); got != tt.d {
			t.Errorf("for %q %q, got %d; want %d", tt.a, tt.b, got, tt.d)
		}
	}
}

func TestPhrase(t *testing.T) {
	if got := Phrase([]string{"a", "b", "c"}); got != "did you mean a, b or c?" {
		t.Errorf("got %q", got)
	}
	if Phrase(nil) != "" {
		t.Error("no names: want empty")
	}
}
