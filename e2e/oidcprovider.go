//go:build unix

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// OIDCProviderVersion is the npm oidc-provider that .ci/run installs into
// OIDCProviderDir: the newest 9.x. It warns that it wants Node 22 LTS but runs on the
// machine's Node 20.
const OIDCProviderVersion = "9.13.3"

// OIDCProviderDir is the npm prefix oidc-provider is installed in:
// $TETHER_E2E_APPS_DIR/oidc-provider (default /opt/tether-e2e/oidc-provider).
func OIDCProviderDir() string {
	dir := os.Getenv("TETHER_E2E_APPS_DIR")
	if dir == "" {
		dir = "/opt/tether-e2e"
	}
	return filepath.Join(dir, "oidc-provider")
}

// OIDCAccount is a person at the provider: the login page takes Login and Password;
// the ID token (or UserInfo) carries Email and EmailVerified.
type OIDCAccount struct {
	Login, Password, Email string
	EmailVerified          bool
}

// OIDCProviderConfig is what StartOIDCProvider needs: the one client (tether) and the
// accounts. Conform keeps the e-mail claims out of the ID token (UserInfo only).
type OIDCProviderConfig struct {
	ClientID, ClientSecret, RedirectURL string
	Accounts                            []OIDCAccount
	Conform                             bool
}

// OIDCProvider is a running node-oidc-provider on 127.0.0.1.
type OIDCProvider struct {
	Issuer string // http://127.0.0.1:PORT
	Proc   *Proc
	Log    *Buffer // its stderr
}

// StartOIDCProvider starts a real OpenID provider (npm oidc-provider, run by Node from
// e2e/testdata/oidc-provider.mjs) on a loopback port, stopped by its PID when tb ends.
// It skips tb (fails under TETHER_E2E=require) when node or the npm module is missing;
// it installs nothing.
func StartOIDCProvider(tb testing.TB, c OIDCProviderConfig) *OIDCProvider {
	tb.Helper()
	node := Need(tb, "node", "nodejs")
	dir := OIDCProviderDir()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "oidc-provider", "package.json")); err != nil {
		msg := fmt.Sprintf("npm oidc-provider is not installed in %s: install it with `npm install --prefix %s oidc-provider@%s` (.ci/run does)", dir, dir, OIDCProviderVersion)
		if Required() {
			tb.Fatalf("TETHER_E2E=require: %s", msg)
		}
		tb.Skip(msg)
	}
	accounts := map[string]any{}
	for _, a := range c.Accounts {
		accounts[a.Login] = map[string]any{"password": a.Password, "email": a.Email, "email_verified": a.EmailVerified}
	}
	client, _ := json.Marshal(map[string]string{"id": c.ClientID, "secret": c.ClientSecret, "redirect_uri": c.RedirectURL})
	accountsJSON, _ := json.Marshal(accounts)
	conform := "0"
	if c.Conform {
		conform = "1"
	}
	env := append(os.Environ(), "OIDC_PROVIDER_DIR="+dir, "OIDC_CLIENT="+string(client),
		"OIDC_ACCOUNTS="+string(accountsJSON), "OIDC_CONFORM="+conform)
	// Once in a full CI run on the shared 2 cores, node printed only its "Unsupported
	// runtime" warning and not the issuer within 60 s (a start right after worked): a
	// start that does not serve in time is stopped by its PID and tried once more.
	p, line, ok := startOIDCOnce(tb, node, env)
	if !ok {
		tb.Logf("oidc-provider did not say where it serves within %v; stopped it and starting it once more:\n%s", oidcStartWait, LastLines(p.Log.String(), 20))
		StopGroup(p.Proc.Cmd.Process.Pid, p.Proc.Done())
		if p, line, ok = startOIDCOnce(tb, node, env); !ok {
			tb.Fatalf("oidc-provider did not say where it serves within %v, twice:\n%s", oidcStartWait, LastLines(p.Log.String(), 20))
		}
	}
	var hello struct{ Issuer string }
	if err := json.Unmarshal([]byte(line), &hello); err != nil || !strings.HasPrefix(hello.Issuer, "http://127.0.0.1:") {
		tb.Fatalf("oidc-provider's first line %q is not {\"issuer\": \"http://127.0.0.1:PORT\"}\n%s", line, LastLines(p.Log.String(), 20))
	}
	p.Issuer = hello.Issuer
	return p
}

// oidcStartWait bounds one start of the provider until it prints its issuer.
const oidcStartWait = 45 * time.Second

// startOIDCOnce starts node on the provider's script with env and waits up to
// oidcStartWait for its first line; ok is false if none came in time (the process is
// left running for the caller to stop).
func startOIDCOnce(tb testing.TB, node string, env []string) (p *OIDCProvider, line string, ok bool) {
	tb.Helper()
	cmd := exec.Command(node, filepath.Join(ModuleRoot(), "e2e", "testdata", "oidc-provider.mjs"))
	// Secrets go in the environment, never in argv.
	cmd.Env = env
	// An os.Pipe of our own (not StdoutPipe, which Wait would close under the reader).
	stdout, w, err := os.Pipe()
	if err != nil {
		tb.Fatal(err)
	}
	p = &OIDCProvider{Log: &Buffer{}}
	cmd.Stdout, cmd.Stderr = w, p.Log
	p.Proc = Start(tb, cmd)
	w.Close()
	tb.Cleanup(func() { stdout.Close() })
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("oidc-provider stderr:\n%s", LastLines(p.Log.String(), 40))
		}
	})
	first := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		first <- line
		// The pipe is drained until node exits, so a write never blocks it.
		buf := make([]byte, 4096)
		for {
			if _, err := stdout.Read(buf); err != nil {
				return
			}
		}
	}()
	select {
	case line = <-first:
		return p, line, true
	case <-p.Proc.Done():
		tb.Fatalf("oidc-provider exited before it served:\n%s", LastLines(p.Log.String(), 20))
	case <-time.After(oidcStartWait):
	}
	return p, "", false
}
