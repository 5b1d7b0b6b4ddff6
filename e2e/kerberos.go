//go:build unix

package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// KDC is a throwaway Kerberos realm for one test: an MIT krb5kdc (package krb5-kdc) on a
// loopback port with its database, krb5.conf and kdc.conf in a temp dir. Nothing reads
// or writes the machine's own Kerberos files (/etc/krb5.conf, /etc/krb5kdc, the default
// ccache): every program gets KRB5_CONFIG, KRB5_KDC_PROFILE and KRB5CCNAME pointing
// into Dir (see Env).
type KDC struct {
	// Realm is the realm's name (TETHER.TEST).
	Realm string
	// Port is the KDC's port on 127.0.0.1 (UDP and TCP).
	Port int
	// Dir holds every file of the realm; removed when the test ends.
	Dir string
	// Config is the krb5.conf for clients and sshd (KRB5_CONFIG).
	Config string
	// HostKeytab holds host/localhost@Realm, for sshd (KRB5_KTNAME).
	HostKeytab string
	// User is the local user the principal logs in as (the user running the tests).
	User string
	// Principal is User@Realm, the user's principal.
	Principal string
	// UserKeytab holds Principal's key; Kinit gets a ticket with it.
	UserKeytab string
	// CCache is the user's private credential cache (KRB5CCNAME), filled by Kinit.
	CCache string

	tb      testing.TB
	profile string // kdc.conf
	logPath string
}

// StartKDC makes a realm (kdb5_util create, kadmin.local for host/localhost and the
// user's principal with keytabs), starts krb5kdc on 127.0.0.1 and stops it by its PID
// when tb ends. It skips (fails under TETHER_E2E=require) when the Kerberos programs are
// missing. The user has no ticket until Kinit.
func StartKDC(tb testing.TB) *KDC {
	tb.Helper()
	krb5kdc := Need(tb, "krb5kdc", "krb5-kdc")
	kdb5util := Need(tb, "kdb5_util", "krb5-kdc")
	Need(tb, "kadmin.local", "krb5-admin-server")
	Need(tb, "kinit", "krb5-user")
	u, err := user.Current()
	if err != nil {
		tb.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "tether-kdc-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	k := &KDC{Realm: "TETHER.TEST", Dir: dir, Config: filepath.Join(dir, "krb5.conf"),
		HostKeytab: filepath.Join(dir, "host.keytab"), User: u.Username, UserKeytab: filepath.Join(dir, "user.keytab"),
		CCache: "FILE:" + filepath.Join(dir, "ccache"), tb: tb, profile: filepath.Join(dir, "kdc.conf"),
		logPath: filepath.Join(dir, "kdc.log")}
	k.Principal = k.User + "@" + k.Realm
	if err := os.Mkdir(filepath.Join(dir, "k5login"), 0o700); err != nil {
		tb.Fatal(err)
	}
	// sshd lets a principal in as a local user when the user's k5login lists it; the
	// file lives here (k5login_directory), not in the user's real home.
	WriteFile(tb, filepath.Join(dir, "k5login", k.User), k.Principal+"\n", 0o600)

	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		k.Port = freeUDPAndTCPPort(tb)
		k.writeConfigs(tb)
		if attempt == 0 {
			// The master key protects nothing (the realm lives for one test): a random one
			// on the command line is fine.
			var mk [16]byte
			rand.Read(mk[:])
			k.run(tb, kdb5util, "create", "-s", "-r", k.Realm, "-P", hex.EncodeToString(mk[:]))
			k.kadmin(tb, "addprinc -randkey host/localhost@"+k.Realm)
			k.kadmin(tb, "ktadd -k "+k.HostKeytab+" host/localhost@"+k.Realm)
			k.kadmin(tb, "addprinc -randkey "+k.Principal)
			k.kadmin(tb, "ktadd -k "+k.UserKeytab+" "+k.Principal)
		}
		logf, err := os.Create(filepath.Join(dir, "krb5kdc.out"))
		if err != nil {
			tb.Fatal(err)
		}
		cmd := exec.Command(krb5kdc, "-n", "-r", k.Realm)
		cmd.Env = k.Env()
		cmd.Stdout, cmd.Stderr = logf, logf
		p := Start(tb, cmd)
		logf.Close()
		if k.waitListening(p.Done()) {
			tb.Cleanup(func() {
				if tb.Failed() {
					tb.Logf("krb5kdc log:\n%s", k.Log())
				}
			})
			return k
		}
		StopGroup(cmd.Process.Pid, p.Done())
		lastErr = fmt.Errorf("krb5kdc did not start listening on port %d:\n%s", k.Port, k.Log())
	}
	tb.Fatal(lastErr)
	return nil
}

func (k *KDC) writeConfigs(tb testing.TB) {
	WriteFile(tb, k.Config, fmt.Sprintf(`[libdefaults]
  default_realm = %[1]s
  dns_lookup_kdc = false
  dns_lookup_realm = false
  dns_canonicalize_hostname = false
  rdns = false
  k5login_directory = %[3]s
[realms]
  %[1]s = {
    kdc = 127.0.0.1:%[2]d
  }
[domain_realm]
  localhost = %[1]s
`, k.Realm, k.Port, filepath.Join(k.Dir, "k5login")), 0o644)
	WriteFile(tb, k.profile, fmt.Sprintf(`[kdcdefaults]
  kdc_ports = %[2]d
  kdc_tcp_ports = %[2]d
[realms]
  %[1]s = {
    database_name = %[3]s
    key_stash_file = %[4]s
    acl_file = %[5]s
    kdc_listen = 127.0.0.1:%[2]d
    kdc_tcp_listen = 127.0.0.1:%[2]d
  }
[logging]
  kdc = FILE:%[6]s
`, k.Realm, k.Port, filepath.Join(k.Dir, "principal"), filepath.Join(k.Dir, "stash"),
		filepath.Join(k.Dir, "kadm5.acl"), k.logPath), 0o600)
}

// Env is this process's environment plus what points Kerberos programs (the KDC's
// tools, kinit) at this realm and the user's private ccache.
func (k *KDC) Env() []string {
	return append(append(os.Environ(), "KRB5_KDC_PROFILE="+k.profile), k.ClientEnv()...)
}

// ClientEnv is what a client (ssh, tether --ssh openssh) needs on top of its own
// environment: KRB5_CONFIG (this realm) and KRB5CCNAME (the user's private ccache).
func (k *KDC) ClientEnv() []string {
	return []string{"KRB5_CONFIG=" + k.Config, "KRB5CCNAME=" + k.CCache}
}

// Kinit gets the user a ticket from the keytab (kinit -k -t) into CCache.
func (k *KDC) Kinit(tb testing.TB) {
	tb.Helper()
	k.run(tb, Need(tb, "kinit", "krb5-user"), "-k", "-t", k.UserKeytab, "-c", k.CCache, k.Principal)
}

// Log is what krb5kdc has logged so far.
func (k *KDC) Log() string {
	a, _ := os.ReadFile(filepath.Join(k.Dir, "krb5kdc.out"))
	b, _ := os.ReadFile(k.logPath)
	return string(a) + string(b)
}

func (k *KDC) kadmin(tb testing.TB, query string) {
	tb.Helper()
	k.run(tb, Need(tb, "kadmin.local", "krb5-admin-server"), "-r", k.Realm, "-q", query)
}

func (k *KDC) run(tb testing.TB, program string, args ...string) {
	tb.Helper()
	cmd := exec.Command(program, args...)
	cmd.Env = k.Env()
	cmd.Stdin = nil
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("%s %v: %v\n%s", filepath.Base(program), args, err, out)
	}
}

func (k *KDC) waitListening(exited <-chan struct{}) bool {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(k.Port)), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// freeUDPAndTCPPort returns a loopback port free for both UDP and TCP just now.
func freeUDPAndTCPPort(tb testing.TB) int {
	tb.Helper()
	for range 20 {
		p := FreePort(tb)
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err == nil {
			u.Close()
			return p
		}
	}
	tb.Fatal("no loopback port free for both UDP and TCP")
	return 0
}
