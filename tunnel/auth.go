package tunnel

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/tether-dev/tether/internal/termsafe"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/term"
)

// Prompter asks the user for secrets and decisions. Implementations must not echo
// secrets. Every method may return an error to give up.
type Prompter interface {
	// Passphrase asks for the passphrase of an encrypted private key file.
	Passphrase(keyFile string) ([]byte, error)
	// Password asks for the password of user@host.
	Password(user, host string) (string, error)
	// KeyboardInteractive answers one round of keyboard-interactive questions (2FA,
	// HPC one-time codes); echos[i] says whether answer i may be shown as typed.
	KeyboardInteractive(user, host, name, instruction string, questions []string, echos []bool) ([]string, error)
	// ConfirmHostKey asks whether to trust an unknown host key; message is OpenSSH's
	// question with the SHA256 fingerprint.
	ConfirmHostKey(host, message string) (bool, error)
}

// ErrNoPrompt is wrapped by errors that needed to ask the user something but could not:
// BatchMode, or no terminal.
var ErrNoPrompt = errors.New("cannot prompt (BatchMode, or no terminal)")

// AuthError: the server refused every credential tether could offer.
type AuthError struct {
	User, Host string
	// Tried lists what was offered: "agent key SHA256:…", "key ~/.ssh/id_ed25519", …
	Tried []string
	// Locked lists encrypted identity files left out because tether could not ask for
	// their passphrase (BatchMode, or no terminal).
	Locked []string
	// NotUnlocked lists encrypted identity files whose passphrase was asked for but
	// not given (an empty answer, the prompt ended) or wrong three times.
	NotUnlocked []string
	// ServerMethods are the methods the server last said it would accept
	// ("publickey", "gssapi-with-mic", …); empty if it never said.
	ServerMethods []string
	// Partial are the methods the server accepted as a step of a login that wanted
	// more (partial success: a password, then a key), in order.
	Partial []string
	Err     error
}

func (e *AuthError) Error() string {
	s := fmt.Sprintf("tunnel: permission denied for %s@%s", e.User, e.Host)
	if len(e.Tried) == 0 && len(e.Locked)+len(e.NotUnlocked) == 0 {
		s += " (no key found: no agent, no IdentityFile)"
	} else if len(e.Tried) > 0 {
		s += " (tried " + strings.Join(e.Tried, ", ") + ")"
	}
	if len(e.Locked) > 0 {
		s += "; encrypted keys not used (cannot ask for their passphrase): " + strings.Join(e.Locked, ", ")
	}
	if len(e.NotUnlocked) > 0 {
		s += "; encrypted keys not unlocked (no passphrase given, or a wrong one): " + strings.Join(e.NotUnlocked, ", ")
	}
	if len(e.ServerMethods) > 0 {
		s += "; the server accepts " + strings.Join(e.ServerMethods, ", ")
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// NativeMethods are the authentication methods tether's own SSH client speaks. A
// server that accepts none of them (only gssapi-with-mic, say) needs OpenSSH's client.
var NativeMethods = []string{"publickey", "keyboard-interactive", "password"}

// Unsupported reports whether the server said which methods it accepts and none of
// them is one tether's own client speaks.
func (e *AuthError) Unsupported() bool {
	if len(e.ServerMethods) == 0 {
		return false
	}
	for _, m := range e.ServerMethods {
		if slices.Contains(NativeMethods, m) {
			return false
		}
	}
	return true
}

// noAnswerError marks a login the user did not complete at a prompt (gave up, or a
// wrong passphrase three times): redialing would only ask again, so it is final.
type noAnswerError struct{ err error }

func (e *noAnswerError) Error() string { return e.err.Error() }
func (e *noAnswerError) Unwrap() error { return e.err }

func noAnswer(err error) error { return &noAnswerError{err} }

// PassphraseError: an encrypted key was not unlocked. As with ssh, an empty answer
// skips the key.
type PassphraseError struct {
	File  string
	Wrong bool  // a wrong passphrase three times; else none was given
	Err   error // why the prompt ended, when it did
}

func (e *PassphraseError) Error() string {
	switch {
	case e.Wrong:
		return "tunnel: wrong passphrase for " + e.File
	case e.Err != nil:
		return fmt.Sprintf("tunnel: passphrase for %s: %v", e.File, e.Err)
	}
	return "tunnel: no passphrase given for " + e.File
}

func (e *PassphraseError) Unwrap() error { return e.Err }

func (e *AuthError) Unwrap() error { return e.Err }

// authState is what one dial offers, in OpenSSH's order.
type authState struct {
	methods []ssh.AuthMethod
	tried   []string
	locked  []string // encrypted identity files skipped: no way to ask
	skipped []string // encrypted identity files not unlocked (no or a wrong passphrase)
	agent   io.Closer

	mu            sync.Mutex
	serverMethods []string // what the server last said it accepts
	partial       []string // the methods that succeeded partially
}

// callback records what the server accepts (for AuthError) and leaves the choice of
// the next method to x/crypto.
func (a *authState) callback(ctx *ssh.ClientAuthContext) (ssh.AuthMethod, error) {
	a.mu.Lock()
	a.serverMethods = ctx.AllowedMethods
	a.partial = ctx.PartialSuccessMethods
	a.mu.Unlock()
	return nil, nil
}

func (a *authState) methodsOffered() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.serverMethods)
}

func (a *authState) partialSuccess() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.partial)
}

func (a *authState) Close() {
	if a.agent != nil {
		a.agent.Close()
	}
}

// buildAuth assembles: Config.Signers, agent keys (only those matching the identity
// files under IdentitiesOnly), identity files with their certificates (encrypted ones
// ask for the passphrase only when the server would accept the key), then
// keyboard-interactive and password when there is a prompter.
func buildAuth(cfg *Config, p Prompter, warn io.Writer) *authState {
	a := &authState{}
	var signers []ssh.Signer
	seen := map[string]bool{}
	add := func(s ssh.Signer, label string) {
		k := string(s.PublicKey().Marshal())
		if seen[k] {
			return
		}
		seen[k] = true
		signers = append(signers, s)
		a.tried = append(a.tried, label)
	}
	for _, s := range cfg.Signers {
		add(s, "key "+ssh.FingerprintSHA256(s.PublicKey()))
	}

	files, pubs, locked, skipped := loadIdentities(cfg, p, warn)
	a.locked, a.skipped = locked, skipped
	wanted := map[string]bool{}
	for _, k := range pubs {
		wanted[string(k.Marshal())] = true
	}
	for _, f := range files {
		wanted[string(f.pub.Marshal())] = true
		if c, ok := f.pub.(*ssh.Certificate); ok {
			wanted[string(c.Key.Marshal())] = true
		}
	}
	if sock := agentSocket(cfg); sock != "" {
		if conn, err := net.Dial("unix", sock); err != nil {
			warnf(warn, "cannot reach the ssh agent at %s: %v", sock, err)
		} else {
			a.agent = conn
			ag := agent.NewClient(conn)
			if as, err := ag.Signers(); err != nil {
				warnf(warn, "listing ssh agent keys: %v", err)
			} else {
				for _, s := range as {
					key := s.PublicKey()
					base := key
					if c, ok := key.(*ssh.Certificate); ok {
						base = c.Key
					}
					if cfg.IdentitiesOnly && !wanted[string(key.Marshal())] && !wanted[string(base.Marshal())] {
						continue
					}
					add(s, "agent key "+ssh.FingerprintSHA256(base))
				}
			}
		}
	}
	for _, f := range files {
		add(f.signer, "key "+f.label)
	}
	// Config.Password goes first: a host that wants it and a key (partial success)
	// then asks for the key; one that wants only it is not first offered every key,
	// which could use up its MaxAuthTries.
	if cfg.Password != nil {
		a.methods = append(a.methods, ssh.PasswordCallback(cfg.Password))
		a.tried = append(a.tried, "password")
	}
	if len(signers) > 0 {
		a.methods = append(a.methods, ssh.PublicKeys(signers...))
	}
	host := cfg.HostName
	if p != nil && !cfg.BatchMode {
		a.methods = append(a.methods,
			ssh.RetryableAuthMethod(ssh.KeyboardInteractive(func(name, instruction string, questions []string, echos []bool) ([]string, error) {
				if len(questions) == 0 {
					return nil, nil
				}
				answers, err := p.KeyboardInteractive(cfg.User, host, name, instruction, questions, echos)
				if err != nil {
					return nil, noAnswer(fmt.Errorf("tunnel: answering %s@%s: %w", cfg.User, host, err))
				}
				return answers, nil
			}), 3),
			ssh.RetryableAuthMethod(ssh.PasswordCallback(func() (string, error) {
				pw, err := p.Password(cfg.User, host)
				if err != nil {
					return "", noAnswer(fmt.Errorf("tunnel: password for %s@%s: %w", cfg.User, host, err))
				}
				return pw, nil
			}), 3))
	} else {
		// Fail at once, with the reason, when the server wants a typed answer.
		why := "BatchMode is on"
		if !cfg.BatchMode {
			why = "there is no terminal"
		}
		a.methods = append(a.methods, ssh.KeyboardInteractive(func(name, instruction string, questions []string, echos []bool) ([]string, error) {
			if len(questions) == 0 {
				return nil, nil
			}
			return nil, fmt.Errorf("the server asks for keyboard-interactive answers but %s: %w", why, ErrNoPrompt)
		}))
	}
	return a
}

func agentSocket(cfg *Config) string {
	switch v := cfg.IdentityAgent; {
	case strings.EqualFold(v, "none"):
		return ""
	case v == "" || v == "SSH_AUTH_SOCK":
		return os.Getenv("SSH_AUTH_SOCK")
	default:
		return v
	}
}

type identity struct {
	label  string
	pub    ssh.PublicKey // the certificate when there is one
	signer ssh.Signer
}

// loadIdentities reads IdentityFiles (skipping missing ones) and attaches certificates:
// FILE-cert.pub and any CertificateFile whose key matches. pubs are the public keys of
// identity files whose private half is not there (FILE.pub, certificates): under
// IdentitiesOnly they still select agent keys, as in OpenSSH. locked are the encrypted
// files left out because there is no way to ask for their passphrase.
func loadIdentities(cfg *Config, p Prompter, warn io.Writer) (ids []identity, pubs []ssh.PublicKey, locked, skipped []string) {
	var certs []*ssh.Certificate
	for _, f := range cfg.CertificateFiles {
		if c := readCert(f); c != nil {
			certs = append(certs, c)
		} else {
			warnf(warn, "cannot read CertificateFile %s", f)
		}
	}
	for _, c := range certs {
		pubs = append(pubs, c.Key)
	}
	for _, f := range cfg.IdentityFiles {
		if b, err := os.ReadFile(f + ".pub"); err == nil {
			if k, _, _, _, err := ssh.ParseAuthorizedKey(b); err == nil {
				pubs = append(pubs, k)
			}
		}
		if c := readCert(f + "-cert.pub"); c != nil {
			pubs = append(pubs, c.Key)
		}
		s, err := loadKeyFile(f, p, cfg.BatchMode)
		if err != nil {
			if errors.Is(err, ErrNoPrompt) {
				locked = append(locked, f)
			}
			if errors.As(err, new(*PassphraseError)) {
				skipped = append(skipped, f)
			}
			if !errors.Is(err, os.ErrNotExist) {
				warnf(warn, "skipping identity %s: %v", f, err)
			}
			continue
		}
		fileCerts := append([]*ssh.Certificate{}, certs...)
		if c := readCert(f + "-cert.pub"); c != nil {
			fileCerts = append([]*ssh.Certificate{c}, fileCerts...)
		}
		for _, c := range fileCerts {
			if bytes.Equal(c.Key.Marshal(), s.PublicKey().Marshal()) {
				if cs, err := ssh.NewCertSigner(c, s); err == nil {
					ids = append(ids, identity{label: f + " (certificate)", pub: c, signer: cs})
				}
			}
		}
		ids = append(ids, identity{label: f, pub: s.PublicKey(), signer: s})
	}
	return ids, pubs, locked, skipped
}

func readCert(path string) *ssh.Certificate {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		return nil
	}
	c, _ := k.(*ssh.Certificate)
	return c
}

// decrypted holds the private keys this process has decrypted, by the SHA-256 of their
// encrypted file, so that a passphrase is asked once per process: reconnects, jump
// hosts and a second connection to the same host reuse the key. Decrypted keys live in
// this process's memory only, never on disk; a changed key file is asked for again.
var decrypted = struct {
	sync.Mutex
	m map[[sha256.Size]byte]ssh.Signer
}{m: map[[sha256.Size]byte]ssh.Signer{}}

func decryptedKey(sum [sha256.Size]byte) ssh.Signer {
	decrypted.Lock()
	defer decrypted.Unlock()
	return decrypted.m[sum]
}

func rememberKey(sum [sha256.Size]byte, s ssh.Signer) {
	decrypted.Lock()
	defer decrypted.Unlock()
	decrypted.m[sum] = s
}

// loadKeyFile returns a signer for a private key file. An encrypted key whose public
// half is known (FILE.pub, or the openssh format's clear header) becomes a lazy signer
// that asks for the passphrase only when the server has accepted the key, as OpenSSH
// does, and once per process (see decrypted); without a prompter such a key is skipped
// unless this process already decrypted it.
func loadKeyFile(path string, p Prompter, batch bool) (ssh.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := ssh.ParsePrivateKey(b)
	if err == nil {
		return s, nil
	}
	var missing *ssh.PassphraseMissingError
	if !errors.As(err, &missing) {
		return nil, err
	}
	sum := sha256.Sum256(b)
	if s := decryptedKey(sum); s != nil {
		return s, nil
	}
	if p == nil || batch {
		return nil, fmt.Errorf("the key is encrypted and tether cannot ask for its passphrase: %w", ErrNoPrompt)
	}
	pub := missing.PublicKey
	if pub == nil {
		if pb, err := os.ReadFile(path + ".pub"); err == nil {
			pub, _, _, _, _ = ssh.ParseAuthorizedKey(pb)
		}
	}
	ls := &lazySigner{path: path, pem: b, sum: sum, prompter: p}
	if pub == nil {
		// No public half to offer first: ask now.
		if err := ls.load(); err != nil {
			return nil, err
		}
		return ls.signer, nil
	}
	ls.pub = pub
	return ls, nil
}

// lazySigner decrypts its key on first use.
type lazySigner struct {
	path     string
	pem      []byte
	sum      [sha256.Size]byte
	pub      ssh.PublicKey
	prompter Prompter

	mu     sync.Mutex
	signer ssh.Signer
	err    error
}

func (l *lazySigner) load() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.signer != nil || l.err != nil {
		return l.err
	}
	if s := decryptedKey(l.sum); s != nil {
		// Another connection of this process asked meanwhile.
		l.signer = s
		return nil
	}
	for range 3 {
		pass, err := l.prompter.Passphrase(l.path)
		if err != nil {
			l.err = noAnswer(&PassphraseError{File: l.path, Err: err})
			return l.err
		}
		if len(pass) == 0 {
			l.err = noAnswer(&PassphraseError{File: l.path}) // as ssh: Enter skips the key
			return l.err
		}
		s, err := ssh.ParsePrivateKeyWithPassphrase(l.pem, pass)
		clear(pass)
		if err == nil {
			l.signer = s
			rememberKey(l.sum, s)
			return nil
		}
		if !errors.Is(err, x509.IncorrectPasswordError) {
			l.err = fmt.Errorf("tunnel: decrypting %s: %w", l.path, err)
			return l.err
		}
	}
	l.err = noAnswer(&PassphraseError{File: l.path, Wrong: true})
	return l.err
}

func (l *lazySigner) PublicKey() ssh.PublicKey { return l.pub }

func (l *lazySigner) Sign(rand io.Reader, data []byte) (*ssh.Signature, error) {
	if err := l.load(); err != nil {
		return nil, err
	}
	return l.signer.Sign(rand, data)
}

func (l *lazySigner) SignWithAlgorithm(rand io.Reader, data []byte, algorithm string) (*ssh.Signature, error) {
	if err := l.load(); err != nil {
		return nil, err
	}
	if as, ok := l.signer.(ssh.AlgorithmSigner); ok {
		return as.SignWithAlgorithm(rand, data, algorithm)
	}
	return l.signer.Sign(rand, data)
}

// warnChange tells a failed reconnect attempt unless it failed as the last one told
// did (said): a host down for an hour is one line, not one per attempt, and the
// next different failure (the network back, the host refusing) is told again. It
// returns what is now said.
func warnChange(w io.Writer, said, alias string, attempt int, err error) string {
	msg := Message(err)
	if msg != said {
		warnf(w, "reconnecting to %s (attempt %d): %s; trying again", alias, attempt, msg)
	}
	return msg
}

func warnf(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, format+"\n", args...)
	}
}

// TerminalPrompter asks on the controlling terminal (/dev/tty), like ssh, so it works
// even when stdin and stdout are redirected. Secrets are read without echo.
type TerminalPrompter struct {
	mu  sync.Mutex
	tty *os.File
}

// NewTerminalPrompter opens /dev/tty; it returns nil when there is no terminal.
func NewTerminalPrompter() *TerminalPrompter {
	f, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil
	}
	if !term.IsTerminal(int(f.Fd())) {
		f.Close()
		return nil
	}
	return &TerminalPrompter{tty: f}
}

// Close releases the terminal.
func (t *TerminalPrompter) Close() error { return t.tty.Close() }

func (t *TerminalPrompter) secret(prompt string) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprint(t.tty, prompt)
	b, err := term.ReadPassword(int(t.tty.Fd()))
	fmt.Fprintln(t.tty)
	return b, err
}

func (t *TerminalPrompter) line(prompt string) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprint(t.tty, prompt)
	s, err := bufio.NewReader(t.tty).ReadString('\n')
	return strings.TrimRight(s, "\r\n"), err
}

// Passphrase implements Prompter.
func (t *TerminalPrompter) Passphrase(keyFile string) ([]byte, error) {
	return t.secret(fmt.Sprintf("Enter passphrase for key '%s': ", keyFile))
}

// Password implements Prompter.
func (t *TerminalPrompter) Password(user, host string) (string, error) {
	b, err := t.secret(fmt.Sprintf("%s@%s's password: ", user, host))
	return string(b), err
}

// KeyboardInteractive implements Prompter.
func (t *TerminalPrompter) KeyboardInteractive(user, host, name, instruction string, questions []string, echos []bool) ([]string, error) {
	if name != "" || instruction != "" {
		t.mu.Lock()
		for _, s := range []string{name, instruction} {
			if s != "" {
				fmt.Fprintln(t.tty, termsafe.Strip(s))
			}
		}
		t.mu.Unlock()
	}
	answers := make([]string, len(questions))
	for i, q := range questions {
		// As OpenSSH: the question says who asks, for a prompt that comes at a
		// reconnect, long after the command was typed.
		q = fmt.Sprintf("(%s@%s) %s", termsafe.Strip(user), termsafe.Strip(host), termsafe.Strip(q))
		var err error
		if i < len(echos) && echos[i] {
			answers[i], err = t.line(q)
		} else {
			var b []byte
			b, err = t.secret(q)
			answers[i] = string(b)
		}
		if err != nil {
			return nil, err
		}
	}
	return answers, nil
}

// ConfirmHostKey implements Prompter.
func (t *TerminalPrompter) ConfirmHostKey(host, message string) (bool, error) {
	for range 3 {
		ans, err := t.line(message + " ")
		if err != nil {
			return false, err
		}
		switch strings.ToLower(strings.TrimSpace(ans)) {
		case "yes":
			return true, nil
		case "no":
			return false, nil
		}
		message = "Please type 'yes' or 'no':"
	}
	return false, nil
}
