//go:build unix

package relay

// STAND-IN until package relay lands (see host/relay_standin.go): tokens in the
// stand-in's format, and a "relay" that is the host's own loopback listener. Wiring
// the real one: mint with `tether relay token`, start `tether relay`, and dial with
// relay.Dial in proxy.

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/tether-dev/tether/e2e"
)

type testRelay struct {
	key ed25519.PrivateKey
	url string // what tether host is given
}

func startRelay(t *testing.T) *testRelay {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &testRelay{key: k, url: "tcp://127.0.0.1:0"}
}

func (r *testRelay) mint(t *testing.T, role, portal, name string, ttl time.Duration) string {
	now := time.Now()
	b, err := json.Marshal(map[string]any{"Name": name, "Portal": portal, "Role": role, "IssuedAt": now,
		"NotBefore": now, "Expires": now.Add(ttl), "ID": "e2e", "RelayKey": r.key.Public().(ed25519.PublicKey)})
	if err != nil {
		t.Fatal(err)
	}
	p := base64.RawURLEncoding.EncodeToString(b)
	return p + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(r.key, []byte(p)))
}

var listeningRe = regexp.MustCompile(`stand-in relay: listening on (\S+)`)

// target is what the ProxyCommand is given to reach the portal's host: here the
// address the stand-in printed.
func (r *testRelay) target(t *testing.T, hostStderr *e2e.Buffer, portal string) string {
	var addr string
	if !e2e.WaitFor(20*time.Second, func() bool {
		m := listeningRe.FindStringSubmatch(hostStderr.String())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	}) {
		t.Fatalf("tether host did not listen; stderr:\n%s", hostStderr.String())
	}
	return addr
}

// proxy splices stdin/stdout with one stream to the host.
func proxy(target string) int {
	c, err := net.Dial("tcp", target)
	if err != nil {
		fmt.Fprintln(os.Stderr, "proxy:", err)
		return 1
	}
	done := make(chan struct{}, 2)
	go func() { io.Copy(c, os.Stdin); c.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	go func() { io.Copy(os.Stdout, c); done <- struct{}{} }()
	<-done
	return 0
}
