package remote

import (
	"time"

	"github.com/tether-dev/tether/tokenserver"
)

// ForwardedServerName is the TLS server name the launcher sends when it speaks TLS to a
// session's server for the browser, which sees plain http on 127.0.0.1: the gate then
// checks Origin against http (see tokenserver.ForwardedServerName).
const ForwardedServerName = tokenserver.ForwardedServerName

// OwnerHint is what the launcher offers among its TLS application protocols to the
// session's server, so that its connections are kept through a flood of others'
// (tokenserver.OwnerHint).
func (r Record) OwnerHint() string { return tokenserver.OwnerHint(r.Token) }

// LoginCode mints a one-time, short-lived code that lets a browser in once
// (`?code=…`), so the URL the launcher opens never carries the token itself.
func (r Record) LoginCode(ttl time.Duration) (string, error) {
	return tokenserver.MintLoginCode(r.Token, ttl)
}

// ChallengeResponse is what the genuine server answers to
// GET {base_url}_tether/challenge?nonce=N: a caller that knows the token checks it
// before trusting whatever listens on the socket.
func (r Record) ChallengeResponse(nonce string) string {
	return tokenserver.ChallengeResponse(r.Token, nonce)
}
