package main

import (
	"fmt"
	"io"
)

// Env is what every command gets besides its flags: the build's version and where its
// output goes, so tests can capture it.
type Env struct {
	Version string
	Stdout  io.Writer
	Stderr  io.Writer
}

// CLI is the command line; each command's flags and Run live with the package that
// owns it.
type CLI struct {
	Version VersionCmd `cmd:"" help:"Print the version."`
}

// VersionCmd prints the version.
type VersionCmd struct{}

// Run prints the version.
func (VersionCmd) Run(env *Env) error {
	_, err := fmt.Fprintf(env.Stdout, "tether %s\n", env.Version)
	return err
}
