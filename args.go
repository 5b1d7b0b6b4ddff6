package main

import (
	"strings"

	"github.com/alecthomas/kong"
)

// Flags anywhere (DESIGN.md's contract): `tether stop HOST -F cfg ID` is
// `tether stop -F cfg HOST ID`. Kong takes flags between positional arguments, but a
// positional slice (stop's HOST ID, launch's COMMAND) stops at the first flag and
// the words after it are then "unexpected". So before kong parses, the words after
// the command are put in kong's preferred order: the flags (each with its value)
// first, then a "--", then every positional word in the order given. Everything after
// the user's own "--" is positional, whatever it looks like: `launch h -- python -m
// http.server {port}` keeps its -m.

// arranged is a command line put in order for kong.
type arranged struct {
	// parse is what kong parses: command words, flags, then "--" and the positionals.
	parse []string
	// logical is the same words with the user's "--" where they put it among the
	// positionals (launch tells an APP from a COMMAND by it).
	logical []string
	// node is the command the words name (nil: none yet).
	node *kong.Node
}

// arrangeArgs finds the command args name in app's model and orders its words.
func arrangeArgs(app *kong.Application, args []string) arranged {
	node := app.Node
	i := 0
	var head []string
	// The command path: root flags (--version, --help) may come before it.
	for i < len(args) {
		a := args[i]
		if a == "--" {
			break
		}
		if strings.HasPrefix(a, "-") && a != "-" {
			n := flagWords(flagsOf(node), args[i:])
			head = append(head, args[i:i+n]...)
			i += n
			continue
		}
		child := childCommand(node, a)
		if child == nil {
			break
		}
		head = append(head, a)
		node = child
		i++
	}
	if node == app.Node || node.Passthrough {
		return arranged{parse: args, logical: args}
	}
	flagNode := flagsOf(node)
	var flags, before, after []string
	dash := false
	for i < len(args) {
		a := args[i]
		switch {
		case a == "--":
			dash = true
			after = append(after, args[i+1:]...)
			i = len(args)
		case strings.HasPrefix(a, "-") && a != "-":
			n := flagWords(flagNode, args[i:])
			flags = append(flags, args[i:i+n]...)
			i += n
		default:
			before = append(before, a)
			i++
		}
	}
	out := arranged{node: node}
	out.parse = append(append([]string{}, head...), flags...)
	out.logical = append([]string{}, out.parse...)
	if len(before)+len(after) > 0 {
		out.parse = append(append(append(out.parse, "--"), before...), after...)
	}
	out.logical = append(out.logical, before...)
	if dash {
		out.logical = append(append(out.logical, "--"), after...)
	}
	return out
}

// flagsOf is the node whose flags node's command line takes: its default subcommand's
// when it has one that takes arguments (`tether relay --listen` runs relay's hidden
// serve), as kong parses it.
func flagsOf(node *kong.Node) *kong.Node {
	if d := node.DefaultCmd; d != nil && d.Tag.Default == "withargs" {
		return d
	}
	return node
}

// childCommand is node's subcommand named (or aliased) word.
func childCommand(node *kong.Node, word string) *kong.Node {
	for _, c := range node.Children {
		if c.Type != kong.CommandNode {
			continue
		}
		if c.Name == word {
			return c
		}
		for _, a := range c.Aliases {
			if a == word {
				return c
			}
		}
	}
	return nil
}

// flagWords is how many words the flag at args[0] takes, itself included: 2 for a
// flag that takes a value given as the next word (-F cfg, --port 8080, --slurm
// "-p gpu"), else 1 (a bool, --flag=value, -Fcfg, an unknown flag: kong says so).
func flagWords(node *kong.Node, args []string) int {
	a := args[0]
	if a == "--" {
		return 1
	}
	if name, ok := strings.CutPrefix(a, "--"); ok {
		if strings.Contains(name, "=") {
			return 1
		}
		f := findFlag(node, name, 0)
		if f == nil || !takesValue(f) || len(args) < 2 {
			return 1
		}
		return 2
	}
	// A cluster of short flags: -fF cfg, -Fcfg.
	for j, r := range a[1:] {
		f := findFlag(node, "", r)
		if f == nil {
			return 1
		}
		if takesValue(f) {
			if j+1 < len(a[1:]) || len(args) < 2 {
				return 1 // the rest of the word is the value
			}
			return 2
		}
	}
	return 1
}

// findFlag looks a flag up by long name (or its negation) or by short letter among
// node's flags and its parents'.
func findFlag(node *kong.Node, long string, short rune) *kong.Flag {
	for _, group := range node.AllFlags(false) {
		for _, f := range group {
			switch {
			case long != "" && (f.Name == long || f.Tag.Negatable != "" && long == negated(f)):
				return f
			case long != "" && hasAlias(f, long):
				return f
			case short != 0 && f.Short == short:
				return f
			}
		}
	}
	return nil
}

func hasAlias(f *kong.Flag, name string) bool {
	for _, a := range f.Aliases {
		if a == name {
			return true
		}
	}
	return false
}

func negated(f *kong.Flag) string {
	if f.Tag.Negatable == "_" {
		return "no-" + f.Name
	}
	return f.Tag.Negatable
}

func takesValue(f *kong.Flag) bool { return !f.IsBool() && !f.IsCounter() }
