//go:build unix

package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-dev/tether/tunnel"
)

// Issue 11, item 6: a host known_hosts knows only by another key type (its keys were
// regenerated as ECDSA, or known_hosts was filled by a client that preferred another
// type) failed with "no common algorithm". OpenSSH (hostfile.c: "If no key matches but
// a key with a different type is found, then return HOST_CHANGED") offers the known
// types first and the others after, and judges the key the server then shows a changed
// key: "REMOTE HOST IDENTIFICATION HAS CHANGED", "Offending ED25519 key in FILE:1",
// refused under yes, accept-new and ask. tether now does the same (in every mode, as
// it does for any changed key), with the line to remove if the change is legitimate.

// hostPrompter answers the host key question and records it.
type hostPrompter struct {
	mu     sync.Mutex
	answer bool
	asked  []string
}

func (p *hostPrompter) Passphrase(string) ([]byte, error) { return nil, errors.New("not asked here") }
func (p *hostPrompter) Password(string, string) (string, error) {
	return "", errors.New("not asked here")
}
func (p *hostPrompter) KeyboardInteractive(string, string, string, string, []string, []bool) ([]string, error) {
	return nil, errors.New("not asked here")
}
func (p *hostPrompter) ConfirmHostKey(host, message string) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.asked = append(p.asked, message)
	return p.answer, nil
}

func (p *hostPrompter) questions() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.asked, "\n---\n")
}

// otherTypeServer is an sshd whose only host key is ECDSA, and a known_hosts (in a
// fresh copy per call) that knows it only by an Ed25519 key.
func otherTypeServer(t *testing.T) *SSHD {
	t.Helper()
	s := StartSSHD(t, SSHDOptions{HostKeyTypes: []string{"ecdsa"}})
	ed := filepath.Join(t.TempDir(), "other_ed25519")
	keygen(t, "ed25519", ed)
	pub, err := os.ReadFile(ed + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(pub))
	WriteFile(t, s.KnownHosts, fmt.Sprintf("[127.0.0.1]:%d %s %s\n", s.Port, f[0], f[1]), 0o600)
	return s
}

// knownHostsCopy writes a fresh known_hosts (the Ed25519-only one) and a config using
// it with the given StrictHostKeyChecking.
func knownHostsCopy(t *testing.T, s *SSHD, mode string) (cfgFile, kh string) {
	t.Helper()
	orig, _ := os.ReadFile(s.KnownHosts)
	kh = filepath.Join(t.TempDir(), "known_hosts")
	WriteFile(t, kh, string(orig), 0o600)
	cfgFile = writeConfig(t, s, s.KnownHosts, kh, "StrictHostKeyChecking yes", "StrictHostKeyChecking "+mode)
	return cfgFile, kh
}

func ecdsaFingerprint(t *testing.T, s *SSHD) string {
	t.Helper()
	out, err := exec.Command("ssh-keygen", "-l", "-E", "sha256", "-f", s.HostKeys[0]+".pub").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(out))[1]
}

func TestHostKnownByAnotherKeyType(t *testing.T) {
	Need(t, "ssh", "openssh-client")
	s := otherTypeServer(t)
	addr := fmt.Sprintf("[127.0.0.1]:%d", s.Port)
	fp := ecdsaFingerprint(t, s)

	for _, mode := range []string{"yes", "accept-new", "ask"} {
		t.Run(mode, func(t *testing.T) {
			// What OpenSSH does with the same files.
			cfgFile, kh := knownHostsCopy(t, s, mode)
			out, err := exec.Command("ssh", "-F", cfgFile, s.Alias, "true").CombinedOutput()
			if err == nil || !strings.Contains(string(out), "REMOTE HOST IDENTIFICATION HAS CHANGED") || !strings.Contains(string(out), "Offending ED25519 key in "+kh+":1") {
				t.Fatalf("OpenSSH with StrictHostKeyChecking %s: %v\n%s", mode, err, out)
			}

			// tether's SSH, with a prompter that would say yes: never asked.
			cfg := Resolve(t, cfgFile, s.Alias)
			cfg.BatchMode = false
			p := &hostPrompter{answer: true}
			_, err = tunnel.Dial(Context(t, 30*time.Second), cfg, tunnel.Options{Prompter: p})
			var ce *tunnel.HostKeyChangedError
			if !errors.As(err, &ce) || ce.Type != "ecdsa-sha2-nistp256" || ce.Offered != fp || len(ce.Expected) != 1 ||
				ce.Expected[0].Type != "ssh-ed25519" || ce.Expected[0].File != kh || ce.Expected[0].Line != 1 {
				t.Fatalf("got %v; want HostKeyChangedError: ECDSA %s offered, the Ed25519 key at %s:1 expected", err, fp, kh)
			}
			if q := p.questions(); q != "" {
				t.Errorf("asked about a changed key: %q", q)
			}

			// The launcher says it in one line with the fix.
			launchFails(t, "known by another key type ("+mode+")", 10*time.Second, []string{"ls", "-F", cfgFile, s.Alias},
				"the host key of "+s.Alias+" has CHANGED: it offers ecdsa-sha2-nistp256 "+fp+" but "+kh+":1 holds",
				"man-in-the-middle", "ssh-keygen -R '"+addr+"' -f "+kh)
			if b, _ := os.ReadFile(kh); strings.Count(string(b), "\n") != 1 {
				t.Errorf("known_hosts changed: %q", b)
			}
		})
	}

	// Once the old line is removed, as the message says, the new key is new: accept-new
	// adds it, as OpenSSH would.
	cfgFile, kh := knownHostsCopy(t, s, "accept-new")
	if out, err := exec.Command("ssh-keygen", "-R", addr, "-f", kh).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -R: %v\n%s", err, out)
	}
	if _, errOut, code := RunTether(t, "ls", "-F", cfgFile, s.Alias); code != 0 {
		t.Fatalf("after ssh-keygen -R: exit %d: %s", code, errOut)
	}
	if b, _ := os.ReadFile(kh); !strings.Contains(string(b), "ecdsa-sha2-nistp256") {
		t.Errorf("the ECDSA key was not added: %q", b)
	}
}
