//go:build linux

package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// replayScript is the other user's client: it sends the request on stdin to the port
// in argv[1] as it is, then prints what came back ("read N …"). With "close" it opens
// 50 connections as fast as it can, sends the request on each and closes it at once
// without waiting for an answer (the launcher may look at such a connection only once
// its sending end is closed). The secrets stay off its argv.
const replayScript = `
import socket, sys
port, close = int(sys.argv[1]), sys.argv[2] == "close"
req = sys.stdin.buffer.read()
if close:
    sent = 0
    for i in range(50):
        try:
            s = socket.socket()
            s.connect(("127.0.0.1", port))
            s.send(req)
            sent += 1
        except Exception:
            pass
        s.close()
    print("sent", sent, "and closed")
    sys.exit(0)
try:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
except Exception as e:
    print("connect failed:", type(e).__name__, e)
    sys.exit(0)
got = b""
try:
    s.sendall(req)
    while True:
        b = s.recv(65536)
        if not b:
            break
        got += b
    print("read", len(got), repr(got[:300]))
except Exception as e:
    print("read", len(got), repr(got[:300]), type(e).__name__, e)
`

// replayAs sends req to 127.0.0.1:port as u and returns what its client printed.
func replayAs(t *testing.T, u User, port int, req string, closeAtOnce bool) string {
	t.Helper()
	mode := "wait"
	if closeAtOnce {
		mode = "close"
	}
	cmd := u.Command("/usr/bin/python3", "-c", replayScript, strconv.Itoa(port), mode)
	cmd.Stdin = strings.NewReader(req)
	var out Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	p := Start(t, cmd)
	if _, ok := p.Wait(30 * time.Second); !ok {
		t.Fatalf("the other user's client did not finish: %s", out.String())
	}
	return strings.TrimSpace(out.String())
}

// TestLaunchRefusesOtherLocalUsers is issue 11's cookie replay: another user of the
// laptop who got hold of the session's cookie (browsers send 127.0.0.1 cookies to every
// port, so any page that user serves on 127.0.0.1 collects it) or of the token replays
// it to the launcher's port. The launcher closes their connections before a byte is
// forwarded (no HTTP answer; the app never sees the request), says so once, naming the
// user, and the owner's Chromium, Go client and curl keep working.
func TestLaunchRefusesOtherLocalUsers(t *testing.T) {
	NeedPython(t)
	curl := Need(t, "curl", "curl")
	other := OtherUser(t)
	s := StartSSHD(t, SSHDOptions{})
	StopAllOnCleanup(t, s)
	args := append([]string{"launch", "-F", s.Config, s.Alias, "--json", "--"}, HTTPServerApp...)
	l := StartLauncher(t, args, true)
	tok, id, port := l.Line.Session.Token, l.Line.Session.ID, l.Line.LocalPort
	base := fmt.Sprintf("http://127.0.0.1:%d/", port)

	// The owner's Chromium signs in with the one-time code the launcher opened.
	var target string
	if !WaitFor(10*time.Second, func() bool { ts := OpenedTargets(l); target = strings.Join(ts, " "); return len(ts) > 0 }) {
		t.Fatalf("the launcher opened no browser")
	}
	ctx := Browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(target)); err != nil {
		t.Fatal(err)
	}
	chromiumShows := func(what string) {
		t.Helper()
		var title string
		WaitFor(10*time.Second, func() bool {
			title, _ = chromedp.Run(ctx, chromedp.Title())
			return title == HTTPServerTitle
		})
		if title != HTTPServerTitle {
			t.Errorf("Chromium %s: title %q; want %q", what, title, HTTPServerTitle)
		}
	}
	chromiumShows("after signing in")

	// The owner's Go client signs in with the token: the real session cookie.
	status, _, resp := Fetch(t, l.Line.URL)
	if status != 303 || resp == nil || len(resp.Cookies()) == 0 {
		t.Fatalf("GET ?token=: status %d", status)
	}
	cookie := resp.Cookies()[0].Name + "=" + resp.Cookies()[0].Value
	if status, body, _ := Fetch(t, base, "Cookie", cookie); status != 200 || !strings.Contains(body, HTTPServerTitle) {
		t.Fatalf("the owner with the cookie: %d %.200q", status, body)
	}

	// The other user replays the cookie and the token, every way they may be sent.
	var b [6]byte
	rand.Read(b[:])
	marker := "replay-" + hex.EncodeToString(b[:])
	host := fmt.Sprintf("127.0.0.1:%d", port)
	attacks := []struct {
		name, path, header string
		closeAtOnce, pause bool
	}{
		{"the cookie", "/" + marker + "-cookie", "Cookie: " + cookie, false, false},
		{"the token in a header", "/" + marker + "-header", "Authorization: token " + tok, false, false},
		{"the token in the URL", "/" + marker + "-url?token=" + tok, "Sec-Fetch-Mode: navigate", false, false},
		{"the cookie on 50 connections, each closed at once", "/" + marker + "-closed", "Cookie: " + cookie, true, false},
		// The launcher busy (here: stopped) while the other user's connections wait to
		// be accepted: each has sent its request and closed, so the kernel holds its
		// end as a TIME_WAIT socket, which it reports as uid 0's with no inode.
		{"the cookie on 50 connections closed while the launcher is busy", "/" + marker + "-busy", "Cookie: " + cookie, true, true},
		{"the cookie again", "/" + marker + "-again", "Cookie: " + cookie, false, false},
	}
	for _, a := range attacks {
		req := "GET " + a.path + " HTTP/1.1\r\nHost: " + host + "\r\n" + a.header + "\r\nConnection: close\r\n\r\n"
		if a.pause {
			l.Proc.Cmd.Process.Signal(syscall.SIGSTOP)
		}
		got := replayAs(t, other, port, req, a.closeAtOnce)
		if a.pause {
			time.Sleep(200 * time.Millisecond)
			l.Proc.Cmd.Process.Signal(syscall.SIGCONT)
		}
		t.Logf("%s as %s: %s", a.name, other.Name, strings.ReplaceAll(got, tok, "TOKEN"))
		if !a.closeAtOnce && (strings.Contains(got, "HTTP/") || !strings.HasPrefix(got, "read 0 ") && !strings.HasPrefix(got, "connect failed")) {
			t.Errorf("%s as %s: got an answer: %s", a.name, other.Name, got)
		}
	}

	// The owner's own clients still get in: Go (above), curl, Chromium.
	ownerPath := "/owner-" + marker
	hdr := filepath.Join(t.TempDir(), "cookie-header")
	os.WriteFile(hdr, []byte("Cookie: "+cookie+"\n"), 0o600)
	out, err := exec.Command(curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "@"+hdr, base[:len(base)-1]+ownerPath).CombinedOutput()
	if err != nil || string(out) != "404" { // the app (http.server) has no such file: it answered
		t.Errorf("the owner's curl: %q, %v; want the app's 404", out, err)
	}
	if err := chromedp.Do(ctx, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	chromiumShows("after the replays")

	// No replayed request reached the app: its log has the owner's request (so it is
	// up to date) and none of the other user's.
	var logs string
	WaitFor(10*time.Second, func() bool {
		logs, _, _ = RunTether(t, "logs", "-F", s.Config, s.Alias, id)
		return strings.Contains(logs, ownerPath)
	})
	if !strings.Contains(logs, ownerPath) {
		t.Fatalf("the app's log lacks the owner's request %s:\n%s", ownerPath, logs)
	}
	if strings.Contains(logs, marker+"-") {
		t.Errorf("a replayed request reached the app:\n%s", logs)
	}

	// The launcher told the owner, once for that user (the next ones are counted for a
	// minute); a connection closed before it was looked at is told as such (or as gone).
	errOut := l.Stderr.String()
	uidNote := fmt.Sprintf("refused a connection to local port %d from another user of this machine, %s (uid %d)", port, other.Name, other.UID)
	if n := strings.Count(errOut, uidNote); n != 1 {
		t.Errorf("stderr tells %d times of %s; want once:\n%s", n, other.Name, errOut)
	}
	for _, line := range strings.Split(errOut, "\n") {
		if strings.Contains(line, "refused a connection") {
			t.Logf("launcher: %s", line)
		}
		if strings.Contains(line, "refused a connection") && !strings.Contains(line, uidNote) &&
			!strings.Contains(line, "closed before tether could tell who made it") && !strings.Contains(line, "whose other end was already gone") {
			t.Errorf("unexpected refusal line: %q", line)
		}
	}
	if strings.Contains(errOut, tok) || strings.Contains(errOut, cookie) {
		t.Errorf("a secret is on the launcher's stderr")
	}
	l.Interrupt(t)
}
