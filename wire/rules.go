package wire

import (
	"fmt"
	"regexp"
)

// The rules for the names that cross between the two sides, each stated once: the
// remote makes and checks them, the launcher checks what it reads with the same ones.

var (
	idPattern      = regexp.MustCompile(`^[a-z2-7]{8}$`)
	namePattern    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	hostPattern    = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9._-]{0,252})$`)
	appNamePattern = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)
)

// ValidID reports whether id is a session id: 8 characters of base32's lowercase
// alphabet (a-z, 2-7), which the remote draws from crypto/rand.
func ValidID(id string) bool { return idPattern.MatchString(id) }

// CheckName says whether n is acceptable as a session name: 1 to 64 characters of
// [A-Za-z0-9._-], starting with a letter or digit, and not shaped like a session id
// (so an id never resolves to a name). The error says what to use instead.
func CheckName(n string) error {
	if !namePattern.MatchString(n) {
		return fmt.Errorf("session name %q is not valid: use 1 to %d letters, digits, '.', '_' or '-', starting with a letter or digit", n, MaxNameLen)
	}
	if ValidID(n) {
		return fmt.Errorf("session name %q looks like a session id; pick another name", n)
	}
	return nil
}

// ValidHost reports whether h is a host or node name as a remote reports its own.
func ValidHost(h string) bool { return hostPattern.MatchString(h) }

// ValidAppName reports whether a is shaped like a preset's name (jupyter,
// code-server).
func ValidAppName(a string) bool { return appNamePattern.MatchString(a) }
