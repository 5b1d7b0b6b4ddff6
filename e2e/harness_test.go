//go:build unix

package e2e

import (
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestHarnessSSHD proves the harness's sshd is real: the OpenSSH client logs in with
// the throwaway key, strict host key checking on, and lands in the throwaway HOME.
func TestHarnessSSHD(t *testing.T) {
	Need(t, "ssh", "openssh-client")
	s := StartSSHD(t, SSHDOptions{})
	out, err := s.SSH("echo", "home=$HOME")
	if err != nil {
		t.Fatalf("ssh: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(out); got != "home="+s.Home {
		t.Fatalf("got %q; want home=%s", got, s.Home)
	}
	// A client without the key in known_hosts must be refused (strict checking).
	cmd := exec.Command("ssh", "-F", s.Config, "-o", "UserKnownHostsFile=/dev/null", s.Alias, "true")
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("ssh with an empty known_hosts succeeded:\n%s", out)
	}
}

// TestHarnessKillConnections proves KillConnections drops live sessions.
func TestHarnessKillConnections(t *testing.T) {
	Need(t, "ssh", "openssh-client")
	s := StartSSHD(t, SSHDOptions{})
	var out Buffer
	cmd := exec.Command("ssh", "-F", s.Config, s.Alias, "echo started; exec sleep 30")
	cmd.Stdout = &out
	proc := Start(t, cmd)
	if !WaitFor(10*time.Second, func() bool { return strings.Contains(out.String(), "started") }) {
		t.Fatal("the remote command did not start")
	}
	if n := s.KillConnections(); n == 0 {
		t.Fatal("KillConnections killed nothing")
	}
	if _, exited := proc.Wait(10 * time.Second); !exited {
		t.Fatal("ssh client did not notice its connection was killed")
	}
}

// TestHarnessBrowser proves headless Chromium starts and renders a loopback page.
func TestHarnessBrowser(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte(`<title>t</title><p id="p">hello</p><script>document.getElementById("p").textContent += " from js"</script>`))
	}))
	t.Cleanup(srv.Close)
	ctx := Browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL)); err != nil {
		t.Fatal(err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text("#p"))
	if err != nil {
		t.Fatal(err)
	}
	if text != "hello from js" {
		t.Fatalf("got %q; want %q", text, "hello from js")
	}
}
