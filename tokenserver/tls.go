package tokenserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// selfSignedLifetime: the certificate is made at start and lives as long as a
// detached session reasonably may.
const selfSignedLifetime = 397 * 24 * time.Hour

// SelfSignedTLS makes an ECDSA P-256 certificate for localhost, 127.0.0.1 and ::1,
// valid from now, and returns a TLS configuration serving it and the hex SHA-256 of the
// certificate's DER (the ready record's cert_sha256, which a client pins instead of
// trusting a CA).
func SelfSignedTLS() (*tls.Config, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, "", fmt.Errorf("tokenserver: generating a TLS key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, "", fmt.Errorf("tokenserver: generating a certificate serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "tether localhost"},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              now.Add(selfSignedLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, "", fmt.Errorf("tokenserver: creating a certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, "", fmt.Errorf("tokenserver: parsing the new certificate: %w", err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	return serverTLSConfig(cert), Fingerprint(der), nil
}

// LoadTLS reads a PEM certificate (chain) and key. The key may sit in the certificate
// file: pass keyFile "" or the same path. The fingerprint is of the leaf certificate.
func LoadTLS(certFile, keyFile string) (*tls.Config, string, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, "", fmt.Errorf("tokenserver: reading the TLS certificate: %w", err)
	}
	keyPEM := certPEM
	if keyFile != "" && filepath.Clean(keyFile) != filepath.Clean(certFile) {
		if keyPEM, err = os.ReadFile(keyFile); err != nil {
			return nil, "", fmt.Errorf("tokenserver: reading the TLS key: %w", err)
		}
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// The error texts of X509KeyPair name block types, never key material.
		return nil, "", fmt.Errorf("tokenserver: loading the TLS certificate and key: %w", err)
	}
	if len(cert.Certificate) == 0 {
		return nil, "", errors.New("tokenserver: no certificate in the TLS certificate file")
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, "", fmt.Errorf("tokenserver: parsing the TLS certificate: %w", err)
		}
	}
	if time.Now().After(leaf.NotAfter) {
		return nil, "", fmt.Errorf("tokenserver: the TLS certificate expired on %s; renew it", leaf.NotAfter.UTC().Format(time.DateOnly))
	}
	return serverTLSConfig(cert), Fingerprint(cert.Certificate[0]), nil
}

// Fingerprint is the hex SHA-256 of a certificate's DER encoding.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

func serverTLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"},
	}
}
