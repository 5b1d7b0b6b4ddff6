package termsafe

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
)

var filterTests = []struct {
	name, in, want string
}{
	{"plain text", "hello, world\n", "hello, world\n"},
	{"utf-8 text", "naïve € 日本 🙂\n", "naïve € 日本 🙂\n"},
	{"tab kept", "a\tb\n", "a\tb\n"},
	{"SGR colours kept", "\x1b[31mred\x1b[0m \x1b[1;38;5;208mbold\x1b[m\n", "\x1b[31mred\x1b[0m \x1b[1;38;5;208mbold\x1b[m\n"},
	{"SGR true colour with colons", "\x1b[38:2::10:20:30mx\x1b[0m", "\x1b[38:2::10:20:30mx\x1b[0m"},
	{"8-bit CSI SGR written 7-bit", "\u009b32mgreen\u009b0m", "\x1b[32mgreen\x1b[0m"},
	{"OSC 52 clipboard (BEL)", "a\x1b]52;c;ZXZpbA==\x07b", "ab"},
	{"OSC 52 clipboard (ST)", "a\x1b]52;c;ZXZpbA==\x1b\\b", "ab"},
	{"window title", "\x1b]0;pwned\x07\x1b]2;pwned\x1b\\ok", "ok"},
	{"OSC 8 hyperlink", "\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\", "click"},
	{"C1 OSC and ST", "a\u009d0;title\u009cb", "ab"},
	{"C1 OSC ended by BEL", "a\u009d52;c;eA==\x07b", "ab"},
	{"screen clear", "\x1b[2J\x1b[3J\x1b[Hclean", "clean"},
	{"cursor moves", "line\x1b[1A\x1b[2K\x1b[10;5Hx\x1b[5C", "linex"},
	{"private SGR-like (modifyOtherKeys)", "\x1b[>4;2mx", "x"},
	{"private mode set", "\x1b[?1049h\x1b[?25lx", "x"},
	{"CSI with intermediate", "\x1b[0 qx\x1b[!px", "xx"},
	{"DCS", "a\x1bPq#0;2;0;0;0#1!\x1b\\b", "ab"},
	{"DCS C1", "a\u0090$q m\u009cb", "ab"},
	{"APC PM SOS", "a\x1b_apc\x1b\\b\x1b^pm\x1b\\c\x1bXsos\x1b\\d", "abcd"},
	{"C1 APC", "a\u009fapc\u009cb\u009epm\u009cc\u0098sos\u009cd", "abcd"},
	{"two-byte ESC", "\x1bcreset\x1b7save\x1b8\x1bMup\x1b=k", "resetsaveupk"},
	{"charset designation", "\x1b(0lqk\x1b(B", "lqk"},
	{"DECALN", "\x1b#8x", "x"},
	{"other C1 dropped", "a\u0085b\u008dc\u0084d", "abcd"},
	{"raw 8-bit CSI byte", "a\x9b2Jb", "a\ufffd2Jb"},
	{"invalid utf-8", "a\xff\xc3b", "a\ufffd\ufffdb"},
	{"C0 controls dropped", "a\x07b\x08c\x0bd\x0ce\x00f\x7fg\x0eh\x0fi", "abcdefghi"},
	{"CR becomes LF", "50%\r100%\n", "50%\n100%\n"},
	{"CRLF is one LF", "a\r\nb\r\n", "a\nb\n"},
	{"CR CR LF", "a\r\r\nb", "a\n\nb"},
	{"backspace hiding", "rm -rf ~\x08\x08\x08\x08\x08\x08\x08\x08ls     ", "rm -rf ~ls     "},
	{"CAN aborts a CSI", "a\x1b[31\x18mb", "amb"},
	{"ESC restarts in a CSI", "a\x1b[31\x1b[32mb", "a\x1b[32mb\x1b[m"},
	{"LF inside a CSI is acted on", "a\x1b[3\n1mb", "a\n\x1b[31mb\x1b[m"},
	{"non-ASCII inside a CSI ends it", "a\x1b[3é", "aé"},
	{"string ended by ESC other than ST", "a\x1b]0;t\x1b[31mb", "a\x1b[31mb\x1b[m"},
	{"OSC ended by CAN", "a\x1b]0;t\x18b", "ab"},
	{"unterminated OSC ends with its line", "a\x1b]52;c;ZXZpbA==b\nc", "a\nc"},
	{"unterminated DCS ends with its line", "a\x1bPq#0\r\nc", "a\nc"},
	{"long SGR dropped", "\x1b[" + strings.Repeat("1;", 100) + "mx", "x"},
	{"ESC ESC", "\x1b\x1b[31mx", "\x1b[31mx\x1b[m"},
	{"ESC then control", "a\x1b\nb", "a\nb"},
	{"lone ESC at end", "a\x1b", "a"},
	{"bidi and other printable runes pass", "x\u00a0y", "x\u00a0y"},
	// Styles last to the end of their line: concealed text (SGR 8) or black on black
	// cannot hide the lines after it, tether's own messages or the shell's prompt.
	{"conceal ends with its line", "a\x1b[8mhidden\nshown\n", "a\x1b[8mhidden\x1b[m\nshown\n"},
	{"colours end with their line", "\x1b[30;40mblack\r\nnext\n", "\x1b[30;40mblack\x1b[m\nnext\n"},
	{"a style left at the end is reset", "ok\n\x1b[8m", "ok\n\x1b[8m\x1b[m"},
	{"a line reset by its own SGR 0 gets no more", "\x1b[31mred\x1b[0m\n\x1b[1mb\x1b[;m\n", "\x1b[31mred\x1b[0m\n\x1b[1mb\x1b[;m\n"},
}

func TestTermFilter(t *testing.T) {
	for _, tc := range filterTests {
		var b bytes.Buffer
		f := New(&b, true)
		if n, err := f.Write([]byte(tc.in)); n != len(tc.in) || err != nil {
			t.Errorf("%s: Write = %d, %v", tc.name, n, err)
		}
		f.Flush()
		if got := b.String(); got != tc.want {
			t.Errorf("%s: for %q, got %q; want %q", tc.name, tc.in, got, tc.want)
		}
	}
}

// Every split of every input into two writes, and the input written a byte at a time,
// give what the whole does: a sequence split across writes is still recognised.
func TestTermFilterSplitWrites(t *testing.T) {
	for _, tc := range filterTests {
		in := []byte(tc.in)
		for cut := 0; cut <= len(in); cut++ {
			var b bytes.Buffer
			f := New(&b, true)
			f.Write(in[:cut])
			f.Write(in[cut:])
			f.Flush()
			if got := b.String(); got != tc.want {
				t.Errorf("%s: split at %d of %q: got %q; want %q", tc.name, cut, tc.in, got, tc.want)
				break
			}
		}
		var b bytes.Buffer
		f := New(&b, true)
		for i := range in {
			f.Write(in[i : i+1])
		}
		f.Flush()
		if got := b.String(); got != tc.want {
			t.Errorf("%s: byte by byte %q: got %q; want %q", tc.name, tc.in, got, tc.want)
		}
	}
}

// Whatever comes in, what goes out has no ESC except to open a complete SGR sequence,
// no C0 control but \n and \t, and no C1 control.
func TestTermFilterOutputIsSafe(t *testing.T) {
	var all strings.Builder
	for _, tc := range filterTests {
		all.WriteString(tc.in)
	}
	for i := range 256 {
		all.WriteByte(byte(i))
		all.WriteString("\x1b[")
		all.WriteByte(byte(i))
		all.WriteString("\x1b]")
		all.WriteByte(byte(i))
		all.WriteString("\x07\x1bP")
		all.WriteByte(byte(i))
		all.WriteString("\x1b\\")
	}
	var b bytes.Buffer
	f := New(&b, true)
	in := all.String()
	for i := 0; i < len(in); i += 7 {
		f.Write([]byte(in[i:min(i+7, len(in))]))
	}
	f.Flush()
	out := b.String()
	for i := 0; i < len(out); i++ {
		c := out[i]
		if c == 0x1b {
			end := strings.IndexByte(out[i:], 'm')
			if end < 0 || !strings.HasPrefix(out[i:], "\x1b[") || !sgrParams([]byte(out[i+2:i+end])) {
				t.Fatalf("an ESC that opens no SGR sequence at %d: %q", i, out[i:min(i+20, len(out))])
			}
			i += end
			continue
		}
		if c < 0x20 && c != '\n' && c != '\t' || c == 0x7f {
			t.Fatalf("control %#x at %d", c, i)
		}
	}
	for _, r := range out {
		if r >= 0x80 && r < 0xa0 {
			t.Fatalf("C1 control %U in the output", r)
		}
	}
}

func TestStripControls(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"\x1b[31mred\x1b[0m", "red"},
		{"a\x1b]0;title\x07b", "ab"},
		{"x\r\ny", "x\ny"},
		{"trailing \xe2\x82", "trailing \ufffd\ufffd"},
	}
	for _, tc := range tests {
		if got := Strip(tc.in); got != tc.want {
			t.Errorf("for %q, got %q; want %q", tc.in, got, tc.want)
		}
	}
}

// A pipe or a file gets the bytes unchanged; only a terminal is filtered.
func TestTerminalSafeOnlyForTerminals(t *testing.T) {
	var b bytes.Buffer
	if w := Writer(&b); w != &b {
		t.Errorf("a buffer got %T", w)
	}
	f, err := os.CreateTemp("", "tether-termfilter-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if w := Writer(f); w != f {
		t.Errorf("a file got %T", w)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if got := Writer(w); got != w {
		t.Errorf("a pipe got %T", got)
	}
}

func BenchmarkTermFilter(b *testing.B) {
	line := []byte("[I 2025-01-02 10:00:00.000 ServerApp] \x1b[32mJupyter Server 2.14 is running at http://127.0.0.1:8888/lab\x1b[0m naïve\n")
	f := New(io.Discard, true)
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		f.Write(line)
	}
}

// TestTextHelpers: one control-character rule, one flattening, one clip for every
// package that shows or checks text from elsewhere.
func TestTextHelpers(t *testing.T) {
	for _, c := range []struct {
		in      string
		control bool
	}{{"plain text", false}, {"tab\there", true}, {"nl\n", true}, {"del\x7f", true}, {"c1\u009b2J", true}, {"é ü", false}} {
		if got := HasControl(c.in); got != c.control {
			t.Errorf("HasControl(%q) = %v; want %v", c.in, got, c.control)
		}
	}
	for in, want := range map[string]string{
		"error: \x1b]52;c;ZXZpbA==\x07bad\x1b[2J thing\r\n": "error: bad thing",
		"  a\n\tb  c\u0085 ": "a b c",
	} {
		if got := OneLine(in); got != want {
			t.Errorf("OneLine(%q) = %q; want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"  File \"x.py\", line 1\x1b[31m\x07": "  File \"x.py\", line 1",
		"a\tb\x00c":                           "a bc",
	} {
		if got := Line(in); got != want {
			t.Errorf("Line(%q) = %q; want %q", in, got, want)
		}
	}
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{{"short", 10, "short"}, {"abcdef", 3, "abc…"}, {"ééé", 3, "é…"}, {"abc", 0, "…"}} {
		if got := Clip(c.in, c.n); got != c.want {
			t.Errorf("Clip(%q, %d) = %q; want %q", c.in, c.n, got, c.want)
		}
	}
}
