package main

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/alecthomas/kong"

	"github.com/tether-dev/tether/tunnel"
	"github.com/tether-dev/tether/wire"
)

// Shell completion. `tether completion bash|zsh|fish` prints a small script that asks
// tether itself what may come next: `tether __complete WORDS... CURRENT` prints the
// candidates, one a line, from the command line's model (commands, flags, their fixed
// values) and from what only tether knows: the hosts of the ssh config (from -F when
// given) where a HOST goes and the presets where launch's APP goes. A line ":files"
// alone asks the shell for file names (-F FILE, --remote-binary FILE, ...).
//
// Our own, not kongplete (github.com/willabides/kongplete on posener/complete): that
// completes every positional argument alike, so it cannot offer hosts for HOST and
// presets for APP; this reads the words with the same flag rules as flags-anywhere
// (arrangeArgs's flagWords) and needs no new module.

// completeArg is the hidden first argument that asks for candidates.
const completeArg = "__complete"

// filesDirective asks the shell to complete file names.
const filesDirective = ":files"

// completionCmds is embedded in CLI: the completion command.
type completionCmds struct {
	Completion CompletionCmd `cmd:"" help:"Print a shell completion script (bash, zsh, fish): tether completion --help says how to install it."`
}

// CompletionCmd is `tether completion bash|zsh|fish`.
type CompletionCmd struct {
	Shell string `arg:"" enum:"bash,zsh,fish" help:"bash, zsh or fish."`
}

// Help of completion.
func (*CompletionCmd) Help() string {
	return "Install it once:\n" +
		"  bash: tether completion bash > ~/.local/share/bash-completion/completions/tether\n" +
		"        (or add 'source <(tether completion bash)' to ~/.bashrc)\n" +
		"  zsh:  tether completion zsh > \"${fpath[1]}/_tether\"   (then start a new shell)\n" +
		"        (or add 'source <(tether completion zsh)' to ~/.zshrc, after compinit)\n" +
		"  fish: tether completion fish > ~/.config/fish/completions/tether.fish\n" +
		"It completes commands, flags and their values, HOST from your ssh config (-F FILE's when given), and launch's APP."
}

// Run prints the script.
func (c *CompletionCmd) Run(env *Env) error {
	_, err := io.WriteString(env.Stdout, completionScripts[c.Shell])
	return err
}

var completionScripts = map[string]string{
	"bash": `# tether completion for bash (tether completion bash)
_tether() {
	local cur=${COMP_WORDS[COMP_CWORD]} out
	out=$("${COMP_WORDS[0]}" __complete "${COMP_WORDS[@]:1:COMP_CWORD-1}" "$cur" 2>/dev/null) || return
	[ "$out" = ":files" ] && return # -o default: file names
	local IFS=$'\n'
	COMPREPLY=($(compgen -W "$out" -- "$cur"))
}
complete -o default -F _tether tether
`,
	"zsh": `#compdef tether
# tether completion for zsh (tether completion zsh)
_tether() {
	local -a cands
	cands=("${(@f)$("${words[1]}" __complete "${(@)words[2,CURRENT-1]}" "${words[CURRENT]}" 2>/dev/null)}")
	if [[ ${#cands} -eq 1 && ${cands[1]} == ":files" ]]; then
		_files
	elif [[ -n ${cands[1]} ]]; then
		compadd -a cands
	fi
}
if [[ $funcstack[1] == _tether ]]; then
	_tether "$@"
else
	compdef _tether tether
fi
`,
	"fish": `# tether completion for fish (tether completion fish)
function __tether_complete
	set -l words (commandline -opc)
	set -l out ($words[1] __complete $words[2..-1] (commandline -ct) 2>/dev/null)
	if test "$out" = ":files"
		__fish_complete_path (commandline -ct)
	else
		printf '%s\n' $out
	end
end
complete -c tether -f -a '(__tether_complete)'
`,
}

// complete prints the candidates for the last of words (the word being typed, maybe
// empty) after the ones before it.
func complete(app *kong.Application, words []string, w io.Writer) {
	if len(words) == 0 {
		words = []string{""}
	}
	cur, prev := words[len(words)-1], words[:len(words)-1]
	var out []string
	for _, c := range candidates(app, prev, cur) {
		if strings.HasPrefix(c, cur) || c == filesDirective {
			out = append(out, c)
		}
	}
	for _, c := range out {
		fmt.Fprintln(w, c)
	}
}

// candidates are what may come as the word after prev (unfiltered).
func candidates(app *kong.Application, prev []string, cur string) []string {
	node := app.Node
	var positionals []string
	configFile := ""
	dash := false
	for i := 0; i < len(prev); i++ {
		a := prev[i]
		switch {
		case dash:
			positionals = append(positionals, a)
		case a == "--":
			dash = true
		case strings.HasPrefix(a, "-") && a != "-":
			n := flagWords(node, prev[i:])
			if n == 2 && (a == "-F" || a == "--ssh-config") {
				configFile = prev[i+1]
			}
			if v, ok := strings.CutPrefix(a, "--ssh-config="); ok {
				configFile = v
			}
			i += n - 1
		default:
			if node == app.Node {
				if child := childCommand(node, a); child != nil {
					node = child
					continue
				}
			}
			positionals = append(positionals, a)
		}
	}
	// The value of the flag just before?
	if len(prev) > 0 && !dash {
		last := prev[len(prev)-1]
		if strings.HasPrefix(last, "-") && last != "-" && last != "--" && flagWords(node, prev[len(prev)-1:len(prev)]) == 1 {
			if f := flagAt(node, last); f != nil && takesValue(f) {
				return flagValues(f)
			}
		}
	}
	if strings.HasPrefix(cur, "--") && strings.Contains(cur, "=") && !dash {
		name, _, _ := strings.Cut(cur[2:], "=")
		if f := findFlag(node, name, 0); f != nil && takesValue(f) {
			var out []string
			for _, v := range flagValues(f) {
				if v != filesDirective {
					out = append(out, "--"+name+"="+v)
				}
			}
			return out
		}
	}
	if strings.HasPrefix(cur, "-") && !dash {
		return flagNames(node)
	}
	if node == app.Node {
		var out []string
		for _, c := range node.Children {
			if c.Type == kong.CommandNode && !c.Hidden {
				out = append(out, c.Name)
			}
		}
		return out
	}
	return positionalValues(node.Name, len(positionals), dash, configFile)
}

// flagAt is the flag a word names (--name, -F, the last letter of -fF).
func flagAt(node *kong.Node, word string) *kong.Flag {
	if name, ok := strings.CutPrefix(word, "--"); ok {
		return findFlag(node, name, 0)
	}
	r := []rune(word[1:])
	if len(r) == 0 {
		return nil
	}
	return findFlag(node, "", r[len(r)-1])
}

// flagValues are the candidates for f's value.
func flagValues(f *kong.Flag) []string {
	switch f.Name {
	case "ssh":
		return []string{"native", "openssh", "auto"}
	case "app":
		return wire.PresetNames()
	}
	if f.Enum != "" {
		var out []string
		for _, v := range strings.Split(f.Enum, ",") {
			out = append(out, strings.TrimSpace(v))
		}
		return out
	}
	switch f.Tag.Type {
	case "existingfile", "path", "existingdir":
		return []string{filesDirective}
	}
	if strings.Contains(f.Name, "file") || f.Name == "ssh-config" || f.Name == "socket" || f.Name == "tls-cert" || f.Name == "tls-key" {
		return []string{filesDirective}
	}
	return nil
}

// flagNames are node's visible flags, long form.
func flagNames(node *kong.Node) []string {
	var out []string
	for _, group := range node.AllFlags(true) {
		for _, f := range group {
			out = append(out, "--"+f.Name)
			if f.Tag.Negatable != "" {
				out = append(out, "--"+negated(f))
			}
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// positionalValues are the candidates for the positional argument number i of cmd.
func positionalValues(cmd string, i int, dash bool, configFile string) []string {
	if dash {
		return nil // a command of the user's: the shell's own completion
	}
	hosts := func() []string { return tunnel.HostAliases(tunnel.ResolveOptions{ConfigFile: configFile}) }
	switch cmd {
	case "launch":
		switch i {
		case 0:
			return hosts()
		case 1:
			return wire.PresetNames()
		}
		return []string{filesDirective}
	case "attach", "forward", "ls", "apps", "stop", "logs":
		if i == 0 {
			return hosts()
		}
	case "completion":
		if i == 0 {
			return []string{"bash", "zsh", "fish"}
		}
	}
	return nil
}
