package tunnel

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net"

	"golang.org/x/crypto/ssh"
)

func exampleSigner() ssh.Signer {
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	s, _ := ssh.NewSignerFromKey(k)
	return s
}

// The in-process Server plays the remote, as `tether demo` does: a programmatic Config
// with its own key and a fixed host key, no files read.
func ExampleServer() {
	hostKey, clientKey := exampleSigner(), exampleSigner()
	srv := &Server{HostKey: hostKey, AuthorizedKey: clientKey.PublicKey()}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Close()

	cfg := &Config{
		Alias: "demo", HostName: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, User: "demo",
		Signers:         []ssh.Signer{clientKey},
		HostKeyCallback: ssh.FixedHostKey(hostKey.PublicKey()),
		IdentityAgent:   "none",
		BatchMode:       true,
	}
	c, err := Dial(context.Background(), cfg, Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	out, _, status, err := c.Output(context.Background(), []string{"echo", "hello from", "the remote"}, 1024)
	fmt.Printf("%q %d %v\n", out, status, err)
	// Output: "hello from the remote\n" 0 <nil>
}
