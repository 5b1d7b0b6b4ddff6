package tunnel

import (
	"strings"
	"testing"
)

// TestOpenSSHNeeds: the settings only OpenSSH's ssh can honour are found where they
// apply (first value wins, as everywhere), and only those.
func TestOpenSSHNeeds(t *testing.T) {
	tests := []struct {
		name, cfg, host string
		files           map[string]string
		want            string
	}{
		{"plain", "Host gpu\n  HostName gpu.example.com\n  KbdInteractiveAuthentication yes\n", "gpu", nil, ""},
		{"ControlMaster", "Host gpu\n  ControlMaster auto\n  ControlPath ~/.ssh/cm-%C\n  ControlPersist 4h\n", "gpu", nil, "ControlMaster ControlPath"},
		{"ControlMaster no wins first", "Host gpu\n  ControlMaster no\nHost *\n  ControlMaster auto\n  ControlPath none\n", "gpu", nil, ""},
		{"other host", "Host gpu\n  ControlMaster auto\n", "cpu", nil, ""},
		{"GSSAPI", "Host *\n  GSSAPIAuthentication yes\n  GSSAPIDelegateCredentials yes\n", "gpu", nil, "GSSAPIAuthentication"},
		{"tokens", "Host gpu\n  PKCS11Provider /usr/lib/opensc-pkcs11.so\n  SecurityKeyProvider /usr/lib/sk.so\n", "gpu", nil, "PKCS11Provider SecurityKeyProvider"},
		{"internal FIDO provider", "Host gpu\n  SecurityKeyProvider internal\n  PKCS11Provider none\n", "gpu", nil, ""},
		{"OpenSSH-only features", "Host gpu\n  HostbasedAuthentication yes\n  KnownHostsCommand /bin/kh %H\n  CanonicalizeHostname yes\n  ProxyUseFdpass yes\n", "gpu", nil,
			"HostbasedAuthentication KnownHostsCommand CanonicalizeHostname ProxyUseFdpass"},
		{"Match exec", "Match host gpu exec \"test -f /etc/vpn\"\n  ProxyJump gw\n", "gpu", nil, "Match exec"},
		{"Match exec for another host", "Match host cpu exec \"true\"\n  ProxyJump gw\n", "gpu", nil, ""},
		{"Match tagged", "Match tagged x\n  Port 2\n", "gpu", nil, "Match tagged"},
		{"FIDO key file", "Host gpu\n  IdentityFile ~/.ssh/id_ed25519_sk\n", "gpu", map[string]string{".ssh/id_ed25519_sk": "key"}, "IdentityFile"},
		{"FIDO key named but absent", "Host gpu\n  IdentityFile ~/.ssh/id_ed25519_sk\n", "gpu", nil, ""},
		{"FIDO default key", "Host gpu\n  User x\n", "gpu", map[string]string{".ssh/id_ed25519_sk": "key"}, ""},
	}
	for _, tt := range tests {
		h := home(t, tt.cfg, tt.files)
		c, _, err := resolveIn(t, h, tt.host)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		var got []string
		for _, n := range c.OpenSSHNeeds {
			if strings.HasPrefix(n, "IdentityFile ") {
				n = "IdentityFile" // and the file's path
			}
			got = append(got, n)
		}
		if strings.Join(got, " ") != tt.want {
			t.Errorf("for %s, got needs %q; want %q", tt.name, c.OpenSSHNeeds, tt.want)
		}
	}
}

// TestOpenSSHReasons: GSSAPIAuthentication counts only with a Kerberos ticket (Debian
// sets it for every host); the rest always.
func TestOpenSSHReasons(t *testing.T) {
	saved := hasKerberosTicket
	defer func() { hasKerberosTicket = saved }()
	c := &Config{OpenSSHNeeds: []string{"GSSAPIAuthentication", "ControlMaster", "Match exec", "IdentityFile /h/.ssh/id_ed25519_sk"}}
	hasKerberosTicket = func() bool { return false }
	if got := strings.Join(c.OpenSSHReasons(), "; "); got != "sets ControlMaster; has Match exec; names a FIDO security key (IdentityFile /h/.ssh/id_ed25519_sk)" {
		t.Errorf("without a ticket: %q", got)
	}
	hasKerberosTicket = func() bool { return true }
	if got := c.OpenSSHReasons(); len(got) != 4 || got[0] != "sets GSSAPIAuthentication yes and you have a Kerberos ticket" {
		t.Errorf("with a ticket: %q", got)
	}
	if got := (&Config{OpenSSHNeeds: []string{"GSSAPIAuthentication"}}).OpenSSHReasons(); len(got) != 1 {
		t.Errorf("GSSAPI with a ticket alone: %q", got)
	}
}
