package host

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/crypto/ssh"
)

// HostKeyName is the host key's file name in tether's config directory.
const HostKeyName = "relay_host_ed25519_key"

// loadHostKey reads the host key at path (an OpenSSH private key, unencrypted, 0600,
// ours), or makes a new Ed25519 one there when none exists (made reports it). A key
// others may read is refused: whoever has it can impersonate this host to launchers
// that pinned it.
func loadHostKey(path string) (signer ssh.Signer, made bool, err error) {
	data, err := readPrivate(path, "host key")
	if errors.Is(err, fs.ErrNotExist) {
		s, err := makeHostKey(path)
		return s, err == nil, err
	}
	if err != nil {
		return nil, false, err
	}
	signer, err = ssh.ParsePrivateKey(data)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		return nil, false, fmt.Errorf("the host key %s has a passphrase, which tether host cannot ask for; use another file (--host-key) or remove it: ssh-keygen -p -N '' -f %s", path, path)
	}
	if err != nil {
		return nil, false, fmt.Errorf("the host key %s is not an SSH private key (%v); move it away and tether host makes a new one, or name another with --host-key", path, err)
	}
	return signer, false, nil
}

// readPrivate reads a file that must be ours and closed to group and others.
func readPrivate(path, what string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("cannot read the %s %s: %v", what, path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cannot read the %s %s: %v", what, path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("the %s %s is not a regular file", what, path)
	}
	if runtime.GOOS != "windows" {
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			return nil, fmt.Errorf("the %s %s is open to other users (mode %04o); fix it with: chmod 600 %s", what, path, perm, path)
		}
		if uid, ok := fileOwner(fi); ok && uid != os.Getuid() {
			return nil, fmt.Errorf("the %s %s belongs to another user (uid %d); use a file of your own (--host-key)", what, path, uid)
		}
	}
	return readAll(f, 64<<10, path)
}

func readAll(f *os.File, limit int64, path string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %v", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d KiB; is it the right file?", path, limit>>10)
	}
	return b, nil
}

// makeHostKey writes a new Ed25519 key to path (0600, its directory 0700 if made),
// never over an existing file.
func makeHostKey(path string) (ssh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "tether relay host key")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("cannot make the directory for the host key %s: %v", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cannot write a new host key to %s: %v", path, err)
	}
	if _, err := f.Write(pem.EncodeToMemory(block)); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("cannot write a new host key to %s: %v", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("cannot write a new host key to %s: %v", path, err)
	}
	return ssh.NewSignerFromKey(priv)
}

// loadAuthorizedKeys reads an authorized_keys file (OpenSSH format). Lines with
// options (from=, command=, restrict, cert-authority, ...) are refused rather than
// honoured in part: a key meant to be restricted must not log in unrestricted. The
// file must not be writable by others (sshd's StrictModes).
func loadAuthorizedKeys(path string) ([]ssh.PublicKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the authorized keys file %s: %v", path, errors.Unwrap(err))
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o022 != 0 {
		return nil, fmt.Errorf("the authorized keys file %s is writable by other users (mode %04o); fix it with: chmod go-w %s", path, fi.Mode().Perm(), path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the authorized keys file %s: %v", path, errors.Unwrap(err))
	}
	var keys []ssh.PublicKey
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		key, _, options, _, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			return nil, fmt.Errorf("line %d of %s is not an SSH public key (%v); it should look like a line of ~/.ssh/id_ed25519.pub", i+1, path, err)
		}
		if len(options) > 0 {
			return nil, fmt.Errorf("line %d of %s has options (%s), which tether host does not apply; remove them or the line", i+1, path, strings.Join(options, ","))
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("the authorized keys file %s has no keys; add a line of ~/.ssh/id_ed25519.pub from each machine that may connect", path)
	}
	return keys, nil
}
