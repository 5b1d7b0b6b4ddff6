package batch

import (
	"errors"
	"fmt"
	"strings"

	"github.com/tether-dev/tether/internal/termsafe"
)

// How tether judges a submit command's words when the command reads them with
// getopt_long (sbatch) or getopt (PBS's qsub): a word means more than it spells. Any
// unambiguous prefix of a long option is that option (--out=/tmp/x is --output), a short
// option's value may be attached (-o/tmp/x) and short options may be bundled (-vo/tmp/x
// is -v -o /tmp/x; -Qa0-3 is -Q -a 0-3). getoptCheck reads each word the way getopt does
// and refuses the options tether owns, so that the job keeps the name tether finds it
// by, writes its output into the session's private directory, and is one job that
// tether watches itself.

// argKind is what an option takes, as getopt's has_arg says.
type argKind int

const (
	noArg  argKind = iota
	reqArg         // --opt=V, --opt V, -oV, -o V
	optArg         // --opt=V or -oV only: the next word is never its value
)

// option is one entry of a command's option table.
type option struct {
	long  string // "" for a short-only option
	arg   argKind
	short byte // 0: long only
}

// name is how messages name the option: --long, else -x.
func (o option) name() string {
	if o.long != "" {
		return "--" + o.long
	}
	return "-" + string(o.short)
}

// getoptCheck is one command's option grammar and the options tether owns in it.
type getoptCheck struct {
	prog string // the command, for messages: sbatch, qsub
	opts []option
	// owned are the options tether owns, by name() without the dashes, with why.
	owned map[string]string
	// longs: the command takes long options (getopt_long); otherwise every word
	// starting with "--" is refused, like getopt would.
	longs bool
}

func (g *getoptCheck) ownedWhy(o option) string { return g.owned[strings.TrimLeft(o.name(), "-")] }

// short finds a short option by its letter.
func (g *getoptCheck) short(c byte) (option, bool) {
	for _, o := range g.opts {
		if o.short == c && c != 0 {
			return o, true
		}
	}
	return option{}, false
}

// long finds the long option a name (what follows "--", before any "=") means to
// getopt_long: the option of exactly that name, else the one option it is a prefix of.
// Several: ambiguous; none: unknown (known is false).
func (g *getoptCheck) long(name string) (o option, candidates []string, known bool) {
	for _, opt := range g.opts {
		if opt.long != "" && opt.long == name {
			return opt, nil, true
		}
	}
	for _, opt := range g.opts {
		if opt.long != "" && strings.HasPrefix(opt.long, name) {
			o = opt
			candidates = append(candidates, "--"+opt.long)
		}
	}
	return o, candidates, len(candidates) == 1
}

// ownedPrefixOf is the tether-owned options name is a prefix of (so a word that some
// version of the command, or a site's plugin, could still read as one of them).
func (g *getoptCheck) ownedPrefixOf(name string) []string {
	var out []string
	for _, opt := range g.opts {
		if opt.long != "" && g.ownedWhy(opt) != "" && strings.HasPrefix(opt.long, name) {
			out = append(out, "--"+opt.long)
		}
	}
	return out
}

// maxUnknown bounds the options tether does not know written without "=", each of
// which doubles the readings checked.
const maxUnknown = 8

// check judges the words the way the command's getopt will read them, and refuses:
// options tether owns, however they are spelled (a prefix, an attached value, inside a
// bundle of short options); an abbreviation that is ambiguous, or a prefix of an option
// tether owns (conservative: another version may read it so); a word that is not an
// option (the command would take it for the script, and everything after it for the
// script's arguments); an option whose value is missing (it would take tether's own
// next option as its value).
//
// A long option tether does not know (a site's plugin) passes, written --opt=VALUE, or
// as --opt followed by more options: the word after it must then be fine both as its
// value and as an option, since tether cannot tell which the command takes it for.
func (g *getoptCheck) check(args []string) error { return g.checkFrom(args, 0, 0) }

func (g *getoptCheck) checkFrom(args []string, i, unknown int) error {
	for ; i < len(args); i++ {
		a := args[i]
		if strings.ContainsRune(a, 0) || len(a) > 4096 {
			return errors.New("option holds a NUL byte or is over 4 KiB")
		}
		switch {
		case a == "--":
			return fmt.Errorf("word \"--\" ends %s's options; give options only", g.prog)
		case a == "-" || !strings.HasPrefix(a, "-") || strings.HasPrefix(a, "--="):
			return fmt.Errorf("word %q is not %s option: give options only (tether writes the job script itself)", termsafe.Clip(a, 64), article(g.prog))
		case strings.HasPrefix(a, "--") && !g.longs:
			if a == "--version" {
				return fmt.Errorf("option %s is tether's own: it makes %s print something and submit nothing; drop it", a, g.prog)
			}
			return fmt.Errorf("option %s: %s takes no long options; write the option's letter", termsafe.Clip(a, 64), g.prog)
		case strings.HasPrefix(a, "--"):
			next, err := g.checkLong(a, args[i+1:])
			if err != nil {
				return err
			}
			switch next {
			case nextValue:
				i++
			case nextEither:
				if unknown++; unknown > maxUnknown {
					return fmt.Errorf("option %s: over %d options tether does not know; write them as --opt=VALUE", termsafe.Clip(a, 64), maxUnknown)
				}
				if err := g.checkFrom(args, i+2, unknown); err != nil {
					return err // read with the next word as its value
				}
				// and read as a flag: go on with the next word
			}
		default:
			takesNext, err := g.checkShorts(a, i+1 < len(args))
			if err != nil {
				return err
			}
			if takesNext {
				i++
			}
		}
	}
	return nil
}

// article is "an sbatch" or "a qsub", for messages.
func article(prog string) string {
	if strings.ContainsRune("aeiosx", rune(prog[0])) && prog != "qsub" {
		return "an " + prog
	}
	return "a " + prog
}

// What an option does with the word after it.
type nextWord int

const (
	nextOption nextWord = iota // the next word is read on its own
	nextValue                  // the next word is the option's value
	nextEither                 // tether cannot tell: both readings must pass
)

// checkLong judges one --word; rest are the words after it.
func (g *getoptCheck) checkLong(a string, rest []string) (nextWord, error) {
	name, _, hasValue := strings.Cut(a[2:], "=")
	opt, candidates, known := g.long(name)
	if (!known || g.ownedWhy(opt) == "") && !(known && opt.long == name) {
		if owned := g.ownedPrefixOf(name); len(owned) > 0 {
			// Not an exact name, and it could be read as an option tether owns.
			return 0, fmt.Errorf("option %s (%s may read it as %s) is tether's own: %s; drop it",
				termsafe.Clip(a, 64), g.prog, strings.Join(owned, " or "), g.owned[strings.TrimPrefix(owned[0], "--")])
		}
	}
	switch {
	case len(candidates) > 1:
		return 0, fmt.Errorf("option %s is ambiguous: %s could read it as %s; write the option out in full", termsafe.Clip(a, 64), g.prog, strings.Join(candidates, ", "))
	case !known && hasValue:
		return nextOption, nil
	case !known && len(rest) == 0:
		return 0, fmt.Errorf("option %s is not one tether knows of %s (a site's plugin?): if it takes a value write %s=VALUE, else put it before another option", termsafe.Clip(a, 64), g.prog, termsafe.Clip(a, 64))
	case !known && !strings.HasPrefix(rest[0], "-"):
		return 0, fmt.Errorf("option %s is not one tether knows of %s (a site's plugin?), so tether cannot tell whether %q is its value or a script; write %s=%s", termsafe.Clip(a, 64), g.prog, termsafe.Clip(rest[0], 64), termsafe.Clip(a, 64), termsafe.Clip(rest[0], 64))
	case !known:
		return nextEither, nil
	}
	if why := g.ownedWhy(opt); why != "" {
		return 0, g.ownedError(a, opt, why)
	}
	switch opt.arg {
	case noArg:
		if hasValue {
			return 0, fmt.Errorf("option %s: --%s takes no value", termsafe.Clip(a, 64), opt.long)
		}
	case reqArg:
		if !hasValue {
			if len(rest) == 0 {
				return 0, fmt.Errorf("option %s needs a value", termsafe.Clip(a, 64))
			}
			return nextValue, nil
		}
	}
	return nextOption, nil
}

// checkShorts judges one -word: a bundle of short options, the last of them perhaps
// with its value attached; takesNext says the next word is the value of the last one.
func (g *getoptCheck) checkShorts(a string, haveNext bool) (takesNext bool, err error) {
	for j := 1; j < len(a); j++ {
		opt, ok := g.short(a[j])
		if !ok {
			return false, fmt.Errorf("option %s: %s has no option -%c that tether knows; use the option's long name", termsafe.Clip(a, 64), g.prog, a[j])
		}
		if why := g.ownedWhy(opt); why != "" {
			return false, g.ownedError(a, opt, why)
		}
		switch opt.arg {
		case reqArg:
			if j+1 < len(a) {
				return false, nil // the rest of the word is its value
			}
			if !haveNext {
				return false, fmt.Errorf("option %s needs a value", termsafe.Clip(a, 64))
			}
			return true, nil
		case optArg:
			return false, nil // the rest of the word, if any, is its value
		}
	}
	return false, nil
}

// ownedError refuses an option tether owns, saying how the command reads the word when
// it does not spell the option out.
func (g *getoptCheck) ownedError(a string, opt option, why string) error {
	reads := ""
	if a != opt.name() && !strings.HasPrefix(a, opt.name()+"=") {
		reads = " (" + g.prog + " reads it as " + opt.name() + ")"
	}
	return fmt.Errorf("option %s%s is tether's own: %s; drop it", termsafe.Clip(a, 64), reads, why)
}

// wordCheck is a command that reads each option as a whole word, its values as the
// words after it (Grid Engine's qsub, LSF's bsub): no prefixes, no bundles, no attached
// values. An option it does not know is refused by the command itself; tether passes it
// only where the word after it is fine both as its value and as an option.
type wordCheck struct {
	prog string
	// opts are the options by their word ("-N"), with how many words of value follow;
	// a negative count means "one, or two when the first is one of twoWhen's".
	opts map[string]int
	// twoWhen lists, for an option taking one or two words, the first words after which
	// a second follows (Grid Engine's -binding set|env|pe STRATEGY).
	twoWhen map[string][]string
	// owned are the options tether owns, with why; ownedValue those it owns only with
	// some values (qsub's -w v and -w p submit nothing).
	owned      map[string]string
	ownedValue map[string]map[string]string
}

// check judges the words; errors read after the flag (--sge …).
func (w *wordCheck) check(args []string) error { return w.checkFrom(args, 0, 0) }

func (w *wordCheck) checkFrom(args []string, i, unknown int) error {
	for ; i < len(args); i++ {
		a := args[i]
		if strings.ContainsRune(a, 0) || len(a) > 4096 {
			return errors.New("option holds a NUL byte or is over 4 KiB")
		}
		if a == "-" || !strings.HasPrefix(a, "-") {
			return fmt.Errorf("word %q is not %s option: give options only (tether writes the job script itself)", termsafe.Clip(a, 64), article(w.prog))
		}
		if why, ok := w.owned[a]; ok {
			return fmt.Errorf("option %s is tether's own: %s; drop it", termsafe.Clip(a, 64), why)
		}
		n, known := w.opts[a]
		if !known {
			// Unknown: the next word may be its value or an option of its own.
			if i+1 == len(args) {
				// tether's own options follow: one of them could become its value.
				return fmt.Errorf("option %s is not one tether knows of %s: if it takes a value give it one, else put it before another option", termsafe.Clip(a, 64), w.prog)
			}
			if !strings.HasPrefix(args[i+1], "-") {
				return fmt.Errorf("option %s is not one tether knows of %s, so tether cannot tell whether %q is its value or a script; check the option's name (%s's options are whole words)", termsafe.Clip(a, 64), w.prog, termsafe.Clip(args[i+1], 64), w.prog)
			}
			if unknown++; unknown > maxUnknown {
				return fmt.Errorf("option %s: over %d options tether does not know", termsafe.Clip(a, 64), maxUnknown)
			}
			if err := w.checkFrom(args, i+2, unknown); err != nil {
				return err
			}
			continue
		}
		if n < 0 {
			n = 1
			if i+1 < len(args) {
				for _, first := range w.twoWhen[a] {
					if args[i+1] == first {
						n = 2
					}
				}
			}
		}
		if i+n >= len(args) {
			return fmt.Errorf("option %s needs %s", termsafe.Clip(a, 64), map[bool]string{true: "a value", false: "two values"}[n == 1])
		}
		for k := 1; k <= n; k++ {
			if why := w.ownedValue[a][args[i+k]]; why != "" {
				return fmt.Errorf("option %s %s is tether's own: %s; drop it", termsafe.Clip(a, 64), termsafe.Clip(args[i+k], 64), why)
			}
			if strings.ContainsRune(args[i+k], 0) {
				return errors.New("option holds a NUL byte")
			}
		}
		i += n
	}
	return nil
}
