package relay

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// TrustFile is the TLS configuration of an end that trusts the relay's certificate
// only if it chains to a certificate in file (PEM: a private CA, or the relay's own
// self-signed certificate), instead of the system's roots. Go reads SSL_CERT_FILE only
// on Linux and other Unix but macOS, and there for every connection of the process;
// this names the relay's authority on every platform a launcher runs on, for the relay
// alone. Its errors are one line naming the file.
func TrustFile(file string) (*tls.Config, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("--relay-ca %s: no such file (give the PEM certificate of the relay's CA)", file)
	}
	if err != nil {
		return nil, fmt.Errorf("--relay-ca %s: %v", file, errors.Unwrap(err))
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := b; ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("--relay-ca %s: certificate %d does not parse: %v", file, n+1, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("--relay-ca %s holds no PEM certificate (-----BEGIN CERTIFICATE-----)", file)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}
