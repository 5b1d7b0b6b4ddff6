package launcher

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/tether-dev/tether/tunnel"
)

// demoIdleTimeout stops a demo session left behind by a launcher that was killed
// outright (normally the demo stops its session on exit).
const demoIdleTimeout = 2 * time.Hour

// Demo is `tether demo`: the whole flow with nothing to set up. An in-process SSH server
// on 127.0.0.1 plays the remote (a throwaway host key pinned in memory, a throwaway
// client key, commands run with HOME in a temporary directory, so the "remote" install
// and session land there); tether launches its built-in app through it exactly as
// `launch` does, install included, and on exit stops the session and removes the
// directory.
func Demo(ctx context.Context, o DemoOptions) error {
	dir, err := os.MkdirTemp("", "tether-demo-")
	if err != nil {
		return errorf("check that the temporary directory is writable", "cannot make a directory for the demo: %v", err)
	}
	defer os.RemoveAll(dir)
	cfg, stopServer, err := demoServer(dir)
	if err != nil {
		return err
	}
	defer stopServer()
	lo := LaunchOptions{
		Options:        Options{Host: "the demo server", SSH: cfg, Version: o.Version, Stdout: o.Stdout, Stderr: o.Stderr},
		ForwardOptions: o.ForwardOptions,
		IdleTimeout:    demoIdleTimeout,
	}
	lo.Rm = true
	return launch(ctx, lo, true)
}

// demoServer starts the in-process SSH server and returns the client configuration that
// reaches it (and only it), and stop, which closes the server and waits for its Serve.
func demoServer(dir string) (_ *tunnel.Config, stop func(), _ error) {
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	hostKey, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		return nil, nil, err
	}
	_, clientPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	clientKey, err := ssh.NewSignerFromKey(clientPriv)
	if err != nil {
		return nil, nil, err
	}
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		return nil, nil, err
	}
	srv := &tunnel.Server{
		HostKey:       hostKey,
		AuthorizedKey: clientKey.PublicKey(),
		// Everything the "remote" writes stays in dir: the install (XDG_CACHE_HOME) and
		// the sessions (TETHER_STATE_DIR; short, for the socket path's sake).
		Env: []string{"HOME=" + home, "XDG_CACHE_HOME=" + filepath.Join(home, ".cache"),
			"TETHER_STATE_DIR=" + filepath.Join(dir, "s"), "XDG_RUNTIME_DIR="},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, errorf("check that loopback networking works", "cannot listen on 127.0.0.1 for the demo server: %v", err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(ln)
	}()
	stop = func() {
		srv.Close()
		ln.Close() // Close closes it only once Serve has begun
		<-served
	}
	name := "tether"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	cfg := &tunnel.Config{
		Alias:                 "tether-demo",
		HostName:              "127.0.0.1",
		Port:                  ln.Addr().(*net.TCPAddr).Port,
		User:                  name,
		Signers:               []ssh.Signer{clientKey},
		HostKeyCallback:       ssh.FixedHostKey(hostKey.PublicKey()),
		IdentitiesOnly:        true,
		IdentityAgent:         "none",
		StrictHostKeyChecking: "yes",
		BatchMode:             true,
		ConnectTimeout:        10 * time.Second,
		ServerAliveInterval:   5 * time.Second,
		ServerAliveCountMax:   3,
	}
	return cfg, stop, nil
}
