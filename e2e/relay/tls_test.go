//go:build unix

package relay

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/e2e"
	"github.com/tether-dev/tether/relay"
)

// TestRelayTLS: the relay as the README runs it beyond loopback, over TLS (wss://) with
// a certificate from a private CA the test makes, trusted with --relay-ca (tether host)
// and TETHER_RELAY_CA (the launcher). A launcher that does not trust the CA is refused
// in one line saying so. Through it: a launched app's output comes back with `logs
// --relay`, and a client token that expires ends the attached launcher's connection:
// the host closes it at the token's exp and the launcher says the token expired,
// without trying again.
func TestRelayTLS(t *testing.T) {
	began := time.Now()
	u := e2e.OtherUserWithShell(t, "bash")
	bin := installFor(t, u, e2e.Binary(t))
	dir := t.TempDir()
	caFile, certFile, keyFile := makeRelayCert(t, dir)
	secret := filepath.Join(dir, "relay.secret")
	b := make([]byte, 32)
	rand.Read(b)
	e2e.WriteFile(t, secret, string(b), 0o600)
	r := startRelayAt(t, "127.0.0.1:0", secret, "--tls-cert", certFile, "--tls-key", keyFile)
	r.secret = secret
	if !strings.HasPrefix(r.url, "wss://127.0.0.1:") {
		t.Fatalf("the relay with a certificate listens on %s; want wss://", r.url)
	}
	hostToken := r.mint(t, "host", "lab", "lab-box")
	clientToken := r.mint(t, "client", "lab", "ann")

	// The host trusts the CA by --relay-ca (a file of its user's).
	hostCA := filepath.Join(u.Home, "relay-ca.pem")
	pemCA, _ := os.ReadFile(caFile)
	e2e.WriteFile(t, hostCA, string(pemCA), 0o644)
	host := startHost(t, u, bin, r.url, hostToken, "--relay-ca", hostCA)
	t.Cleanup(func() { u.Command(bin, "stop", "--all").Run() })

	// A launcher without the CA: one line, saying what is wrong and what to do.
	lap := newLaptop(t, clientToken, false)
	_, errOut, code := e2e.RunTetherEnv(t, append(lap.env, "SSL_CERT_FILE=", "TETHER_RELAY_CA="), "ls", "--relay", r.url, "portal:lab")
	want := "tether: cannot reach portal:lab: the certificate of the relay at " + r.listen + " is not trusted: it is not signed by an authority this machine trusts (for a relay with a private CA, give the CA's certificate with --relay-ca FILE)\n"
	if code == 0 || errOut != want {
		t.Errorf("ls through a relay whose certificate is not trusted: exit %d, stderr %q; want %q", code, errOut, want)
	}
	// A --relay-ca that holds no certificate.
	notPEM := secret // any file that is not a PEM certificate
	_, errOut, code = e2e.RunTetherEnv(t, lap.env, "ls", "--relay", r.url, "--relay-ca", notPEM, "portal:lab")
	if code == 0 || errOut != "tether: --relay-ca "+notPEM+" holds no PEM certificate (-----BEGIN CERTIFICATE-----)\n" {
		t.Errorf("ls with a --relay-ca of no certificate: exit %d, %q", code, errOut)
	}

	// With the CA (TETHER_RELAY_CA): launch an app that prints a marker, reach it,
	// and read its output back with logs --relay.
	trusted := append(append([]string(nil), lap.env...), "TETHER_RELAY_CA="+caFile)
	marker := "relay-tls-logs-" + fmt.Sprint(time.Now().UnixNano())
	app := []string{"--", "/bin/sh", "-c", `echo "$1"; exec /usr/bin/python3 -m http.server "$2" --bind 127.0.0.1`, "sh", marker, "{port}"}
	t0 := time.Now()
	l := e2e.StartLauncher(t, append([]string{"launch", "--relay", r.url, "portal:lab", "--json", "--no-browser"}, app...), true, trusted...)
	rec := l.Line.Session
	t.Logf("launch --relay wss://: URL ready after %s", e2e.FmtDur(time.Since(t0)))
	if st, body, _ := e2e.Fetch(t, fmt.Sprintf("http://127.0.0.1:%d/", l.Line.LocalPort), "Authorization", "token "+rec.Token); st != 200 || !strings.Contains(body, "Directory listing") {
		t.Errorf("GET through the wss:// relay: %d %.200q", st, body)
	}
	l.Interrupt(t)
	var logs string
	if !e2e.WaitFor(10*time.Second, func() bool {
		logs, _, _ = e2e.RunTetherEnv(t, trusted, "logs", "--relay", r.url, "portal:lab", rec.ID)
		return strings.Contains(logs, marker)
	}) {
		t.Errorf("logs --relay: %q; want the app's output, %s", logs, marker)
	}

	// Attach with a client token that expires in a few seconds: the host ends the
	// connection at its exp; the launcher says the token expired and exits.
	key := relay.KeyFromSecret(b)
	const ttl = 10 * time.Second
	short, err := relay.Mint(key, relay.RoleClient, "lab", "ann-short", ttl)
	if err != nil {
		t.Fatal(err)
	}
	exp := relay.Expiry(short)
	a := e2e.StartLauncher(t, []string{"attach", "--relay", r.url, "portal:lab", rec.ID, "--json", "--no-browser"}, true, append(trusted, "TETHER_PORTAL_TOKEN="+short)...)
	if err, ok := a.Proc.Wait(time.Until(exp) + 40*time.Second); !ok {
		t.Fatalf("the attached launcher outlived its token (exp %s) by 40 s; stderr:\n%s\nhost:\n%s", exp.Format(time.TimeOnly), a.Stderr.String(), host.log.String())
	} else if err == nil {
		t.Errorf("the launcher exited 0 when its token expired")
	}
	ended := time.Now()
	t.Logf("the launcher ended %s after its token's exp: %s", e2e.FmtDur(ended.Sub(exp)), e2e.LastLines(a.Stderr.String(), 1))
	if ended.Before(exp) {
		t.Errorf("the launcher ended at %s, before its token expired at %s", ended.Format(time.TimeOnly), exp.Format(time.TimeOnly))
	}
	last := e2e.LastLines(a.Stderr.String(), 1)
	wantExp := "tether: your client token for portal:lab (in TETHER_PORTAL_TOKEN) expired at " + exp.Local().Format("2006-01-02 15:04 MST") + "; ask the relay's operator for a new one"
	if !strings.HasPrefix(last, wantExp) {
		t.Errorf("the launcher's last line: %q; want it to begin %q", last, wantExp)
	}
	if n := strings.Count(a.Stderr.String(), "reconnecting to portal:lab (attempt"); n > 1 {
		t.Errorf("the launcher told %d reconnect attempts; want at most one:\n%s", n, a.Stderr.String())
	}
	e2e.MustContain(t, "tether host's log", host.log.String(), `client token expired at `, `: closed its connection`)
	if _, errOut, code := e2e.RunTetherEnv(t, trusted, "stop", "--relay", r.url, "portal:lab", rec.ID); code != 0 {
		t.Errorf("stop --relay: exit %d: %s", code, errOut)
	}
	t.Logf("TestRelayTLS: %s in all", e2e.FmtDur(time.Since(began)))
}

// makeRelayCert writes a private CA (ca.pem) and a certificate it signed for
// 127.0.0.1 and localhost (cert.pem, key.pem) into dir.
func makeRelayCert(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tether e2e relay CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "relay"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(leafKey)
	ca, cert, key = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	e2e.WriteFile(t, ca, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})), 0o644)
	e2e.WriteFile(t, cert, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER})), 0o644)
	e2e.WriteFile(t, key, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})), 0o600)
	return ca, cert, key
}
