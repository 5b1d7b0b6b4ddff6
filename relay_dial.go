package main

import (
	"context"
	"net"
	"sync"

	"github.com/tether-dev/tether/launcher"
	"github.com/tether-dev/tether/relay"
)

// relayDialer is the launcher's stream through a relay to a portal's host, trusting
// the relay's certificate by caFile's CAs when given (--relay-ca), else the system's.
// It lives in main so that the launcher needs no import of relay: it is handed this
// function.
func relayDialer(caFile string) func(ctx context.Context, relayURL, token, portal string) (net.Conn, error) {
	var once sync.Once
	var o relay.Options
	var caErr error
	return func(ctx context.Context, relayURL, token, portal string) (net.Conn, error) {
		once.Do(func() {
			if caFile != "" {
				o.TLS, caErr = relay.TrustFile(caFile)
			}
		})
		if caErr != nil {
			return nil, permanentError{&launcher.Error{Msg: caErr.Error(), Code: 2}}
		}
		return relay.Dial(ctx, relayURL, token, portal, &o)
	}
}

// permanentError: trying again cannot help (tunnel stops reconnecting).
type permanentError struct{ error }

func (e permanentError) Unwrap() error   { return e.error }
func (e permanentError) Permanent() bool { return true }
