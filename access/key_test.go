package access

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

const testKey = "correct-horse-battery-staple"

// testHash is HashKey(testKey), made once: argon2id takes tens of milliseconds.
var testHash = func() string {
	h, err := HashKey(testKey)
	if err != nil {
		panic(err)
	}
	return h
}()

func TestHashKeyFormat(t *testing.T) {
	h, err := HashKey(testKey)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("HashKey = %q; want the OWASP parameters m=19456,t=2,p=1", h)
	}
	f := strings.Split(h, "$")
	salt, err1 := base64.RawStdEncoding.DecodeString(f[4])
	hash, err2 := base64.RawStdEncoding.DecodeString(f[5])
	if err1 != nil || err2 != nil || len(salt) != 16 || len(hash) != 32 {
		t.Fatalf("HashKey = %q: salt %d bytes (%v), hash %d bytes (%v); want 16 and 32", h, len(salt), err1, len(hash), err2)
	}
	h2, _ := HashKey(testKey)
	if h2 == h || strings.Split(h2, "$")[4] == f[4] {
		t.Errorf("two hashes of one key share a salt: %q, %q", h, h2)
	}
	if !VerifyKey(h, testKey) || !VerifyKey(h2, testKey) {
		t.Errorf("VerifyKey refuses the key HashKey hashed")
	}
}

func TestHashKeyRefuses(t *testing.T) {
	tests := []struct{ key, want string }{
		{"", "the key is 0 characters; use at least 16"},
		{"short-key", "the key is 9 characters; use at least 16"},
		{"ééééééééééééééé", "the key is 15 characters; use at least 16"}, // 30 bytes, 15 characters
		{"tab\tin-the-middle-here", "control character"},
		{"line\nbreak-in-the-middle", "control character"},
		{" leading-space-key-here", "starts or ends with a space"},
		{"trailing-space-key-here ", "starts or ends with a space"},
		{strings.Repeat("k", MaxKeyLen+1), "use at most 1024"},
		{"bad-utf8-\xff-key-here-long", "not valid UTF-8"},
	}
	for _, tt := range tests {
		h, err := HashKey(tt.key)
		var ke *KeyError
		if err == nil || !errors.As(err, &ke) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("HashKey(%q) = %q, %v; want a KeyError containing %q", tt.key, h, err, tt.want)
		}
	}
	for _, ok := range []string{"sixteen-chars-ok", "ééééééééééééééééé", "with inner spaces ok"} {
		if _, err := HashKey(ok); err != nil {
			t.Errorf("HashKey(%q): %v", ok, err)
		}
	}
}

func TestVerifyKey(t *testing.T) {
	f := strings.Split(testHash, "$")
	salt, hash := f[4], f[5]
	flip := func(s string) string { // change one base64 character, keeping it canonical
		b, _ := base64.RawStdEncoding.DecodeString(s)
		b[0] ^= 1
		return base64.RawStdEncoding.EncodeToString(b)
	}
	phcOf := func(params, salt, hash string) string {
		return "$argon2id$v=19$" + params + "$" + salt + "$" + hash
	}
	tests := []struct {
		name, phc, key string
		want           bool
	}{
		{"right key", testHash, testKey, true},
		{"wrong key", testHash, testKey + "!", false},
		{"case differs", testHash, strings.ToUpper(testKey), false},
		{"the hash as the key", testHash, testHash, false},
		{"the hash part as the key", testHash, hash, false},
		{"empty key", testHash, "", false},
		{"truncated PHC", testHash[:len(testHash)-5], testKey, false},
		{"PHC without the hash", strings.Join(f[:5], "$"), testKey, false},
		{"altered hash", phcOf("m=19456,t=2,p=1", salt, flip(hash)), testKey, false},
		{"altered salt", phcOf("m=19456,t=2,p=1", flip(salt), hash), testKey, false},
		{"altered t", phcOf("m=19456,t=3,p=1", salt, hash), testKey, false},
		{"padded base64", phcOf("m=19456,t=2,p=1", salt, hash+"="), testKey, false},
		{"newline in base64", phcOf("m=19456,t=2,p=1", salt[:4]+"\n"+salt[4:], hash), testKey, false},
		{"argon2i", strings.Replace(testHash, "$argon2id$", "$argon2i$", 1), testKey, false},
		{"version 16", strings.Replace(testHash, "$v=19$", "$v=16$", 1), testKey, false},
		{"no version", "$argon2id$m=19456,t=2,p=1$" + salt + "$" + hash, testKey, false},
		{"parameters reordered", phcOf("t=2,m=19456,p=1", salt, hash), testKey, false},
		{"leading zero", phcOf("m=019456,t=2,p=1", salt, hash), testKey, false},
		{"plus sign", phcOf("m=+19456,t=2,p=1", salt, hash), testKey, false},
		{"extra parameter", phcOf("m=19456,t=2,p=1,keyid=x", salt, hash), testKey, false},
		{"trailing $", testHash + "$", testKey, false},
		{"leading junk", "x" + testHash, testKey, false},
		{"empty", "", testKey, false},
	}
	for _, tt := range tests {
		if got := VerifyKey(tt.phc, tt.key); got != tt.want {
			t.Errorf("%s: VerifyKey(%q, %q) = %v; want %v", tt.name, tt.phc, tt.key, got, tt.want)
		}
	}
}

// TestParsePHCBounds: parameters that would make the server allocate gigabytes, spin
// for minutes or accept a hash weaker than OWASP's table are refused before any
// hashing (each case returns at once).
// A long field of a bad hash is cut at a character in the error, never inside one.
func TestParsePHCClipsWholeCharacters(t *testing.T) {
	_, err := parsePHC("$a" + strings.Repeat("€", 20) + "$v=19$m=19456,t=2,p=1$AAAA$AAAA") // byte 24 is inside a €
	if err == nil || !strings.Contains(err.Error(), "€…") || strings.Contains(err.Error(), `\x`) {
		t.Errorf("parsePHC: %v; want the algorithm cut after a whole € and marked …", err)
	}
}

func TestParsePHCBounds(t *testing.T) {
	salt := base64.RawStdEncoding.EncodeToString(make([]byte, 16))
	hash := base64.RawStdEncoding.EncodeToString(make([]byte, 32))
	tests := []struct {
		params string
		want   string // "" = accepted
	}{
		{"m=19456,t=2,p=1", ""},
		{"m=65536,t=3,p=4", ""}, // RFC 9106's low-memory setting, argon2-cffi's default
		{"m=47104,t=1,p=1", ""}, // OWASP's first row
		{"m=7168,t=5,p=1", ""},  // OWASP's last row
		{"m=4194304,t=2,p=1", "above the 65536 KiB"},
		{"m=4294967295,t=1,p=1", "above the 65536 KiB"},
		{"m=4294967296,t=1,p=1", "not m=...,t=...,p=..."}, // overflows uint32
		{"m=19456,t=1000000,p=1", "passes t=1000000"},
		{"m=19456,t=0,p=1", "passes t=0"},
		{"m=19456,t=2,p=0", "parallelism p=0"},
		{"m=19456,t=2,p=255", "parallelism p=255"},
		{"m=19456,t=2,p=256", "parallelism p=256"},
		{"m=8,t=1,p=1", "weaker than OWASP"},
		{"m=19456,t=1,p=1", "weaker than OWASP"},
		{"m=-1,t=2,p=1", "not m=...,t=...,p=..."},
	}
	for _, tt := range tests {
		start := time.Now()
		_, err := parsePHC("$argon2id$v=19$" + tt.params + "$" + salt + "$" + hash)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v; want it accepted", tt.params, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: %v; want an error containing %q", tt.params, err, tt.want)
		}
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Errorf("%s: parsing took %v", tt.params, d)
		}
	}
	for _, tt := range []struct{ salt, hash, want string }{
		{base64.RawStdEncoding.EncodeToString(make([]byte, 4)), hash, "salt"},
		{base64.RawStdEncoding.EncodeToString(make([]byte, 15)), hash, "salt"},
		{salt, base64.RawStdEncoding.EncodeToString(make([]byte, 30)), "hash"}, // cut short by 3 characters
		{base64.RawStdEncoding.EncodeToString(make([]byte, 65)), hash, "salt"},
		{salt, base64.RawStdEncoding.EncodeToString(make([]byte, 16)), "hash"},
		{salt, base64.RawStdEncoding.EncodeToString(make([]byte, 64)), "hash"},
		{salt, "!!!!", "hash"},
	} {
		if _, err := parsePHC("$argon2id$v=19$m=19456,t=2,p=1$" + tt.salt + "$" + tt.hash); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("salt %q hash %q: %v; want an error about the %s", tt.salt, tt.hash, err, tt.want)
		}
	}
	// A huge parameter is refused by VerifyKey too, at once.
	start := time.Now()
	if VerifyKey("$argon2id$v=19$m=4194304,t=10,p=1$"+salt+"$"+hash, testKey) {
		t.Error("VerifyKey accepted a hash with m=4 GiB")
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("VerifyKey with m=4 GiB took %v", d)
	}
}

// TestHashTime measures one hash with the parameters HashKey uses (reported with -v).
func TestHashTime(t *testing.T) {
	const n = 5
	start := time.Now()
	for range n {
		VerifyKey(testHash, testKey)
	}
	per := time.Since(start) / n
	t.Logf("argon2id m=19456 KiB, t=2, p=1: %v per hash (mean of %d)", per.Round(time.Microsecond), n)
	if per > 5*time.Second {
		t.Errorf("one hash took %v", per)
	}
}

func BenchmarkVerifyKey(b *testing.B) {
	for b.Loop() {
		VerifyKey(testHash, testKey)
	}
}

func ExampleHashKey() {
	h, _ := HashKey("a-long-shared-lab-key")
	fmt.Println(strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$"), VerifyKey(h, "a-long-shared-lab-key"))
	// Output: true true
}
