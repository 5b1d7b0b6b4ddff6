package main

import (
	"context"
	"net"

	"github.com/tether-dev/tether/relay"
)

// relayDial is the launcher's stream through a relay to a portal's host. It lives in
// main so that the launcher needs no import of relay: it is handed this function.
func relayDial(ctx context.Context, relayURL, token, portal string) (net.Conn, error) {
	return relay.Dial(ctx, relayURL, token, portal, nil)
}
