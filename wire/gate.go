package wire

import (
	"strings"
	"time"

	"github.com/tether-dev/tether/tokenserver"
)

// What the launcher says to a session's server (the gate) through SSH, besides the
// HTTP it forwards for the browser: the names and answers it proves the server with,
// and where `tether forward` streams live. The gate defines them; these are their
// names for the launcher.

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

// ForwardProtocol and ForwardPath are the launcher's side of `tether forward`: a GET
// of ForwardPath with the token in Authorization and Upgrade: ForwardProtocol becomes
// a raw stream to the port; the same GET without Upgrade only checks the port (see
// ports.go).
const ForwardProtocol = tokenserver.ForwardProtocol

// ForwardPath is where a stream to port lives under a session's base URL.
func ForwardPath(baseURL string, port int) string {
	if !strings.HasSuffix(baseURL, "/") {
		baseURL += "/"
	}
	return tokenserver.ForwardPath(baseURL, port)
}

// OwnerProof is what the launcher sends with its challenge, in OwnerProofHeader, to
// learn in the same exchange that the server takes the token: not the token, and of no
// use to whoever reads it (tokenserver.OwnerProof). The answer says so in
// OwnerAcceptedHeader (OwnerAccepted or OwnerRefused); an older server says neither.
func (r Record) OwnerProof(nonce string) string {
	return tokenserver.OwnerProof(r.Token, nonce)
}

// The header names and values of the owner proof (tokenserver.OwnerProofHeader).
const (
	OwnerProofHeader    = tokenserver.OwnerProofHeader
	OwnerAcceptedHeader = tokenserver.OwnerAcceptedHeader
	OwnerAccepted       = tokenserver.OwnerAccepted
	OwnerRefused        = tokenserver.OwnerRefused
)
