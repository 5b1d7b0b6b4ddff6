// Package termsafe keeps what a remote machine prints from driving the terminal it is
// shown on: only text, newlines, tabs and SGR colours pass. The launcher filters what
// it copies from the remote (tether logs/ls/stop HOST, the app's output, messages), and
// the remote's own `tether logs` filters an app's log on a terminal.
package termsafe

import (
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"golang.org/x/term"
)

// What the remote prints reaches the user's terminal only through Filter: whoever
// controls the remote (a hostile app, another user who got into its output) must not
// drive the terminal. Escape sequences can set the window title, write the clipboard
// (OSC 52), clear the screen or move the cursor to overwrite what tether printed, and
// make the terminal answer queries into its own input. Only text, newlines, tabs and SGR
// colour and style sequences (CSI … m) pass.
//
// Colours and styles last to the end of their line: the filter resets them before each
// newline, and at the end (Flush), when a sequence other than a reset set them. So text
// concealed (SGR 8) or drawn black on black hides nothing beyond its own line: not the
// next lines of a log, nor tether's own messages after it, nor the shell's prompt.
//
// Carriage returns become newlines (a CRLF is one newline): a lone \r lets a line be
// overwritten to hide what it said, yet progress bars print them; as newlines nothing is
// hidden and nothing is lost. Backspace, which can erase text as \r can, is dropped
// with the other C0 controls. Bytes that are not UTF-8 become U+FFFD, so no 8-bit C1
// control (0x9b is CSI) gets through either.
//
// The parser follows the terminals' own (ECMA-48, DEC's VT500 state machine): CSI,
// OSC, DCS, SOS, PM and APC and two- or three-byte ESC sequences are removed whole, in
// their 7-bit and C1 forms, even when split across writes. What it lets out never
// leaves a terminal inside a sequence: a sequence is written only whole. A string
// (OSC …) with no terminator ends at the end of its line, so it cannot swallow the rest
// of a log.

type filterState uint8

const (
	fGround    filterState = iota
	fEsc                   // after ESC
	fEscInter              // ESC and intermediate bytes (ESC ( B …)
	fCSI                   // collecting a CSI's parameters
	fCSIIgnore             // in a CSI that will be dropped (intermediates, too long)
	fString                // in an OSC, DCS, SOS, PM or APC string: dropped until its end
	fStringEsc             // ESC inside a string: ST (ESC \) or a new sequence
)

// maxSGR bounds the parameters of a colour sequence that is kept (true colour for
// foreground and background needs about 40 bytes).
const maxSGR = 128

type Filter struct {
	w       io.Writer
	keepSGR bool
	state   filterState
	params  []byte // the current CSI's parameter bytes
	partial []byte // an incomplete UTF-8 sequence at the end of the last write
	afterCR bool   // the last rune was \r (written as \n): a \n now is part of it
	styled  bool   // an SGR other than a reset was written since the last reset
	out     []byte
}

// New returns a filter writing to w; keepSGR keeps colour sequences.
func New(w io.Writer, keepSGR bool) *Filter {
	return &Filter{w: w, keepSGR: keepSGR}
}

// Writer is w itself, unless w is a terminal: then remote output written to it is
// filtered (colours kept). Pipes and files get the bytes unchanged.
func Writer(w io.Writer) io.Writer {
	if IsTerminal(w) {
		return New(w, true)
	}
	return w
}

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Strip returns s without escape sequences and control characters other than
// \n and \t (\r becomes \n): what tether shows of remote text in its own lines.
func Strip(s string) string {
	if !needsStrip(s) {
		return s
	}
	var b strings.Builder
	f := New(&b, false)
	io.WriteString(f, s)
	f.Flush()
	return b.String()
}

// needsStrip is false for plain printable ASCII (with \n and \t), the common case.
func needsStrip(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x7f || c < 0x20 && c != '\n' && c != '\t' {
			return true
		}
	}
	return false
}

// Write filters p. It always consumes all of p; the error is the underlying writer's.
func (f *Filter) Write(p []byte) (int, error) {
	data := p
	if len(f.partial) > 0 {
		data = append(f.partial, p...)
		f.partial = nil
	}
	f.out = f.out[:0]
	for i := 0; i < len(data); {
		c := data[i]
		if f.state == fGround && c >= 0x20 && c < 0x7f {
			j := i + 1
			for j < len(data) && data[j] >= 0x20 && data[j] < 0x7f {
				j++
			}
			f.out = append(f.out, data[i:j]...)
			f.afterCR = false
			i = j
			continue
		}
		if c < utf8.RuneSelf {
			f.rune(rune(c))
			i++
			continue
		}
		if !utf8.FullRune(data[i:]) {
			f.partial = append([]byte(nil), data[i:]...)
			break
		}
		r, size := utf8.DecodeRune(data[i:])
		f.rune(r) // an invalid byte is utf8.RuneError, size 1
		i += size
	}
	if len(f.out) == 0 {
		return len(p), nil
	}
	if _, err := f.w.Write(f.out); err != nil {
		return len(p), err
	}
	return len(p), nil
}

// Flush ends the input: an incomplete UTF-8 sequence left over is written as U+FFFD,
// and colours or styles still set are reset.
func (f *Filter) Flush() {
	f.out = f.out[:0]
	for range f.partial {
		f.rune(utf8.RuneError)
	}
	f.partial = nil
	if f.styled {
		f.out = append(f.out, resetSGR...)
		f.styled = false
	}
	if len(f.out) > 0 {
		f.w.Write(f.out)
	}
}

const resetSGR = "\x1b[m"

func isC1(r rune) bool { return r >= 0x80 && r < 0xa0 }

func (f *Filter) rune(r rune) {
	cr := f.afterCR
	f.afterCR = false
	switch f.state {
	case fGround:
		f.ground(r, cr)
	case fEsc:
		f.esc(r, cr)
	case fEscInter:
		switch {
		case r >= 0x20 && r <= 0x2f:
		case r >= 0x30 && r <= 0x7e:
			f.state = fGround
		case r == 0x1b:
			f.state = fEsc
		default:
			f.state = fGround
			f.ground(r, cr)
		}
	case fCSI, fCSIIgnore:
		f.csi(r, cr)
	case fString:
		switch {
		case r == 0x07 || r == 0x18 || r == 0x1a || r == 0x9c:
			f.state = fGround
		case r == '\n' || r == '\r':
			// Terminals would go on, but nothing of the string was written, so ending it
			// here only keeps an unterminated one from hiding the rest of a log.
			f.state = fGround
			f.control(r, cr)
		case r == 0x1b:
			f.state = fStringEsc
		case isC1(r):
			f.state = fGround
			f.ground(r, cr)
		}
	case fStringEsc:
		if r == '\\' {
			f.state = fGround
			return
		}
		f.state = fEsc
		f.esc(r, cr)
	}
}

func (f *Filter) ground(r rune, cr bool) {
	switch {
	case r == 0x1b:
		f.state = fEsc
	case r == 0x9b:
		f.startCSI()
	case r == 0x90 || r == 0x98 || r == 0x9d || r == 0x9e || r == 0x9f:
		f.state = fString
	default:
		f.control(r, cr)
	}
}

// control writes r unless it is a control character: \n and \t pass, \r becomes \n.
func (f *Filter) control(r rune, cr bool) {
	switch {
	case r == '\n':
		if !cr {
			f.newline()
		}
	case r == '\r':
		f.newline()
		f.afterCR = true
	case r == '\t':
		f.out = append(f.out, '\t')
	case r < 0x20 || r == 0x7f || isC1(r):
	default:
		f.out = utf8.AppendRune(f.out, r)
	}
}

// newline ends a line, and the colours and styles set in it.
func (f *Filter) newline() {
	if f.styled {
		f.out = append(f.out, resetSGR...)
		f.styled = false
	}
	f.out = append(f.out, '\n')
}

func (f *Filter) esc(r rune, cr bool) {
	switch {
	case r == '[':
		f.startCSI()
	case r == ']' || r == 'P' || r == 'X' || r == '^' || r == '_':
		f.state = fString
	case r >= 0x20 && r <= 0x2f:
		f.state = fEscInter
	case r >= 0x30 && r <= 0x7e:
		f.state = fGround // a two-byte sequence (ESC c, ESC 7, ESC M…): dropped
	case r == 0x1b:
	default:
		f.state = fGround
		f.ground(r, cr)
	}
}

func (f *Filter) startCSI() {
	f.state = fCSI
	f.params = f.params[:0]
}

func (f *Filter) csi(r rune, cr bool) {
	switch {
	case r >= 0x30 && r <= 0x3f:
		if f.state == fCSI {
			if len(f.params) < maxSGR {
				f.params = append(f.params, byte(r))
			} else {
				f.state = fCSIIgnore
			}
		}
	case r >= 0x20 && r <= 0x2f:
		f.state = fCSIIgnore
	case r >= 0x40 && r <= 0x7e:
		if r == 'm' && f.state == fCSI && f.keepSGR && sgrParams(f.params) {
			f.out = append(f.out, 0x1b, '[')
			f.out = append(f.out, f.params...)
			f.out = append(f.out, 'm')
			f.styled = !isReset(f.params)
		}
		f.state = fGround
	case r == 0x1b:
		f.state = fEsc
	case r == 0x18 || r == 0x1a:
		f.state = fGround
	case r == 0x7f:
	case r < 0x20:
		f.control(r, cr) // terminals act on C0 controls inside a CSI and go on with it
	default:
		f.state = fGround
		f.ground(r, cr)
	}
}

// isReset reports whether SGR parameters only reset (CSI m, CSI 0 m, CSI ; m). Any
// other counts as setting a style, even one that ends in a reset: at worst a line
// gets a reset it did not need.
func isReset(p []byte) bool {
	for _, c := range p {
		if c != '0' && c != ';' {
			return false
		}
	}
	return true
}

// sgrParams: only digits and separators (no private markers such as CSI > 4 m, which
// sets key modifiers).
func sgrParams(p []byte) bool {
	for _, c := range p {
		if !(c >= '0' && c <= '9' || c == ';' || c == ':') {
			return false
		}
	}
	return true
}

// IsControl reports whether r is a control character: C0 (below U+0020), DEL, or C1
// (U+0080 to U+009F, 8-bit escape sequences on some terminals). It is tether's one
// definition of a character that must not reach a terminal or a one-line field.
func IsControl(r rune) bool { return r < 0x20 || r == 0x7f || isC1(r) }

// HasControl reports whether s holds a control character (IsControl), \t and \n
// included: a field a remote sends must be one line of printable text.
func HasControl(s string) bool { return strings.IndexFunc(s, IsControl) >= 0 }

// OneLine flattens s to one line of printable text: escape sequences removed whole (an
// OSC leaves nothing of itself behind), other control characters dropped, runs of
// whitespace (newlines and tabs included) one space, no space at either end. It is
// what tether shows of text from a remote inside a line of its own.
func OneLine(s string) string {
	var b strings.Builder
	space := false
	for _, r := range strings.TrimSpace(Strip(s)) {
		switch {
		case r == '\n' || r == '\r' || r == '\t' || r == ' ':
			space = true
			continue
		case IsControl(r):
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}

// Line is s as one line that keeps its spacing (an app's output line, indented): escape
// sequences removed whole, line breaks and tabs as spaces, other control characters
// dropped, invalid UTF-8 as U+FFFD. What it returns has no control character.
func Line(s string) string {
	s = Strip(s)
	if strings.IndexFunc(s, IsControl) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t':
			return ' '
		case IsControl(r):
			return -1
		}
		return r
	}, s)
}

// Clip shortens s to at most n bytes, cut at a rune boundary and marked with "…", so
// a long or hostile value stays a readable part of a message.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := max(n, 0)
	for cut > 0 && s[cut]&0xc0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}
