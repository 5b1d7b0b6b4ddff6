package tunnel

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tether-dev/tether/internal/shquote"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// KnownKey is a known_hosts entry that names a host.
type KnownKey struct {
	File        string
	Line        int
	Type        string
	Fingerprint string // SHA256:…
}

// HostKeyChangedError: known_hosts holds keys for this host and the server offered
// none of them: another key of a known type, or a key of a type known_hosts holds none
// of while it holds others (OpenSSH's hostfile.c counts both as HOST_CHANGED: a
// man-in-the-middle without the real key would simply offer another type). Possibly a
// man-in-the-middle attack; refused in every StrictHostKeyChecking mode. Error() is
// OpenSSH's kind of warning.
type HostKeyChangedError struct {
	Host     string // as looked up: HostKeyAlias, or host or [host]:port
	Type     string
	Offered  string // SHA256 fingerprint of the offered key
	Expected []KnownKey
}

// otherTypeOnly reports whether known_hosts holds no key of the offered type at all.
func (e *HostKeyChangedError) otherTypeOnly() bool {
	for _, k := range e.Expected {
		if k.Type == e.Type {
			return false
		}
	}
	return len(e.Expected) > 0
}

func (e *HostKeyChangedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "tunnel: host key for %s has changed: REMOTE HOST IDENTIFICATION HAS CHANGED, someone could be eavesdropping (man-in-the-middle attack), or the host key was just replaced; offered %s key %s", e.Host, e.Type, e.Offered)
	if e.otherTypeOnly() {
		fmt.Fprintf(&b, "; known_hosts holds no %s key for it, only keys of other types, and it offered none of those", e.Type)
	}
	for _, k := range e.Expected {
		fmt.Fprintf(&b, "; expected %s %s (%s:%d)", k.Type, k.Fingerprint, k.File, k.Line)
	}
	if len(e.Expected) > 0 {
		k := e.Expected[0]
		fmt.Fprintf(&b, "; if the change is legitimate, remove line %d of %s (ssh-keygen -R %s -f %s)", k.Line, k.File, shquote.Quote(e.Host), shquote.Quote(k.File))
	}
	return b.String()
}

// HostKeyUnknownError: the host is not in known_hosts and the key could not be added
// (StrictHostKeyChecking yes, BatchMode, no terminal to ask, or the user said no).
type HostKeyUnknownError struct {
	Host        string
	Type        string
	Fingerprint string
	Reason      string
	// Declined: the user was asked whether to trust the key and said no.
	Declined bool
}

func (e *HostKeyUnknownError) Error() string {
	return fmt.Sprintf("tunnel: host key for %s is not known (%s %s): %s; connect once with `ssh` to verify and record it", e.Host, e.Type, e.Fingerprint, e.Reason)
}

// HostKeyRevokedError: the offered key (or the CA that signed it) is marked @revoked.
type HostKeyRevokedError struct {
	Host        string
	Fingerprint string
	File        string
	Line        int
}

func (e *HostKeyRevokedError) Error() string {
	return fmt.Sprintf("tunnel: host key %s for %s is marked @revoked in %s:%d", e.Fingerprint, e.Host, e.File, e.Line)
}

// hostKeyChecker checks one host's key the way OpenSSH does.
type hostKeyChecker struct {
	lookup   string // the name in known_hosts: host, [host]:port, or HostKeyAlias
	kaddr    string // the same as host:port, for knownhosts
	cfg      *Config
	prompter Prompter
	db       ssh.HostKeyCallback
	plain    ssh.HostKeyCallback // knownhosts alone, for plain keys
	markers  []markerLine
	algos    []string // HostKeyAlgorithms for this host, nil for x/crypto's default
}

// knownHostsFiles returns the existing known_hosts files of cfg, user files first.
func knownHostsFiles(cfg *Config) []string {
	var files []string
	for _, f := range append(append([]string{}, cfg.UserKnownHostsFiles...), cfg.GlobalKnownHostsFiles...) {
		if fi, err := os.Stat(f); err == nil && fi.Mode().IsRegular() {
			files = append(files, f)
		}
	}
	return files
}

// newHostKeyChecker reads the known_hosts files now: every (re)dial builds a new one,
// so keys accepted in between are seen.
func newHostKeyChecker(cfg *Config, host string, port int, p Prompter) (*hostKeyChecker, error) {
	// OpenSSH looks an alias up as it is, without the port.
	kaddr := net.JoinHostPort(host, strconv.Itoa(port))
	if cfg.HostKeyAlias != "" {
		kaddr = net.JoinHostPort(cfg.HostKeyAlias, "22")
	}
	hc := &hostKeyChecker{lookup: knownhosts.Normalize(kaddr), kaddr: kaddr, cfg: cfg, prompter: p}
	if cfg.HostKeyCallback != nil {
		return hc, nil
	}
	files := knownHostsFiles(cfg)
	db, err := knownhosts.New(files...)
	if err != nil {
		return nil, fmt.Errorf("tunnel: reading known_hosts: %w", err)
	}
	hc.markers = readMarkers(files)
	// Host certificates are checked here, not by knownhosts, so that @cert-authority
	// patterns match as in OpenSSH; plain keys fall through to knownhosts.
	cc := &ssh.CertChecker{
		IsHostAuthority: hc.isHostAuthority,
		IsRevoked: func(c *ssh.Certificate) bool {
			return hc.revoked(c.SignatureKey) != nil || hc.revoked(c.Key) != nil
		},
		HostKeyFallback: db,
	}
	hc.db = cc.CheckHostKey
	hc.plain = db
	// Ask the database which keys it holds for this name, with a key it cannot hold
	// (golang/go#29286, as skeema/knownhosts does), and offer those types first so a
	// server that has one of them shows it rather than one of a type we hold none of.
	// The other types follow, as OpenSSH orders HostKeyAlgorithms: a server that has
	// none of the known types still shows a key, judged a changed key below, instead
	// of failing with "no common algorithm".
	known := hc.knownKeys()
	if len(known) > 0 {
		hc.algos = algorithmsFor(known, hc.hasCertAuthority())
	}
	return hc, nil
}

// probeKey is a key no known_hosts file holds.
var probeKey = func() ssh.PublicKey {
	// A fixed, valid ed25519 public key (32 bytes of 0x01 are a valid encoding).
	k, err := ssh.ParsePublicKey(append([]byte("\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20"), bytes.Repeat([]byte{1}, 32)...))
	if err != nil {
		panic(err)
	}
	return k
}()

func fakeRemote() net.Addr { return &net.TCPAddr{IP: net.IPv4zero, Port: 22} }

func (hc *hostKeyChecker) knownKeys() []knownhosts.KnownKey {
	err := hc.plain(hc.kaddr, fakeRemote(), probeKey)
	var ke *knownhosts.KeyError
	if errors.As(err, &ke) {
		return ke.Want
	}
	return nil
}

// plainHostKeyAlgos are the plain (not certificate) host key algorithms by key type,
// in order of preference.
var plainHostKeyAlgos = []struct {
	keyType string
	algos   []string
}{
	{ssh.KeyAlgoED25519, []string{ssh.KeyAlgoED25519}},
	{ssh.KeyAlgoECDSA256, []string{ssh.KeyAlgoECDSA256}},
	{ssh.KeyAlgoECDSA384, []string{ssh.KeyAlgoECDSA384}},
	{ssh.KeyAlgoECDSA521, []string{ssh.KeyAlgoECDSA521}},
	{ssh.KeyAlgoRSA, []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256}},
}

// algorithmsFor lists host key algorithms for a host known_hosts holds keys for:
// certificates first when a CA is known for it, then the known key types, then the
// other plain types (never certificates without a CA: nothing could check them).
func algorithmsFor(known []knownhosts.KnownKey, ca bool) []string {
	have := map[string]bool{}
	for _, k := range known {
		have[k.Key.Type()] = true
	}
	var algos []string
	if ca {
		algos = append(algos, ssh.CertAlgoED25519v01, ssh.CertAlgoECDSA256v01, ssh.CertAlgoECDSA384v01,
			ssh.CertAlgoECDSA521v01, ssh.CertAlgoRSASHA512v01, ssh.CertAlgoRSASHA256v01)
	}
	for _, p := range plainHostKeyAlgos {
		if have[p.keyType] {
			algos = append(algos, p.algos...)
		}
	}
	for _, p := range plainHostKeyAlgos {
		if !have[p.keyType] {
			algos = append(algos, p.algos...)
		}
	}
	return algos
}

// markerLine is an @cert-authority or @revoked line of a known_hosts file.
type markerLine struct {
	marker   string
	patterns string
	key      ssh.PublicKey
}

// readMarkers collects the @cert-authority and @revoked lines of files.
func readMarkers(files []string) []markerLine {
	var ms []markerLine
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 4 || (fields[0] != "@cert-authority" && fields[0] != "@revoked") {
				continue
			}
			k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(strings.Join(fields[2:], " ")))
			if err != nil {
				continue
			}
			ms = append(ms, markerLine{marker: fields[0], patterns: fields[1], key: k})
		}
	}
	return ms
}

// matchKnownHosts matches a known_hosts pattern list the way OpenSSH does: against the
// whole lookup string ("host", or "[host]:port" off port 22), case-insensitively, with
// '*' and '?', '!' negation and hashed |1|salt|hash entries. (x/crypto's knownhosts
// matches the port separately, so "*" never matches a host on another port there.)
func matchKnownHosts(patterns, lookup string) bool {
	lookup = strings.ToLower(lookup)
	found := false
	for _, p := range strings.Split(patterns, ",") {
		neg := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(p, "!")
		var m bool
		if strings.HasPrefix(p, "|1|") {
			m = hashedMatch(p, lookup)
		} else {
			m = globMatch(strings.ToLower(p), lookup)
		}
		if m && neg {
			return false
		}
		found = found || m
	}
	return found
}

func hashedMatch(entry, host string) bool {
	parts := strings.Split(entry, "|")
	if len(parts) != 4 {
		return false
	}
	salt, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil {
		return false
	}
	want, err := base64.StdEncoding.DecodeString(parts[3])
	if err != nil {
		return false
	}
	mac := hmac.New(sha1.New, salt)
	mac.Write([]byte(host))
	return hmac.Equal(mac.Sum(nil), want)
}

func (hc *hostKeyChecker) isHostAuthority(auth ssh.PublicKey, _ string) bool {
	for _, m := range hc.markers {
		if m.marker == "@cert-authority" && bytes.Equal(m.key.Marshal(), auth.Marshal()) && matchKnownHosts(m.patterns, hc.lookup) {
			return true
		}
	}
	return false
}

func (hc *hostKeyChecker) revoked(k ssh.PublicKey) *markerLine {
	for i, m := range hc.markers {
		if m.marker == "@revoked" && bytes.Equal(m.key.Marshal(), k.Marshal()) {
			return &hc.markers[i]
		}
	}
	return nil
}

func (hc *hostKeyChecker) hasCertAuthority() bool {
	for _, m := range hc.markers {
		if m.marker == "@cert-authority" && matchKnownHosts(m.patterns, hc.lookup) {
			return true
		}
	}
	return false
}

// check is the ssh.HostKeyCallback.
func (hc *hostKeyChecker) check(_ string, _ net.Addr, key ssh.PublicKey) error {
	if hc.cfg.HostKeyCallback != nil {
		return hc.cfg.HostKeyCallback(hc.kaddr, fakeRemote(), key)
	}
	err := hc.db(hc.kaddr, fakeRemote(), key)
	if err == nil {
		return nil
	}
	plain := key
	if cert, ok := key.(*ssh.Certificate); ok {
		plain = cert.Key
	}
	if cert, ok := key.(*ssh.Certificate); ok {
		if m := hc.revoked(cert.SignatureKey); m != nil {
			return &HostKeyRevokedError{Host: hc.lookup, Fingerprint: ssh.FingerprintSHA256(cert.SignatureKey) + " (certificate authority)"}
		}
		if m := hc.revoked(cert.Key); m != nil {
			return &HostKeyRevokedError{Host: hc.lookup, Fingerprint: ssh.FingerprintSHA256(cert.Key)}
		}
	}
	var re *knownhosts.RevokedError
	if errors.As(err, &re) {
		return &HostKeyRevokedError{Host: hc.lookup, Fingerprint: ssh.FingerprintSHA256(key), File: re.Revoked.Filename, Line: re.Revoked.Line}
	}
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) {
		// Certificates: unknown authority, bad principal, expired.
		return fmt.Errorf("tunnel: host key for %s: %w", hc.lookup, err)
	}
	// known_hosts holds keys for this host but not this one: changed, whatever the
	// types. Another key of a known type is the classic case; a key of a type it holds
	// none of is one too, as in OpenSSH (hostfile.c check_hostkeys_by_key_or_type: "If
	// no key matches but a key with a different type is found, then return
	// HOST_CHANGED"), since asking about it, or adding it under accept-new, would let
	// a man-in-the-middle without the real key in by offering another type. The keys
	// of the offered type are named first.
	if len(ke.Want) > 0 {
		var same, other []KnownKey
		for _, w := range ke.Want {
			k := KnownKey{File: w.Filename, Line: w.Line, Type: w.Key.Type(), Fingerprint: ssh.FingerprintSHA256(w.Key)}
			if k.Type == plain.Type() {
				same = append(same, k)
			} else {
				other = append(other, k)
			}
		}
		return &HostKeyChangedError{Host: hc.lookup, Type: plain.Type(), Offered: ssh.FingerprintSHA256(plain), Expected: append(same, other...)}
	}
	unknown := &HostKeyUnknownError{Host: hc.lookup, Type: key.Type(), Fingerprint: ssh.FingerprintSHA256(key)}
	mode := hc.cfg.StrictHostKeyChecking
	switch {
	case mode == "accept-new" || mode == "no":
		return hc.record(key)
	case mode == "yes":
		unknown.Reason = "StrictHostKeyChecking is yes"
		return unknown
	case hc.cfg.BatchMode:
		unknown.Reason = "BatchMode is on, so tether cannot ask"
		return unknown
	case hc.prompter == nil:
		unknown.Reason = "no terminal to ask whether to trust it"
		return unknown
	}
	msg := fmt.Sprintf("The authenticity of host '%s' can't be established.\n%s key fingerprint is %s.", hc.lookup, KeyTypeName(key), ssh.FingerprintSHA256(key))
	msg += "\nAre you sure you want to continue connecting (yes/no)?"
	ok, perr := hc.prompter.ConfirmHostKey(hc.lookup, msg)
	if perr != nil {
		unknown.Reason = "asking failed: " + perr.Error()
		return unknown
	}
	if !ok {
		unknown.Reason, unknown.Declined = "not confirmed", true
		return unknown
	}
	return hc.record(key)
}

// KeyTypeName is the key type as ssh names it in its messages (ED25519, ECDSA, RSA).
func KeyTypeName(k ssh.PublicKey) string {
	t := k.Type()
	switch {
	case strings.Contains(t, "ed25519"):
		return "ED25519"
	case strings.Contains(t, "ecdsa"):
		return "ECDSA"
	case strings.Contains(t, "rsa"):
		return "RSA"
	}
	return t
}

// record appends key for the host to the first user known_hosts file, hashed when
// HashKnownHosts is set, creating the file (0600) and its directory (0700).
func (hc *hostKeyChecker) record(key ssh.PublicKey) error {
	if len(hc.cfg.UserKnownHostsFiles) == 0 {
		return fmt.Errorf("tunnel: no UserKnownHostsFile to record the key for %s in", hc.lookup)
	}
	if _, ok := key.(*ssh.Certificate); ok {
		return fmt.Errorf("tunnel: host %s offered a certificate from an unknown authority", hc.lookup)
	}
	f := hc.cfg.UserKnownHostsFiles[0]
	name := hc.lookup
	if hc.cfg.HashKnownHosts {
		name = knownhosts.HashHostname(hc.lookup)
	}
	line := knownhosts.Line([]string{name}, key) + "\n"
	if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
		return fmt.Errorf("tunnel: recording host key: %w", err)
	}
	fh, err := os.OpenFile(f, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("tunnel: recording host key: %w", err)
	}
	// A file without a final newline would glue our line onto its last one.
	if fi, err := fh.Stat(); err == nil && fi.Size() > 0 {
		if b, err := os.ReadFile(f); err == nil && len(b) > 0 && b[len(b)-1] != '\n' {
			line = "\n" + line
		}
	}
	if _, err := fh.WriteString(line); err != nil {
		fh.Close()
		return fmt.Errorf("tunnel: recording host key: %w", err)
	}
	if err := fh.Close(); err != nil {
		return fmt.Errorf("tunnel: recording host key: %w", err)
	}
	return nil
}
