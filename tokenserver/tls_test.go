package tokenserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

var tlsConfigEmpty tls.Config

// pinnedClient trusts exactly the certificate with the given fingerprint, as the
// launcher does with the ready record's cert_sha256.
func pinnedClient(t *testing.T, fingerprint string) (*http.Client, *tls.Config) {
	cfg := &tls.Config{
		InsecureSkipVerify: true, // replaced by the pin below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || !TokensEqual(Fingerprint(cs.PeerCertificates[0].Raw), fingerprint) {
				return errors.New("certificate fingerprint mismatch")
			}
			return nil
		},
	}
	tr := &http.Transport{TLSClientConfig: cfg}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, cfg
}

// TLS mode: the served certificate is the one whose fingerprint SelfSignedTLS
// returned; it names localhost, 127.0.0.1 and ::1 and is ECDSA P-256; cookies are
// Secure and __Host- (over TLS only); WebSockets work over wss; HTTP/2 is not offered.
func TestSelfSignedTLS(t *testing.T) {
	cfg, fp, err := SelfSignedTLS()
	if err != nil {
		t.Fatal(err)
	}
	if len(fp) != 64 || strings.Trim(fp, "0123456789abcdef") != "" {
		t.Fatalf("fingerprint %q is not 64 lower-case hex digits", fp)
	}
	leaf := cfg.Certificates[0].Leaf
	if err := leaf.VerifyHostname("localhost"); err != nil {
		t.Error(err)
	}
	for _, h := range []string{"127.0.0.1", "::1"} {
		if err := leaf.VerifyHostname(h); err != nil {
			t.Error(err)
		}
	}
	if k, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("key is %T; want ECDSA P-256", leaf.PublicKey)
	}
	if leaf.NotBefore.After(time.Now()) {
		t.Error("certificate not yet valid")
	}
	_, fp2, _ := SelfSignedTLS()
	if TokensEqual(fp, fp2) {
		t.Error("two self-signed certificates share a fingerprint")
	}

	g := newGate(t, func(o *Options) {
		o.TLS = cfg
		rec := o.App
		o.App = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if websocket.IsWebSocketUpgrade(r) {
				echoWebSocket(t, nil)(w, r)
				return
			}
			rec.ServeHTTP(w, r)
		})
	})
	base := g.served()
	if !strings.HasPrefix(base, "https://") {
		t.Fatalf("base %q", base)
	}
	c, clientCfg := pinnedClient(t, fp)
	r, _ := http.NewRequest("GET", base+"/lab?token="+g.token, nil)
	r.Header.Set("Sec-Fetch-Mode", "navigate")
	resp, _ := get(t, c, r)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("got %d; want 303", resp.StatusCode)
	}
	if resp.TLS == nil || !TokensEqual(Fingerprint(resp.TLS.PeerCertificates[0].Raw), fp) {
		t.Fatal("the served certificate is not the fingerprinted one")
	}
	if resp.TLS.NegotiatedProtocol == "h2" || resp.ProtoMajor != 1 {
		t.Errorf("negotiated %q / HTTP/%d; want HTTP/1.1 only", resp.TLS.NegotiatedProtocol, resp.ProtoMajor)
	}
	cs := resp.Cookies()
	if len(cs) != 1 || !strings.HasPrefix(cs[0].Name, "__Host-tether-") || !cs[0].Secure {
		t.Fatalf("TLS cookies %v; want one Secure __Host- cookie", cs)
	}
	r, _ = http.NewRequest("GET", base+"/lab", nil)
	r.AddCookie(&http.Cookie{Name: cs[0].Name, Value: cs[0].Value})
	if resp, body := get(t, c, r); resp.StatusCode != 200 || body != "app ok" {
		t.Errorf("cookie over TLS: got %d %q", resp.StatusCode, body)
	}
	// WebSocket over TLS with the subprotocol token.
	d := websocket.Dialer{TLSClientConfig: clientCfg, Subprotocols: []string{jupyterProtocol, tokenEntry(g.token)}}
	wsc, wresp, err := d.Dial("wss"+strings.TrimPrefix(base, "https")+"/ws", nil)
	if err != nil {
		t.Fatalf("wss dial: %v (%v)", err, wresp)
	}
	t.Cleanup(func() { wsc.Close() })
	echoOnce(t, wsc)
	// A client pinning another certificate refuses this server.
	_, otherFP, _ := SelfSignedTLS()
	oc, _ := pinnedClient(t, otherFP)
	if _, err := oc.Get(base + "/"); err == nil {
		t.Error("a client pinning another fingerprint connected")
	}
	// Plain HTTP to the TLS port gets nowhere near the app.
	before := g.app.count()
	if resp, err := http.Get("http" + strings.TrimPrefix(base, "https") + "/lab?token=" + g.token); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP to the TLS port: got %d", resp.StatusCode)
		}
	}
	if g.app.count() != before {
		t.Error("plain HTTP reached the app")
	}
}

// writePEM writes a fresh self-signed certificate and key as PEM files.
func writePEM(t *testing.T, dir string, notAfter time.Time) (certPEM, keyPEM []byte, fp string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(42),
		Subject:      pkix.Name{CommonName: "test"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-48 * time.Hour),
		NotAfter:     notAfter,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalPKCS8PrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), Fingerprint(der)
}

func TestLoadTLS(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM, fp := writePEM(t, dir, time.Now().Add(time.Hour))
	write := func(name string, b ...[]byte) string {
		p := filepath.Join(dir, name)
		var all []byte
		for _, x := range b {
			all = append(all, x...)
		}
		if err := os.WriteFile(p, all, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cert := write("cert.pem", certPEM)
	key := write("key.pem", keyPEM)
	both := write("both.pem", keyPEM, certPEM)
	for name, args := range map[string][2]string{
		"separate files":   {cert, key},
		"key in cert file": {both, ""},
		"same path twice":  {both, both},
	} {
		cfg, got, err := LoadTLS(args[0], args[1])
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !TokensEqual(got, fp) || len(cfg.Certificates) != 1 {
			t.Errorf("%s: fingerprint or certificates wrong", name)
		}
	}
	bad := map[string][2]string{
		"missing cert":      {filepath.Join(dir, "nope.pem"), key},
		"missing key":       {cert, filepath.Join(dir, "nope.pem")},
		"cert without key":  {cert, ""},
		"key for cert":      {key, key},
		"mismatched key":    {cert, write("other-key.pem", func() []byte { _, k, _ := writePEM(t, dir, time.Now().Add(time.Hour)); return k }())},
		"expired":           {write("old.pem", func() []byte { c, k, _ := writePEM(t, dir, time.Now().Add(-time.Hour)); return append(c, k...) }()), ""},
		"garbage":           {write("garbage.pem", []byte("not pem")), ""},
		"key file is empty": {cert, write("empty.pem")},
	}
	for name, args := range bad {
		_, _, err := LoadTLS(args[0], args[1])
		if err == nil {
			t.Errorf("%s: LoadTLS succeeded", name)
			continue
		}
		if !strings.HasPrefix(err.Error(), "tokenserver: ") {
			t.Errorf("%s: error %q lacks the package prefix", name, err)
		}
		if strings.Contains(err.Error(), "PRIVATE KEY-----") {
			t.Errorf("%s: the error quotes key material", name)
		}
	}
}
