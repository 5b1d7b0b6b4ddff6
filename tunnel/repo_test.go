package tunnel

import (
	"context"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// TestCryptoVersion: x/crypto at least v0.31.0 (Terrapin v0.17.0, CVE-2024-45337 v0.31.0).
func TestCryptoVersion(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "golang.org/x/crypto").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	v := strings.TrimSpace(string(out))
	parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
	minor := 0
	if len(parts) >= 2 {
		minor, _ = strconv.Atoi(parts[1])
	}
	if len(parts) < 2 || parts[0] == "0" && minor < 31 {
		t.Fatalf("golang.org/x/crypto %s; need v0.31.0 or later", v)
	}
}

// TestClientCloseLeavesNothing: Dial, use, Close: no goroutine outlives the client.
func TestClientCloseLeavesNothing(t *testing.T) {
	ts := startServer(t, nil)
	before := runtime.NumGoroutine()
	c, err := Dial(context.Background(), ts.config(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := c.Output(context.Background(), []string{"true"}, 10); err != nil {
		t.Fatal(err)
	}
	conn, err := c.DialContext(context.Background(), "unix", echoUnix(t))
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	c.Close()
	if _, err := c.DialContext(context.Background(), "unix", "/x"); err != ErrClosed {
		t.Errorf("after Close: %v; want ErrClosed", err)
	}
	waitGoroutines(t, before)
}
