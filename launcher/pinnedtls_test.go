package launcher

import (
	"context"
	"crypto/tls"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/tether-dev/tether/tokenserver"
	"github.com/tether-dev/tether/wire"
)

// The launcher's TLS connections to a session's server offer the session's owner hint
// (ALPN) besides http/1.1, which the server keeps through a flood of others'
// connections (tokenserver's connguard), and still speak http/1.1; a certificate
// other than the record's is refused.
func TestPinnedTLSOffersOwnerHint(t *testing.T) {
	cfg, sum, err := tokenserver.SelfSignedTLS()
	if err != nil {
		t.Fatal(err)
	}
	offered := make(chan []string, 2)
	cfg.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		offered <- h.SupportedProtos
		return nil, nil
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				c.(*tls.Conn).Handshake()
				c.Close()
			}()
		}
	}()
	tok, _ := tokenserver.NewToken()
	dial := func(context.Context) (net.Conn, error) { return net.Dial("tcp", ln.Addr().String()) }
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := PinnedTLS(dial, wire.Record{Token: tok, TLS: true, CertSHA256: sum})(ctx)
	if err != nil {
		t.Fatalf("PinnedTLS: %v", err)
	}
	defer c.Close()
	protos := <-offered
	if !slices.Contains(protos, tokenserver.OwnerHint(tok)) || !slices.Contains(protos, "http/1.1") {
		t.Errorf("offered %q; want http/1.1 and the owner hint", protos)
	}
	if p := c.(*tls.Conn).ConnectionState().NegotiatedProtocol; p != "http/1.1" {
		t.Errorf("negotiated %q; want http/1.1", p)
	}
	other, _ := tokenserver.NewToken()
	if slices.Contains(protos, tokenserver.OwnerHint(other)) {
		t.Error("another session's hint was offered")
	}

	wrong := "00" + sum[2:]
	if sum[:2] == "00" {
		wrong = "11" + sum[2:]
	}
	if _, err := PinnedTLS(dial, wire.Record{Token: tok, TLS: true, CertSHA256: wrong})(ctx); err == nil {
		t.Error("a certificate other than the record's was accepted")
	}
}
