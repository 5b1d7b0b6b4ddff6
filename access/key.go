package access

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"unicode"
	"unicode/utf8"

	"github.com/tether-dev/tether/internal/termsafe"
	"golang.org/x/crypto/argon2"
)

// Access keys are stored as PHC strings of argon2id:
//
//	$argon2id$v=19$m=19456,t=2,p=1$SALT$HASH
//
// (salt and hash in unpadded standard base64). The parameters are the minimum
// configuration of OWASP's Password Storage Cheat Sheet (argon2id, 19 MiB of memory,
// 2 passes, 1 lane): a key is a shared secret of at least MinKeyLen characters, not a
// person's password, and the server verifies each key once per process (Policy caches
// it), so the memory a burst of wrong keys costs matters more than a stronger setting.

// The parameters HashKey uses.
const (
	hashMemory  = 19 * 1024 // KiB (19 MiB)
	hashTime    = 2
	hashThreads = 1
	saltLen     = 16
	hashLen     = 32
)

// The bounds VerifyKey (and Load) accept in a PHC string: a hash made by another
// argon2id tool with stronger parameters verifies (a 16- to 64-byte salt, a 32-byte
// hash: RFC 9106's and most tools' lengths; any other length is taken for a line cut
// short), but a hostile or mistyped file can
// neither make the server allocate more than maxMemory KiB per verification nor pass a
// hash weaker than the weakest setting of OWASP's table (m=7168 KiB with t=5: memory ×
// passes at least minWork).
const (
	minMemory  = 7 * 1024  // KiB
	maxMemory  = 64 * 1024 // KiB (64 MiB, argon2-cffi's and RFC 9106's low-memory default)
	minWork    = 7 * 1024 * 5
	maxTime    = 10
	maxThreads = 4
	minSaltLen = 16
	maxSaltLen = 64
)

// MinKeyLen is the fewest characters HashKey accepts in a key; MaxKeyLen the most a key
// may have (longer ones are refused by HashKey and never verified).
const (
	MinKeyLen = 16
	MaxKeyLen = 1024
)

// KeyError is a key HashKey refuses; its text says why and what to use instead.
type KeyError struct{ msg string }

func (e *KeyError) Error() string { return e.msg }

// HashKey returns the PHC string of a fresh salted argon2id hash of key, for the hash
// field of an --access file. Keys shorter than MinKeyLen characters, longer than
// MaxKeyLen bytes, with control characters or with spaces at either end are refused
// (*KeyError).
func HashKey(key string) (string, error) {
	if err := CheckKey(key); err != nil {
		return "", err
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("access: reading random salt: %w", err)
	}
	p := phc{memory: hashMemory, time: hashTime, threads: hashThreads, salt: salt}
	p.hash = p.derive(key, hashLen)
	return p.String(), nil
}

// CheckKey says whether key is acceptable as an access key (see HashKey).
func CheckKey(key string) error {
	switch {
	case !utf8.ValidString(key):
		return &KeyError{"the key is not valid UTF-8 text"}
	case len(key) > MaxKeyLen:
		return &KeyError{fmt.Sprintf("the key is %d bytes; use at most %d", len(key), MaxKeyLen)}
	}
	for _, r := range key {
		if unicode.IsControl(r) {
			return &KeyError{"the key has a control character (a tab, a newline, ...); use printable characters only"}
		}
	}
	if strings.TrimSpace(key) != key {
		return &KeyError{"the key starts or ends with a space, which copying easily loses; remove it"}
	}
	if n := utf8.RuneCountInString(key); n < MinKeyLen {
		return &KeyError{fmt.Sprintf("the key is %d characters; use at least %d (a random one: head -c 18 /dev/urandom | base64)", n, MinKeyLen)}
	}
	return nil
}

// VerifyKey reports whether key is the key phc (a PHC string from HashKey, or from
// another argon2id tool within the bounds above) was made from. A malformed PHC
// string, or one with parameters out of bounds, verifies nothing. The comparison of
// the hashes takes constant time.
func VerifyKey(phc, key string) bool {
	p, err := parsePHC(phc)
	if err != nil {
		return false
	}
	return p.verify(key)
}

// phc is a parsed argon2id PHC string.
type phc struct {
	memory     uint32
	time       uint32
	threads    uint8
	salt, hash []byte
}

var b64 = base64.RawStdEncoding.Strict()

func (p phc) String() string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.memory, p.time, p.threads,
		b64.EncodeToString(p.salt), b64.EncodeToString(p.hash))
}

// hashing counts the argon2 computations running, hashed those done (for tests and
// figures).
var hashing, hashed atomic.Int64

func (p phc) derive(key string, n int) []byte {
	hashing.Add(1)
	defer hashing.Add(-1)
	defer hashed.Add(1)
	return argon2.IDKey([]byte(key), p.salt, p.time, p.memory, p.threads, uint32(n))
}

// verify computes key's hash whatever key is (so a key too long to be one takes the
// same time as a wrong one) and compares it in constant time.
func (p phc) verify(key string) bool {
	ok := len(key) <= MaxKeyLen
	if !ok {
		key = ""
	}
	got := p.derive(key, len(p.hash))
	return subtle.ConstantTimeCompare(got, p.hash) == 1 && ok
}

// parsePHC parses s strictly: $argon2id$v=19$m=M,t=T,p=P$SALT$HASH, exactly these
// fields in this order, decimal numbers without signs or leading zeros, canonical
// unpadded base64, every parameter within bounds. The error says what is wrong, in
// words fit for a "FILE:LINE:" prefix.
func parsePHC(s string) (phc, error) {
	var p phc
	f := strings.Split(s, "$")
	if len(f) != 6 || f[0] != "" {
		return p, errors.New("not a PHC string ($argon2id$v=19$m=...,t=...,p=...$SALT$HASH)")
	}
	if f[1] != "argon2id" {
		return p, fmt.Errorf("algorithm %q is not argon2id", clip(f[1]))
	}
	if f[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, fmt.Errorf("version %q is not v=%d", clip(f[2]), argon2.Version)
	}
	params := strings.Split(f[3], ",")
	if len(params) != 3 {
		return p, fmt.Errorf("parameters %q are not m=...,t=...,p=...", clip(f[3]))
	}
	var vals [3]uint64
	for i, name := range []string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(params[i], name+"=")
		n, err := strconv.ParseUint(v, 10, 32)
		if !ok || err != nil || v != strconv.FormatUint(n, 10) {
			return p, fmt.Errorf("parameters %q are not m=...,t=...,p=...", clip(f[3]))
		}
		vals[i] = n
	}
	m, t, th := vals[0], vals[1], vals[2]
	switch {
	case m > maxMemory:
		return p, fmt.Errorf("memory m=%d KiB is above the %d KiB tether allows", m, maxMemory)
	case th < 1 || th > maxThreads:
		return p, fmt.Errorf("parallelism p=%d is not between 1 and %d", th, maxThreads)
	case t < 1 || t > maxTime:
		return p, fmt.Errorf("passes t=%d is not between 1 and %d", t, maxTime)
	case m < minMemory || m*t < minWork || m < 8*th:
		return p, fmt.Errorf("m=%d,t=%d is weaker than OWASP's minimum (m=19456,t=2); make the hash again with tether hash-key", m, t)
	}
	salt, err := b64.DecodeString(f[4])
	if err != nil || b64.EncodeToString(salt) != f[4] || len(salt) < minSaltLen || len(salt) > maxSaltLen {
		return p, fmt.Errorf("the salt is not %d to %d bytes of unpadded base64", minSaltLen, maxSaltLen)
	}
	hash, err := b64.DecodeString(f[5])
	if err != nil || b64.EncodeToString(hash) != f[5] || len(hash) != hashLen {
		return p, fmt.Errorf("the hash is not %d bytes of unpadded base64 (was the line cut short?)", hashLen)
	}
	return phc{memory: uint32(m), time: uint32(t), threads: uint8(th), salt: salt, hash: hash}, nil
}

// clip shortens a piece of a hostile string for an error message.
func clip(s string) string { return termsafe.Clip(s, 24) }
