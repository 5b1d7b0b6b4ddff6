package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/tether-dev/tether/relay"
)

// RelayCmd is `tether relay` (the router) and `tether relay token`.
type RelayCmd struct {
	Serve RelayServeCmd `cmd:"" default:"withargs" hidden:"" help:"Run the relay router."`
	Token RelayTokenCmd `cmd:"" help:"Print a signed token for a portal's host or client."`
}

// Help of relay.
func (*RelayCmd) Help() string {
	return "Runs a relay: machines with no inbound SSH (tether host --relay) and the laptops\n" +
		"that reach them (tether launch --relay URL portal:ID) both dial out to it. SSH runs\n" +
		"end to end inside; the relay only pairs streams and copies their bytes.\n\n" +
		examples(
			"(umask 077; head -c 32 /dev/urandom > relay.secret)",
			"tether relay --listen :443 --secret-file relay.secret --tls-cert cert.pem --tls-key key.pem",
			"tether relay --listen 127.0.0.1:8080 --secret-file relay.secret   # behind a TLS proxy",
			"tether relay token --secret-file relay.secret --role host --portal lab-robot robot1",
		)
}

// RelayServeCmd is `tether relay --listen ADDR --secret-file F [--tls-cert F --tls-key F]`.
type RelayServeCmd struct {
	Listen     string `required:"" placeholder:"ADDR" help:"Listen on this address, e.g. :443 (with TLS) or 127.0.0.1:8080 (plain ws: loopback only)."`
	SecretFile string `name:"secret-file" required:"" placeholder:"F" help:"The relay's secret (mode 0600, at least 32 bytes; make one with: head -c 32 /dev/urandom > F); tokens are signed with a key derived from it."`
	TLSCert    string `name:"tls-cert" placeholder:"F" help:"Serve wss:// with this PEM certificate (required beyond loopback)."`
	TLSKey     string `name:"tls-key" placeholder:"F" help:"The PEM key for --tls-cert."`
}

// Run runs the router until interrupted.
func (c *RelayServeCmd) Run(ctx context.Context, env *Env) error {
	secret, err := relay.ReadSecret(c.SecretFile)
	if err != nil {
		return err
	}
	key := relay.KeyFromSecret(secret)
	logf := func(format string, args ...any) {
		fmt.Fprintf(env.Stderr, "%s %s\n", time.Now().UTC().Format(time.RFC3339), fmt.Sprintf(format, args...))
	}
	s := &relay.Server{Key: key.Public().(ed25519.PublicKey), Logf: logf}
	return relay.ListenAndServe(ctx, s, relay.ServeConfig{
		Listen: c.Listen, TLSCert: c.TLSCert, TLSKey: c.TLSKey,
		Ready: func(url string) { logf("relay: listening on %s", url) },
	})
}

// RelayTokenCmd is `tether relay token --secret-file F --role host|client --portal ID [--days N] NAME`.
type RelayTokenCmd struct {
	SecretFile string `name:"secret-file" required:"" placeholder:"F" help:"The relay's secret file (as given to tether relay)."`
	Role       string `required:"" enum:"host,client" placeholder:"host|client" help:"host: offers a machine (tether host); client: reaches it (launch --relay), and logs in to it."`
	Portal     string `required:"" placeholder:"ID" help:"The portal: the name the host is reached by (portal:ID)."`
	Days       int    `placeholder:"N" help:"Days the token is valid (default 30 for host, 1 for client; at most 366)."`
	Name       string `arg:"" help:"Who or what the token is for (shown in the relay's log), e.g. robot1 or alice."`
}

// Run prints the token on stdout, what it is on stderr.
func (c *RelayTokenCmd) Run(env *Env) error {
	role := relay.Role(c.Role)
	ttl := relay.DefaultClientTTL
	if role == relay.RoleHost {
		ttl = relay.DefaultHostTTL
	}
	switch {
	case c.Days < 0 || c.Days > 366:
		return &usageError{msg: fmt.Sprintf("--days %d: give 1 to 366", c.Days)}
	case c.Days > 0:
		ttl = time.Duration(c.Days) * 24 * time.Hour
	}
	secret, err := relay.ReadSecret(c.SecretFile)
	if err != nil {
		return err
	}
	tok, err := relay.Mint(relay.KeyFromSecret(secret), role, c.Portal, c.Name, ttl)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "%s token for portal %s (%s), valid until %s; give it as TETHER_PORTAL_TOKEN, never on a command line\n",
		role, c.Portal, c.Name, time.Now().Add(ttl).UTC().Format("2006-01-02 15:04 MST"))
	_, err = fmt.Fprintln(env.Stdout, tok)
	return err
}
