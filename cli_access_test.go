package main

import (
	"strings"
	"testing"
)

func TestKeyLine(t *testing.T) {
	long := strings.Repeat("k", 1025)
	tests := []struct{ in, want, err string }{
		{"a-key-of-some-length\n", "a-key-of-some-length", ""},
		{"a-key-of-some-length", "a-key-of-some-length", ""},
		{"a-key-of-some-length\r\n", "a-key-of-some-length", ""},
		{"short\n", "short", ""}, // HashKey refuses it, with the length
		{"", "", "no key on stdin"},
		{"\n", "", "no key on stdin"},
		{"a\nb\n", "", "more than one line"},
		{"a-key\n\n", "", "more than one line"},
		{"a\rb", "", "more than one line"},
		{long + "\n", long, ""}, // HashKey refuses it, with the length
		{long + "x\n", "", "stdin holds more than 1024 bytes"},
	}
	for _, tt := range tests {
		got, err := keyLine(strings.NewReader(tt.in))
		if got != tt.want || (err == nil) != (tt.err == "") || err != nil && !strings.Contains(err.Error(), tt.err) {
			t.Errorf("keyLine(%q) = %q, %v; want %q, %q", tt.in, got, err, tt.want, tt.err)
		}
	}
}
