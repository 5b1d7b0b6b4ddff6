package main

import "strings"

// Examples in each command's help (kong shows a command's Help() below its summary).
// Flags may come anywhere among the arguments; the examples put them where people
// type them.

func examples(lines ...string) string {
	return "Examples:\n  " + strings.Join(lines, "\n  ")
}

// Help is `tether --help`'s (and bare `tether`'s) text below the summary.
func (*CLI) Help() string {
	return examples(
		"tether launch gpu-box jupyter                  # Jupyter on gpu-box, in your browser",
		"tether launch gpu-box -- python3 -m http.server {port} --bind 127.0.0.1",
		"tether attach gpu-box                          # back to it later, from any laptop",
		"tether ls gpu-box                              # your sessions there",
		"tether stop gpu-box ID                         # stop one (--all: every one)",
		"tether apps gpu-box                            # which presets gpu-box has",
		"tether completion bash                         # shell completion (bash, zsh, fish)",
	) + "\n\nHOST is an ssh destination or a Host of ~/.ssh/config; tether connects as ssh would. Flags may come anywhere."
}

// Help of launch.
func (*LaunchCmd) Help() string {
	return examples(
		"tether launch gpu-box jupyter",
		"tether launch gpu-box jupyter -- --notebook-dir=/data   # after --: the app's own arguments",
		"tether launch gpu-box static ~/site                     # ~ is your home on gpu-box",
		"tether launch gpu-box shiny ~/app --port 8080",
		"tether launch gpu-box -- python3 -m http.server {port} --bind 127.0.0.1",
		"tether launch cluster jupyter --slurm \"-p gpu --gres=gpu:1 -t 4:00:00\"",
		"tether launch gpu-box --no-browser                      # print the URL instead",
	)
}

// Help of attach.
func (*AttachCmd) Help() string {
	return examples(
		"tether attach gpu-box            # the only or newest running session",
		"tether attach gpu-box nb         # by name or id (tether ls gpu-box lists them)",
		"tether attach gpu-box --port 8888",
	)
}

// Help of ls.
func (*LsCmd) Help() string {
	return examples(
		"tether ls gpu-box                # your sessions on gpu-box",
		"tether ls gpu-box --json",
		"tether ls                        # on this machine (the remote side)",
	)
}

// Help of stop.
func (*StopCmd) Help() string {
	return examples(
		"tether stop gpu-box ID           # ID: a session's id, unique id prefix or name",
		"tether stop gpu-box --all",
		"tether stop ID                   # a session of this machine (the remote side)",
	)
}

// Help of logs.
func (*LogsCmd) Help() string {
	return examples(
		"tether logs gpu-box ID",
		"tether logs gpu-box ID -f        # keep following",
	)
}

// Help of forward.
func (*ForwardCmd) Help() string {
	return examples(
		"tether forward gpu-box 5432                  # a database of yours on gpu-box's loopback",
		"tether forward gpu-box nb 6006 --local-port 16006",
	)
}

// Help of apps.
func (*AppsCmd) Help() string {
	return examples(
		"tether apps                      # the presets and how each is guarded",
		"tether apps gpu-box              # which of them gpu-box has, and your profiles for it",
	)
}

// Help of serve.
func (*ServeCmd) Help() string {
	return examples(
		"tether serve -- jupyter lab --port={port} --no-browser",
		"tether serve --app static ~/site",
		"tether serve --listen 127.0.0.1:0 --detach --json",
	)
}

// Help of demo.
func (*DemoCmd) Help() string {
	return examples(
		"tether demo",
		"tether demo --no-browser         # print the URL instead",
	)
}
