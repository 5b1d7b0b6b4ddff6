package shquote

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

var quoteCases = []string{
	"", "plain", "with space", "  lead and trail  ", "it's", `double "quotes"`, "$HOME", "$(id)",
	"`id`", "back\\slash", "new\nline", "tab\there", "*", "?", "[a]", "~", "a;b", "a|b", "a&b",
	"-n", "--", "A=1", "'", "''", `\'`, "é ünïcödé", "#comment", "!bang", "{a,b}", "%s",
}

// TestQuoteRoundTrip runs every case through a real /bin/sh: each word comes back as
// it was, and a word shaped like an assignment stays a word.
func TestQuoteRoundTrip(t *testing.T) {
	if _, err := exec.LookPath("/bin/sh"); err != nil {
		t.Skip("no /bin/sh here")
	}
	argv := append([]string{"printf", `%s\000`}, quoteCases...)
	want := strings.Join(quoteCases, "\x00") + "\x00"
	out, err := exec.Command("/bin/sh", "-c", Join(argv)).Output()
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != want {
		t.Fatalf("got %q\nwant %q", out, want)
	}
	for _, s := range quoteCases {
		out, err := exec.Command("/bin/sh", "-c", "printf %s "+Quote(s)).Output()
		if err != nil || string(out) != s {
			t.Errorf("for %q, got %q (%v); want it back", s, out, err)
		}
	}
	if err := exec.Command("/bin/sh", "-c", Join([]string{"A=1", "true"})).Run(); err == nil {
		t.Error("A=1 in command position was taken as an assignment")
	}
}

func ExampleJoin() {
	fmt.Println(Join([]string{"jupyter", "lab", "--port={port}", "it's", ""}))
	// Output: jupyter lab '--port={port}' 'it'\''s' ''
}
