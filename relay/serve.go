package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
	"time"
)

// ServeConfig is how `tether relay` runs the router.
type ServeConfig struct {
	// Listen is the address (HOST:PORT). Without TLS it must be loopback: plain ws
	// would carry tokens in the clear.
	Listen string
	// TLSCert and TLSKey are PEM files; both or neither.
	TLSCert, TLSKey string
	// Ready, if set, is called with the URL the ends use once the router listens.
	Ready func(url string)
}

// ListenAndServe runs s as configured until ctx ends, then drops its connections.
func ListenAndServe(ctx context.Context, s *Server, cfg ServeConfig) error {
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return errors.New("give both --tls-cert and --tls-key, or neither (then only on loopback)")
	}
	var tlsConfig *tls.Config
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return fmt.Errorf("loading --tls-cert %s and --tls-key %s: %v", cfg.TLSCert, cfg.TLSKey, err)
		}
		// HTTP/1.1 only: WebSocket here is the HTTP/1.1 upgrade.
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	}
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return fmt.Errorf("--listen %q is not HOST:PORT (e.g. 127.0.0.1:8443, or :443 with TLS)", cfg.Listen)
	}
	if tlsConfig == nil && !isLoopbackHost(host) {
		return fmt.Errorf("--listen %s is beyond loopback: give --tls-cert and --tls-key (plain ws would carry tokens in the clear), or listen on 127.0.0.1 behind a TLS proxy", cfg.Listen)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %v", cfg.Listen, err)
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); tlsConfig == nil && (!ok || !tcp.IP.IsLoopback()) {
		ln.Close()
		return fmt.Errorf("--listen %s is not a loopback address here: give --tls-cert and --tls-key", cfg.Listen)
	}
	scheme := "ws"
	if tlsConfig != nil {
		scheme = "wss"
		ln = tls.NewListener(ln, tlsConfig)
	}
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          log.New(logWriter{s}, "", 0),
	}
	if cfg.Ready != nil {
		cfg.Ready(scheme + "://" + ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		s.Close()
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.Close()
	hs.Shutdown(sctx)
	<-errc
	return nil
}

// logWriter sends net/http's own complaints (TLS handshake errors) to s.Logf.
type logWriter struct{ s *Server }

func (w logWriter) Write(p []byte) (int, error) {
	w.s.logf("relay: %s", strings.TrimSpace(string(p)))
	return len(p), nil
}
