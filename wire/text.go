package wire

import (
	"fmt"
	"strings"

	"github.com/tether-dev/tether/internal/shquote"
	"github.com/tether-dev/tether/internal/termsafe"
)

// Text is a message the remote words for a person, with the parts that each side says
// its own way held as data: the machine the remote runs on ("this machine" there, the
// host as the user typed it on the laptop) and the tether commands it suggests
// (`tether stop nb` there, `tether stop -F cfg gpu-box nb` on the laptop). The rest is
// plain text, shown as it is.
type Text []Part

// Part is one piece of a Text: plain text, or one of the references.
type Part struct {
	// Text is plain text.
	Text string `json:"text,omitempty"`
	// Machine refers to the machine the remote runs on; its value is how the remote
	// names it there ("this machine", its host name).
	Machine string `json:"machine,omitempty"`
	// Tether is a tether command to run for that machine, as its arguments after
	// "tether" (["stop", "nb"]). ViaHost marks a command that runs on a laptop and
	// names the machine as HOST (`tether apps HOST`), not one run on the machine.
	Tether  []string `json:"tether,omitempty"`
	ViaHost bool     `json:"via_host,omitempty"`
}

// Machine is the Part that refers to the machine the remote runs on, named as the
// remote names it.
func Machine(name string) Part { return Part{Machine: name} }

// ThisMachine refers to the machine as "this machine".
var ThisMachine = Machine("this machine")

// Tether is the Part for a tether command run on the machine: Tether("stop", id).
func Tether(args ...string) Part { return Part{Tether: args} }

// TetherHost is the Part for a tether command of the laptop's that names the machine
// as HOST: TetherHost("apps") is `tether apps HOST`.
func TetherHost(args ...string) Part { return Part{Tether: args, ViaHost: true} }

// Wording says the references of a Text: Machine names the machine (given how the
// remote names it), Command writes a tether command line (without the backquotes
// around it).
type Wording struct {
	Machine func(remoteName string) string
	Command func(args []string, viaHost bool) string
}

// Here is the remote's own wording: the machine as it names itself, commands as they
// run there (`tether apps HOST` for the laptop's).
var Here = Wording{
	Machine: func(n string) string { return n },
	Command: func(args []string, viaHost bool) string {
		words := append([]string{"tether"}, shquote.Join(args))
		if viaHost && len(args) > 0 {
			words = []string{"tether", shquote.Quote(args[0]), "HOST"}
			if rest := shquote.Join(args[1:]); rest != "" {
				words = append(words, rest)
			}
		}
		return strings.Join(words, " ")
	},
}

// Say words t: plain text flattened to printable text (whoever wrote it), the
// references as w says them, commands in backquotes.
func (t Text) Say(w Wording) string {
	var b strings.Builder
	for _, p := range t {
		switch {
		case len(p.Tether) > 0:
			b.WriteString("`" + termsafe.OneLine(w.Command(p.Tether, p.ViaHost)) + "`")
		case p.Machine != "":
			b.WriteString(termsafe.OneLine(w.Machine(p.Machine)))
		default:
			b.WriteString(strings.Map(func(r rune) rune {
				if termsafe.IsControl(r) {
					return ' '
				}
				return r
			}, termsafe.Strip(p.Text)))
		}
	}
	return b.String()
}

// String is the Text in the remote's own words.
func (t Text) String() string { return t.Say(Here) }

// Plain is a Text of plain text only.
func Plain(s string) Text {
	if s == "" {
		return nil
	}
	return Text{{Text: s}}
}

// Textf formats like fmt.Sprintf, except that an argument that is a Part (Machine,
// Tether, TetherHost) or a Text becomes those parts of the Text rather than text. Only
// verbs' flags, width and precision are understood, not argument indexes.
func Textf(format string, args ...any) Text {
	var t Text
	text := func(s string) {
		if s == "" {
			return
		}
		if n := len(t); n > 0 && t[n-1].Text != "" {
			t[n-1].Text += s
			return
		}
		t = append(t, Part{Text: s})
	}
	arg := 0
	for i := 0; i < len(format); {
		j := strings.IndexByte(format[i:], '%')
		if j < 0 {
			text(format[i:])
			break
		}
		text(format[i : i+j])
		i += j
		// The verb: %, flags, width, precision, then a letter.
		k := i + 1
		for k < len(format) && strings.IndexByte("+-# 0123456789.", format[k]) >= 0 {
			k++
		}
		if k >= len(format) {
			text(format[i:])
			break
		}
		verb := format[i : k+1]
		i = k + 1
		if verb == "%%" {
			text("%")
			continue
		}
		if arg >= len(args) {
			text("%!" + verb[len(verb)-1:] + "(MISSING)")
			continue
		}
		switch a := args[arg].(type) {
		case Part:
			if a.Text != "" {
				text(a.Text)
			} else {
				t = append(t, a)
			}
		case Text:
			for _, p := range a {
				if p.Text != "" {
					text(p.Text)
				} else {
					t = append(t, p)
				}
			}
		default:
			text(fmt.Sprintf(verb, a))
		}
		arg++
	}
	if arg < len(args) {
		text(fmt.Sprintf("%%!(EXTRA %d)", len(args)-arg))
	}
	return t
}

// validate checks a Text read from a remote that may be hostile: a bounded number of
// bounded parts, each one kind.
func (t Text) validate() error {
	if len(t) > 64 {
		return fmt.Errorf("has %d parts", len(t))
	}
	for _, p := range t {
		kinds := 0
		for _, set := range []bool{p.Text != "", p.Machine != "", len(p.Tether) > 0} {
			if set {
				kinds++
			}
		}
		if kinds != 1 || len(p.Text) > 8192 || len(p.Machine) > 256 || len(p.Tether) > 16 || p.ViaHost && len(p.Tether) == 0 {
			return fmt.Errorf("has a part that is not one short text, machine or command")
		}
		for _, a := range p.Tether {
			if len(a) > 256 || termsafe.HasControl(a) {
				return fmt.Errorf("has a command with an argument over 256 bytes or with control characters")
			}
		}
	}
	return nil
}
