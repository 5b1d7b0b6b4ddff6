package tunnel

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// What a host's ssh_config can ask for that tether's own SSH (golang.org/x/crypto/ssh)
// cannot do, and OpenSSH's ssh can: `--ssh auto` runs the user's ssh for those hosts.
//
//   - ControlMaster or ControlPath: the user shares one login among connections (sites
//     with MFA tell them to, so that the code is asked once); tether's own SSH would log
//     in again, asking again, for every command.
//   - GSSAPIAuthentication yes, when the user holds a Kerberos ticket: the ticket is the
//     login (and AFS or network homes need it delegated). Debian and Ubuntu set the
//     option in /etc/ssh/ssh_config for every host; without a ticket it does nothing,
//     so it alone does not count.
//   - PKCS11Provider, SecurityKeyProvider, or an IdentityFile that is a FIDO key
//     (…_sk): keys held in tokens.
//   - HostbasedAuthentication yes, KnownHostsCommand, CanonicalizeHostname,
//     ProxyUseFdpass: OpenSSH features tether's client lacks.
//   - Match exec (or another Match criterion tether cannot evaluate): only ssh knows
//     what the config means for the host.
//
// KbdInteractiveAuthentication does not count: tether's own SSH answers
// keyboard-interactive prompts (one-time codes); what makes MFA bearable is the shared
// login, which ControlMaster stands for.

// openSSHNeeds lists the settings of s that call for OpenSSH (ssh_config words).
// identityFiles are the expanded IdentityFiles; configured, those the config names
// (empty when they are ssh's defaults, which count only when named).
func openSSHNeeds(s *settings, identityFiles, configured []string) []string {
	var needs []string
	val := func(k string) (string, bool) {
		v, ok := s.get(k)
		return strings.ToLower(v), ok
	}
	if v, ok := val("controlmaster"); ok && v != "no" && v != "false" {
		needs = append(needs, "ControlMaster")
	}
	if v, ok := val("controlpath"); ok && v != "none" {
		needs = append(needs, "ControlPath")
	}
	if v, ok := val("gssapiauthentication"); ok && (v == "yes" || v == "true") {
		needs = append(needs, "GSSAPIAuthentication")
	}
	if v, ok := val("pkcs11provider"); ok && v != "none" {
		needs = append(needs, "PKCS11Provider")
	}
	if v, ok := val("securitykeyprovider"); ok && v != "internal" {
		needs = append(needs, "SecurityKeyProvider")
	}
	if v, ok := val("hostbasedauthentication"); ok && (v == "yes" || v == "true") {
		needs = append(needs, "HostbasedAuthentication")
	}
	if v, ok := val("knownhostscommand"); ok && v != "none" {
		needs = append(needs, "KnownHostsCommand")
	}
	if v, ok := val("canonicalizehostname"); ok && v != "no" && v != "false" && v != "none" {
		needs = append(needs, "CanonicalizeHostname")
	}
	if v, ok := val("proxyusefdpass"); ok && (v == "yes" || v == "true") {
		needs = append(needs, "ProxyUseFdpass")
	}
	if len(configured) > 0 {
		for _, f := range identityFiles {
			if strings.HasSuffix(f, "_sk") {
				if _, err := os.Stat(f); err == nil {
					needs = append(needs, "IdentityFile "+f)
					break
				}
			}
		}
	}
	return append(needs, s.unsupported...)
}

// OpenSSHReasons says, in words for a sentence after "your config", why this host
// needs OpenSSH's ssh: "sets ControlMaster", "has Match exec", … Empty: tether's own
// SSH does all the config asks.
func (c *Config) OpenSSHReasons() []string {
	var out []string
	for _, n := range c.OpenSSHNeeds {
		switch {
		case n == "GSSAPIAuthentication":
			if hasKerberosTicket() {
				out = append(out, "sets GSSAPIAuthentication yes and you have a Kerberos ticket")
			}
		case strings.HasPrefix(n, "Match "):
			out = append(out, "has "+n)
		case strings.HasPrefix(n, "IdentityFile "):
			out = append(out, "names a FIDO security key ("+n+")")
		default:
			out = append(out, "sets "+n)
		}
	}
	return out
}

// hasKerberosTicket reports whether the user holds a valid Kerberos ticket (`klist -s`,
// MIT and Heimdal alike); a variable for tests.
var hasKerberosTicket = sync.OnceValue(func() bool {
	klist, err := exec.LookPath("klist")
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, klist, "-s").Run() == nil
})
