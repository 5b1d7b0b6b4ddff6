package launcher

import (
	"time"

	"github.com/tether-dev/tether/wire"
)

// challengeResponse is what the genuine server answers to the nonce.
func challengeResponse(rec wire.Record, nonce string) (string, error) {
	return rec.ChallengeResponse(nonce), nil
}

// loginCode mints the browser's one-time code from the token read over SSH.
func loginCode(rec wire.Record, ttl time.Duration) (string, error) {
	return rec.LoginCode(ttl)
}
