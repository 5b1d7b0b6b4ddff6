//go:build unix

package faults

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/e2e"
)

// TestStripedThroughLatency: on a link with a 40 ms round trip, the launcher carries
// each browser connection over several SSH channels (package internal/stripe), which
// the gate joins: a 32 MiB download and a 16 MiB upload arrive intact (SHA-256 both
// ways), and the server log shows the joined groups (the proof that striping was in
// effect, not a timing). A plain connection to the same socket (OpenSSH's `ssh -L`,
// as an older launcher or a user's own forward) still gets its answer; an attach with
// --ssh openssh stripes too.
func TestStripedThroughLatency(t *testing.T) {
	b := startBenchSession(t, benchOptions{proxy: true, latency: 20})
	s, cfg, l := b.s, b.cfg, b.l
	rec := l.Line.Session
	var line struct {
		Session struct {
			Stripes int `json:"stripes"`
		} `json:"session"`
	}
	first, _, _ := strings.Cut(l.Stdout.String(), "\n")
	if err := json.Unmarshal([]byte(first), &line); err != nil || line.Session.Stripes < 2 {
		t.Fatalf("the session's record offers %d stripes (%v); want the gate to join them", line.Session.Stripes, err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d%s", l.Line.LocalPort, rec.BaseURL)
	client := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{DisableKeepAlives: true}}

	download(t, client, base, rec.Token, 32<<20)

	// Upload: random bytes, the app answers their SHA-256.
	body := make([]byte, 16<<20)
	rand.Read(body)
	req, _ := http.NewRequest(http.MethodPost, base+"sha256", bytes.NewReader(body))
	req.Header.Set("Authorization", "token "+rec.Token)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if sum := sha256.Sum256(body); err != nil || string(answer) != fmt.Sprintf("%x", sum) {
		t.Fatalf("upload: %s, answer %q, %v; want the body's SHA-256 %x", resp.Status, answer, err, sum)
	}

	// A plain connection through OpenSSH's own forward, one channel, as an older
	// launcher sends: the gate hands it to the server unchanged.
	local := filepath.Join(t.TempDir(), "fwd.sock")
	fwd := exec.Command("ssh", "-F", cfg, "-N", "-o", "ExitOnForwardFailure=yes", "-L", local+":"+rec.Socket, b.alias)
	e2e.Start(t, fwd)
	if !e2e.WaitFor(20*time.Second, func() bool { _, err := os.Stat(local); return err == nil }) {
		t.Fatal("ssh -L did not make its local socket")
	}
	plain := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", local)
		}}}
	req, _ = http.NewRequest(http.MethodGet, "http://127.0.0.1"+rec.BaseURL+"small", nil)
	req.Header.Set("Authorization", "token "+rec.Token)
	req.Host = "127.0.0.1"
	resp, err = plain.Do(req)
	if err != nil {
		t.Fatalf("plain request through ssh -L: %v", err)
	}
	small, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(small) != 128 {
		t.Fatalf("plain request through ssh -L: %s, %d bytes", resp.Status, len(small))
	}

	// The proof: the server log holds the joined groups (the download's and the
	// upload's at least), each of several stripes.
	striped, log := stripedGroups(t, s.Home, rec.ID)
	if striped < 2 {
		t.Fatalf("%d striped connections in the server log; want the download's and the upload's:\n%s", striped, log)
	}

	// The OpenSSH transport: its connections are local to ssh's master and time
	// nothing, so the first browser connection is a group of one whose ack measures
	// the link; the next are striped.
	env, _ := e2e.OpenSSHEnv(t, s)
	a := e2e.StartLauncher(t, []string{"attach", "--ssh", "openssh", "-F", cfg, b.alias, rec.ID, "--json", "--no-browser"}, true, env...)
	abase := fmt.Sprintf("http://127.0.0.1:%d%s", a.Line.LocalPort, rec.BaseURL)
	download(t, client, abase, rec.Token, 1<<20)
	download(t, client, abase, rec.Token, 8<<20)
	viaOpenSSH, log := stripedGroups(t, s.Home, rec.ID)
	if viaOpenSSH <= striped {
		t.Fatalf("no striped connection through --ssh openssh (%d before, %d after):\n%s", striped, viaOpenSSH, log)
	}
	t.Logf("%d striped connections, %d of them through --ssh openssh", viaOpenSSH, viaOpenSSH-striped)
}

// download GETs size bytes of the bench app's pattern (byte(offset)) from base and
// checks their SHA-256.
func download(t *testing.T, client *http.Client, base, token string, size int) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"bytes?n="+strconv.Itoa(size), nil)
	req.Header.Set("Authorization", "token "+token)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got := sha256.New()
	n, err := io.Copy(got, resp.Body)
	resp.Body.Close()
	want := sha256.New()
	pattern := make([]byte, 256)
	for i := range pattern {
		pattern[i] = byte(i)
	}
	for range size / len(pattern) {
		want.Write(pattern)
	}
	if err != nil || n != int64(size) || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatalf("download: %s, %d of %d bytes, %v, SHA-256 match %v", resp.Status, n, size, err, bytes.Equal(got.Sum(nil), want.Sum(nil)))
	}
}

// stripedGroups counts the groups of two stripes or more the session's gate joined
// (its server log), and returns the log.
func stripedGroups(t *testing.T, home, id string) (int, string) {
	t.Helper()
	log := serverLog(t, home, id)
	n := 0
	for _, g := range regexp.MustCompile(`msg="striped connection" stripes=(\d+)`).FindAllStringSubmatch(log, -1) {
		if k, _ := strconv.Atoi(g[1]); k >= 2 {
			n++
		}
	}
	return n, log
}

// serverLog is the server log of session id, found under home.
func serverLog(t *testing.T, home, id string) string {
	t.Helper()
	var found string
	filepath.WalkDir(home, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "server.log" && strings.Contains(path, id) {
			found = path
		}
		return nil
	})
	if found == "" {
		t.Fatalf("no server.log of session %s under %s", id, home)
	}
	b, err := os.ReadFile(found)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
