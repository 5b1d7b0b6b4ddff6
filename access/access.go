package access

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// Paths are the file paths a user may use in apps that can serve files: absolute,
// cleaned, ~ expanded. Write paths may be read too; LoadDefault, if set, lies within
// one of them.
type Paths struct {
	Read        []string
	Write       []string
	LoadDefault string
}

// rights are what one key or group grants.
type rights struct {
	apps  []string // sorted, unique; ["*"] for every app
	paths Paths
}

func (r rights) mayOpen(app string) bool {
	return app != "" && (slices.Contains(r.apps, "*") || slices.Contains(r.apps, app))
}

// accessKey is one entry of keys.
type accessKey struct {
	name  string
	raw   string // the PHC string as written
	stamp string // keyStamp(raw)
	phc   phc
	rights
}

// group is one entry of user_groups.
type group struct {
	name     string
	patterns []pattern
	rights
}

// Mode is the file's access_control.
type Mode string

// The access_control values.
const (
	ModeKeys Mode = "keys" // access keys only
	ModeOIDC Mode = "oidc" // OIDC sign-in by e-mail, and the keys listed if any
)

// Policy is one version of an --access file, read by Load. It implements
// tokenserver.Team (Key, Member, MayOpen); its methods are safe for concurrent use.
//
// A user is a key's name or an e-mail address: key names never contain '@'. The owner
// (the server's token) is the gate's, not the policy's: "owner" is no key's name, and
// the policy grants it nothing.
type Policy struct {
	file   string
	mode   Mode
	keys   []*accessKey
	byName map[string]*accessKey
	byHash map[string]*accessKey // by the PHC string as written
	groups []group
	oidc   *OIDCConfig
	cache  *keyCache
}

// File is the path the policy was read from.
func (p *Policy) File() string { return p.file }

// Mode is the policy's access_control.
func (p *Policy) Mode() Mode { return p.mode }

// OIDC is the sign-in provider's configuration (a copy), or nil unless
// access_control: oidc.
func (p *Policy) OIDC() *OIDCConfig {
	if p.oidc == nil {
		return nil
	}
	c := *p.oidc
	return &c
}

// Key returns the name of the access key presented, or ok=false.
//
// The first time a key is seen it is hashed with the parameters of every configured
// hash, all of them, whichever matches (so the time does not say which key matched),
// at most maxVerifying keys at a time in the process (so a burst of wrong keys costs
// at most that many argon2 memory blocks). A key that verified is then remembered, by
// an HMAC of it under a per-process random secret, and found again in microseconds;
// wrong keys are not remembered. Keys shorter than MinKeyLen or longer than MaxKeyLen
// characters (which HashKey never hashes) are refused without hashing.
func (p *Policy) Key(key string) (name string, ok bool) {
	if k := p.match(key); k != nil {
		return k.name, true
	}
	return "", false
}

// KeyStamp is Key, plus the key's stamp: a digest of its hash as the file gives it
// (16 hex digits of SHA-256), which changes when another key takes the name. The gate
// keeps it in the session cookie and asks MayOpenKey with it (tokenserver.KeyStamps),
// so a session of a key replaced or renamed on reload ends at once.
func (p *Policy) KeyStamp(key string) (name, stamp string, ok bool) {
	if k := p.match(key); k != nil {
		return k.name, k.stamp, true
	}
	return "", "", false
}

// MayOpenKey reports whether the key named name may open app, if the name still
// belongs to the key of stamp (KeyStamp).
func (p *Policy) MayOpenKey(name, stamp, app string) bool {
	k := p.byName[name]
	return k != nil && k.stamp == stamp && k.mayOpen(app)
}

// KnownKey is KeyStamp for a key verified before (in this process, and still listed
// under the same hash), without hashing; ok=false for any other key.
func (p *Policy) KnownKey(key string) (name, stamp string, ok bool) {
	if k := p.known(key); k != nil {
		return k.name, k.stamp, true
	}
	return "", "", false
}

// known is the presented key if it was verified before, or nil.
func (p *Policy) known(key string) *accessKey {
	if len(p.keys) == 0 || len(key) > MaxKeyLen || utf8.RuneCountInString(key) < MinKeyLen {
		return nil
	}
	if raw, ok := p.cache.get(keyMAC(key)); ok {
		return p.byHash[raw]
	}
	return nil
}

// match is the key presented, or nil (see Key).
func (p *Policy) match(key string) *accessKey {
	if len(p.keys) == 0 || len(key) > MaxKeyLen || utf8.RuneCountInString(key) < MinKeyLen {
		return nil
	}
	if k := p.known(key); k != nil {
		return k
	}
	mac := keyMAC(key)
	verifying <- struct{}{}
	defer func() { <-verifying }()
	match := -1
	for i := range p.keys {
		if p.keys[i].phc.verify(key) && match < 0 {
			match = i
		}
	}
	if match < 0 {
		return nil
	}
	p.cache.put(mac, p.keys[match].raw)
	return p.keys[match]
}

// keyStamp is the stamp of a key's PHC string (KeyStamp).
func keyStamp(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:8])
}

// Member reports whether email (verified by the provider) belongs to at least one user
// group. Always false unless access_control: oidc.
func (p *Policy) Member(email string) bool {
	local, domain, ok := splitAddress(email)
	if !ok || p.mode != ModeOIDC {
		return false
	}
	for _, g := range p.groups {
		if g.matches(local, domain) {
			return true
		}
	}
	return false
}

// MayOpen reports whether user (a key's name or an e-mail) may open app: false for a
// user the policy does not know (a key removed, an address no group matches).
func (p *Policy) MayOpen(user, app string) bool {
	for _, r := range p.rightsOf(user) {
		if r.mayOpen(app) {
			return true
		}
	}
	return false
}

// Apps returns the apps user may open, sorted: the names as the file lists them, or
// ["*"] when user may open every app (the caller lists the apps it serves, filtered by
// MayOpen). Nil for a user the policy does not know.
func (p *Policy) Apps(user string) []string {
	var apps []string
	for _, r := range p.rightsOf(user) {
		if slices.Contains(r.apps, "*") {
			return []string{"*"}
		}
		apps = append(apps, r.apps...)
	}
	slices.Sort(apps)
	return slices.Compact(apps)
}

// AppNames returns every app name the policy grants to some key or group ("*" left
// out), sorted: serve checks them against the apps it serves (a name it does not
// serve is most likely a typo, and opens nothing).
func (p *Policy) AppNames() []string {
	var apps []string
	for _, k := range p.keys {
		apps = append(apps, k.apps...)
	}
	for _, g := range p.groups {
		apps = append(apps, g.apps...)
	}
	apps = slices.DeleteFunc(apps, func(a string) bool { return a == "*" })
	slices.Sort(apps)
	return slices.Compact(apps)
}

// Paths returns the file paths user may use: a key's own; for an e-mail, those of
// every group it belongs to (read and write lists joined, LoadDefault from the first
// of those groups, in the file's order, that sets one).
func (p *Policy) Paths(user string) Paths {
	var out Paths
	for _, r := range p.rightsOf(user) {
		out.Read = append(out.Read, r.paths.Read...)
		out.Write = append(out.Write, r.paths.Write...)
		if out.LoadDefault == "" {
			out.LoadDefault = r.paths.LoadDefault
		}
	}
	slices.Sort(out.Read)
	slices.Sort(out.Write)
	out.Read, out.Write = slices.Compact(out.Read), slices.Compact(out.Write)
	return out
}

// rightsOf is what user is granted: one key's rights, or those of every group an
// e-mail belongs to.
func (p *Policy) rightsOf(user string) []rights {
	if !strings.Contains(user, "@") {
		if k := p.byName[user]; k != nil {
			return []rights{k.rights}
		}
		return nil
	}
	local, domain, ok := splitAddress(user)
	if !ok || p.mode != ModeOIDC {
		return nil
	}
	var out []rights
	for _, g := range p.groups {
		if g.matches(local, domain) {
			out = append(out, g.rights)
		}
	}
	return out
}

func (g *group) matches(local, domain string) bool {
	for _, pt := range g.patterns {
		if pt.match(local, domain) {
			return true
		}
	}
	return false
}

// maxVerifying is how many keys may be hashed at once in the process: each hash
// holds its memory parameter (19 MiB by default, at most 64 MiB) while it runs.
var maxVerifying = min(max(runtime.NumCPU(), 1), 4)

var verifying = make(chan struct{}, maxVerifying)

// The per-process secret under which verified keys are remembered: what stays in
// memory is no fast hash of a key that could be searched without it.
var (
	macOnce   sync.Once
	macSecret [32]byte
)

func keyMAC(key string) [32]byte {
	macOnce.Do(func() {
		if _, err := rand.Read(macSecret[:]); err != nil {
			panic("access: crypto/rand failed: " + err.Error()) // never on a supported platform
		}
	})
	m := hmac.New(sha256.New, macSecret[:])
	m.Write([]byte(key))
	var out [32]byte
	m.Sum(out[:0])
	return out
}

// keyCache remembers verified keys: HMAC of the key → the PHC string it matched. It
// holds at most one entry per configured hash (two keys cannot match one hash), and
// survives a reload for the hashes the new file keeps.
type keyCache struct {
	mu sync.RWMutex
	m  map[[32]byte]string
}

func newKeyCache() *keyCache { return &keyCache{m: map[[32]byte]string{}} }

func (c *keyCache) get(mac [32]byte) (string, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	raw, ok := c.m[mac]
	return raw, ok
}

func (c *keyCache) put(mac [32]byte, raw string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[mac] = raw
}

// keep returns a new cache with the entries whose hash is in hashes.
func (c *keyCache) keep(hashes map[string]*accessKey) *keyCache {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := newKeyCache()
	for mac, raw := range c.m {
		if hashes[raw] != nil {
			out.m[mac] = raw
		}
	}
	return out
}

func (c *keyCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// Live is the policy in force, replaced by Reload (SIGHUP). It implements
// tokenserver.Team by asking the current policy on every call; its methods are safe
// for concurrent use.
type Live struct {
	mu  sync.Mutex // serializes Reload
	cur atomic.Pointer[Policy]
}

// NewLive holds p.
func NewLive(p *Policy) *Live {
	l := &Live{}
	l.cur.Store(p)
	return l
}

// LoadLive reads path and holds its policy.
func LoadLive(path string) (*Live, error) {
	p, err := Load(path)
	if err != nil {
		return nil, err
	}
	return NewLive(p), nil
}

// Policy is the policy in force.
func (l *Live) Policy() *Policy { return l.cur.Load() }

// Reload reads path and, if it is good, puts its policy in force at once (keys already
// verified and still listed stay fast). If it is bad, or changes access_control or the
// oidc section (the sign-in is set up once, when serve starts: restart to change
// them), the policy in force stays and the error says why.
func (l *Live) Reload(path string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	np, err := Load(path)
	if err != nil {
		return err
	}
	old := l.cur.Load()
	if np.mode != old.mode || !sameOIDC(np.oidc, old.oidc) {
		return &FileError{File: path, Msg: "access_control and oidc cannot change while tether serve runs (its sign-in is set up when it starts); restart it to change them, the policy in force is unchanged"}
	}
	np.cache = old.cache.keep(np.byHash)
	l.cur.Store(np)
	return nil
}

func sameOIDC(a, b *OIDCConfig) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// Key is the policy in force's Key.
func (l *Live) Key(key string) (string, bool) { return l.cur.Load().Key(key) }

// KeyStamp is the policy in force's KeyStamp.
func (l *Live) KeyStamp(key string) (string, string, bool) { return l.cur.Load().KeyStamp(key) }

// KnownKey is the policy in force's KnownKey.
func (l *Live) KnownKey(key string) (string, string, bool) { return l.cur.Load().KnownKey(key) }

// MayOpenKey is the policy in force's MayOpenKey.
func (l *Live) MayOpenKey(name, stamp, app string) bool {
	return l.cur.Load().MayOpenKey(name, stamp, app)
}

// Member is the policy in force's Member.
func (l *Live) Member(email string) bool { return l.cur.Load().Member(email) }

// MayOpen is the policy in force's MayOpen.
func (l *Live) MayOpen(user, app string) bool { return l.cur.Load().MayOpen(user, app) }

// Apps is the policy in force's Apps.
func (l *Live) Apps(user string) []string { return l.cur.Load().Apps(user) }

// Paths is the policy in force's Paths.
func (l *Live) Paths(user string) Paths { return l.cur.Load().Paths(user) }

// OIDC is the policy in force's OIDC (which Reload never changes).
func (l *Live) OIDC() *OIDCConfig { return l.cur.Load().OIDC() }
