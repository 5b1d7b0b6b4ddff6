package main

import (
	"context"
	"os"
	"path/filepath"

	"github.com/tether-dev/tether/host"
	"github.com/tether-dev/tether/profile"
)

// HostCmd is `TETHER_PORTAL_TOKEN=T tether host --relay URL [--authorized-keys F]
// [--host-key F]`: this machine offered through a relay.
type HostCmd struct {
	Relay          string `name:"relay" required:"" placeholder:"URL" help:"The relay to offer this machine through (wss://..., or ws://... on loopback)."`
	AuthorizedKeys string `name:"authorized-keys" placeholder:"F" type:"path" help:"Also require an SSH key from this authorized_keys file (OpenSSH format, no options): a client then needs a client token and one of these keys."`
	RelayCA        string `name:"relay-ca" placeholder:"FILE" env:"TETHER_RELAY_CA" help:"Trust the relay's TLS certificate only if it chains to a certificate in this PEM file (a private CA, or the relay's self-signed certificate) instead of the system's roots."`
	HostKey        string `name:"host-key" placeholder:"F" type:"path" help:"This machine's SSH host key for relay clients (made on first run; default: relay_host_ed25519_key in tether's config directory)."`
	Token          string `name:"token" hidden:"" help:"Refused: the token comes from TETHER_PORTAL_TOKEN only."`
}

// Run offers the machine until interrupted.
func (c *HostCmd) Run(ctx context.Context, env *Env) error {
	if c.Token != "" {
		// A token in argv is in ps for every user of the machine (and in shell history).
		return &usageError{msg: "--token is not taken: a token on the command line is visible to every user of this machine (ps); set " + host.TokenEnv + " instead"}
	}
	keyFile := c.HostKey
	if keyFile == "" {
		cfg, err := profile.Path()
		if err != nil {
			return err
		}
		keyFile = filepath.Join(filepath.Dir(cfg), host.HostKeyName)
	}
	return host.Run(ctx, host.Options{
		RelayURL:           c.Relay,
		Token:              os.Getenv(host.TokenEnv),
		HostKeyFile:        keyFile,
		AuthorizedKeysFile: c.AuthorizedKeys,
		RelayCAFile:        c.RelayCA,
		Stderr:             env.Stderr,
	})
}

// Help of host.
func (*HostCmd) Help() string {
	return examples(
		"TETHER_PORTAL_TOKEN=$(cat ~/.config/tether/host-token) tether host --relay wss://relay.example.org",
		"tether host --relay wss://relay.example.org --authorized-keys ~/.ssh/authorized_keys",
	) + "\n\nAny SSH user name a client gives logs in as you, the user running tether host; commands run in your login shell."
}
