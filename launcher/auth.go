package launcher

import (
	"errors"
	"time"

	"github.com/tether-dev/tether/remote"
)

// recordAuth is the part of remote.Record the launcher needs to prove the server and
// let the browser in. TEMPORARY: remote has not committed Record.LoginCode and
// Record.ChallengeResponse yet; once merged these become direct calls.
type recordAuth interface {
	LoginCode(ttl time.Duration) (string, error)
	ChallengeResponse(nonce string) string
}

var errNoRecordAuth = errors.New("launcher: this build's remote.Record cannot make challenges or login codes")

func challengeResponse(rec remote.Record, nonce string) (string, error) {
	a, ok := any(rec).(recordAuth)
	if !ok {
		return "", errNoRecordAuth
	}
	return a.ChallengeResponse(nonce), nil
}

func loginCode(rec remote.Record, ttl time.Duration) (string, error) {
	a, ok := any(rec).(recordAuth)
	if !ok {
		return "", errNoRecordAuth
	}
	return a.LoginCode(ttl)
}
