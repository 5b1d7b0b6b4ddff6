package launcher

import (
	"time"

	"github.com/tether-dev/tether/remote"
)

// challengeResponse is what the genuine server answers to the nonce.
func challengeResponse(rec remote.Record, nonce string) (string, error) {
	return rec.ChallengeResponse(nonce), nil
}

// loginCode mints the browser's one-time code from the token read over SSH.
func loginCode(rec remote.Record, ttl time.Duration) (string, error) {
	return rec.LoginCode(ttl)
}
