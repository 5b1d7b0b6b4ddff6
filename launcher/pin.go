package launcher

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/tether-dev/tether/tunnel"
)

// Host keys of portals (hosts reached through a relay) are pinned on first use in
// tether's own known_hosts file, in OpenSSH's format with the host pattern portal:ID
// (`portal:lab ssh-ed25519 AAAA…`), so that `ssh-keygen -R portal:lab -f FILE` removes
// one, as for any host. It is kept apart from ~/.ssh/known_hosts: those names mean
// nothing to ssh, and tether never writes the user's own file for them.
//
// The first connection records the key the host shows and says so (as ssh's
// "Permanently added"); later ones must show the same key, or are refused with the
// launcher's words for a changed SSH host key (tunnel.HostKeyChangedError). Only the
// key type pinned counts: a host that shows a key of another type has changed, as in
// OpenSSH. The file is rewritten whole (a temp file renamed over it: a reader never
// sees half of it) under a lock file, and re-read under the lock, so two launches
// pinning at once neither lose a line nor pin two keys for one portal.

// pinLockWait bounds how long a launch waits for another one's lock; a lock older than
// pinLockStale was left by a launcher that died holding it and is taken over.
const (
	pinLockWait  = 10 * time.Second
	pinLockStale = 30 * time.Second
)

// hostPin checks one portal's host key against file.
type hostPin struct {
	file string
	host string       // portal:ID, the host pattern
	note func(string) // told of a newly pinned key, one line
}

// knownEntry is a key file holds for the host, and where.
type knownEntry struct {
	key  ssh.PublicKey
	line int
}

// entries are the keys file holds for p.host (lines naming it exactly, markers
// aside); a missing file holds none. Lines tether cannot parse are skipped, as
// OpenSSH skips them.
func (p *hostPin) entries(data []byte) []knownEntry {
	var out []knownEntry
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		marker, hosts, key, _, _, err := ssh.ParseKnownHosts(line)
		if err != nil || marker != "" {
			continue
		}
		for _, h := range hosts {
			if h == p.host {
				out = append(out, knownEntry{key: key, line: n})
				break
			}
		}
	}
	return out
}

// judge says whether key may be used given what file holds: nil for a pinned key,
// a HostKeyChangedError for another one, and pinned false when nothing is pinned.
func (p *hostPin) judge(data []byte, key ssh.PublicKey) (pinned bool, err error) {
	es := p.entries(data)
	if len(es) == 0 {
		return false, nil
	}
	for _, e := range es {
		if bytes.Equal(e.key.Marshal(), key.Marshal()) {
			return true, nil
		}
	}
	changed := &tunnel.HostKeyChangedError{Host: p.host, Type: key.Type(), Offered: ssh.FingerprintSHA256(key)}
	for _, e := range es {
		changed.Expected = append(changed.Expected, tunnel.KnownKey{File: p.file, Line: e.line, Type: e.key.Type(), Fingerprint: ssh.FingerprintSHA256(e.key)})
	}
	return true, changed
}

// check is the ssh.HostKeyCallback.
func (p *hostPin) check(_ string, _ net.Addr, key ssh.PublicKey) error {
	if cert, ok := key.(*ssh.Certificate); ok {
		key = cert.Key // a portal's host is known by its key, not by who signed it
	}
	data, err := readKnown(p.file)
	if err != nil {
		return err
	}
	if pinned, err := p.judge(data, key); pinned || err != nil {
		return err
	}
	return p.pin(key)
}

// pin records key for the host, unless another launch pinned one meanwhile (then that
// one is the pin).
func (p *hostPin) pin(key ssh.PublicKey) error {
	dir, base := filepath.Split(p.file)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cannot make the directory for %s: %w", p.file, err)
	}
	unlock, err := lockFile(p.file+".lock", pinLockWait)
	if err != nil {
		return err
	}
	defer unlock()
	data, err := readKnown(p.file)
	if err != nil {
		return err
	}
	if pinned, err := p.judge(data, key); pinned || err != nil {
		return err
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		data = append(data, '\n')
	}
	// Not knownhosts.Line: it would write the name as an address ("[portal]:lab").
	data = append(data, p.host+" "+strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))+"\n"...)
	if err := writePrivateFile(dir, base, data); err != nil {
		return fmt.Errorf("cannot record the host key of %s in %s: %w", p.host, p.file, err)
	}
	if p.note != nil {
		p.note(fmt.Sprintf("tether: Permanently added '%s' (%s %s) to the list of known hosts in %s", p.host, tunnel.KeyTypeName(key), ssh.FingerprintSHA256(key), p.file))
	}
	return nil
}

func readKnown(file string) ([]byte, error) {
	data, err := os.ReadFile(file)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("cannot read %s: %w", file, err)
	}
	return data, nil
}

// lockFile takes path as a lock (created exclusively, which every platform does
// atomically), waiting up to wait for another holder; a lock older than pinLockStale
// is removed as a dead launcher's.
func lockFile(path string, wait time.Duration) (unlock func(), err error) {
	deadline := time.Now().Add(wait)
	for {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			f.Close()
			return func() { os.Remove(path) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("cannot lock %s: %w", path, err)
		}
		if fi, err := os.Stat(path); err == nil && time.Since(fi.ModTime()) > pinLockStale {
			os.Remove(path)
			continue
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s has been locked for %v by another tether; if none is running, remove it", path, wait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
