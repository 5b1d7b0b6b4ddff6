//go:build unix

package remote

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/stripe"
)

func TestListenPrivateUnix(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "server.sock")
	old := syscall.Umask(0)
	ln, fi, err := listenPrivateUnix(path)
	syscall.Umask(old)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Lstat(path); st.Mode().Perm() != 0o600 || st.Mode()&os.ModeSocket == 0 {
		t.Errorf("socket mode %v; want a 0600 socket", st.Mode())
	}
	// Closing the listener does not unlink; removeSocket does, for our socket only.
	ln.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("closing unlinked the socket: %v", err)
	}
	// A second server never takes over the path, stale or not.
	if _, _, err := listenPrivateUnix(path); err == nil || !strings.Contains(err.Error(), "never reuses") {
		t.Fatalf("listening on an existing path: %v", err)
	}
	removeSocket(path, fi)
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("removeSocket left our socket: %v", err)
	}
}

func TestRemoveSocketLeavesAReplacementAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "server.sock")
	ln, fi, err := listenPrivateUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	os.Remove(path)
	time.Sleep(20 * time.Millisecond)      // a later change time, even on coarse clocks
	other, err := net.Listen("unix", path) // someone else's socket now
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	removeSocket(path, fi)
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("removeSocket removed a socket it did not create: %v", err)
	}
}

// helperBinary copies the test binary where another uid can run it.
func helperBinary(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755)
	dst := filepath.Join(dir, "helper")
	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, src); err != nil {
		t.Fatal(err)
	}
	out.Close()
	return dst
}

func connectAs(t *testing.T, helper string, uid int, socket string) string {
	t.Helper()
	cmd := exec.Command(helper, "-test.run=^$")
	cmd.Env = []string{"TETHER_REMOTE_TEST_HELPER=connect", "TETHER_REMOTE_TEST_SOCKET=" + socket}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper as uid %d: %v\n%s", uid, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestOtherUserCannotConnect: the socket in a 0700 session directory gives another uid
// EACCES; and where the directory would let them through, SO_PEERCRED closes the
// connection.
func TestOtherUserCannotConnect(t *testing.T) {
	helper, s := sessionOtherUsersReach(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ln, _, err := listenPrivateUnix(s.socketPath())
	if err != nil {
		t.Fatal(err)
	}
	pl := &peerCheckListener{UnixListener: ln, logger: logger}
	defer pl.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := pl.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	if got := connectAs(t, helper, 65534, s.socketPath()); !strings.Contains(got, "permission denied") {
		t.Errorf("uid 65534 connecting through the 0700 dir: %q; want permission denied", got)
	}

	// Open everything up, as a careless --socket path might: the peer check still
	// closes the other user's connection.
	os.Chmod(s.Root, 0o755)
	os.Chmod(s.Dir, 0o755)
	os.Chmod(s.socketPath(), 0o777)
	if got := connectAs(t, helper, 65534, s.socketPath()); !strings.Contains(got, "read 0: EOF") {
		t.Errorf("uid 65534 through open permissions: %q; want the connection closed (EOF)", got)
	}
	select {
	case c := <-accepted:
		c.Close()
		t.Error("the other user's connection was handed to the server")
	case <-time.After(100 * time.Millisecond):
	}
	// Our own uid is let through.
	c, err := net.Dial("unix", s.socketPath())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case sc := <-accepted:
		sc.Close()
	case <-time.After(2 * time.Second):
		t.Error("our own connection was not accepted")
	}
}

// TestOtherUserCannotSendStripes: the gate joins stripes behind the check of the
// peer's user, so another uid can neither open a striped connection nor complete (or
// spoil) a group our own user began, even where permissions let its connection reach
// the socket. The gate is the one serve opens (openGate), not a copy of its wrapping.
func TestOtherUserCannotSendStripes(t *testing.T) {
	helper, s := sessionOtherUsersReach(t)
	logs := &syncWriter{b: &strings.Builder{}}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	// The gate as serve opens it (openGate), in front of a page that says who it is.
	sv := &serving{o: &ServeOptions{}, logger: logger, fileLogger: logger, gateLogger: logger,
		sess: s, sf: &sessionFile{}, sockPath: s.socketPath(), act: newActivity()}
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "the app") })
	g, err := sv.openGate("", nil, nil, page, newPortReacher(), nil)
	if g != nil {
		defer g.close()
	}
	if err != nil {
		t.Fatal(err)
	}
	if sv.sf.Stripes < 2 {
		t.Fatalf("the record offers %d stripes; want the gate to join them", sv.sf.Stripes)
	}
	os.Chmod(s.Root, 0o755)
	os.Chmod(s.Dir, 0o755)
	os.Chmod(s.socketPath(), 0o777)

	helloAs := func(id string, index, count int) string {
		cmd := exec.Command(helper, "-test.run=^$")
		cmd.Env = []string{"TETHER_REMOTE_TEST_HELPER=stripe-hello", "TETHER_REMOTE_TEST_SOCKET=" + s.socketPath(),
			"TETHER_REMOTE_TEST_STRIPE_ID=" + id, "TETHER_REMOTE_TEST_STRIPE_INDEX=" + strconv.Itoa(index),
			"TETHER_REMOTE_TEST_STRIPE_COUNT=" + strconv.Itoa(count)}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		cmd.Dir = "/"
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("helper as uid 65534: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	joined := func() int {
		logs.mu.Lock()
		defer logs.mu.Unlock()
		return strings.Count(logs.b.String(), "striped connection")
	}

	// A whole group from the other user: each stripe is closed before it is looked at.
	for i := range 2 {
		if got := helloAs("00112233445566778899aabbccddeeff", i, 2); !closedOnIt(got) {
			t.Errorf("stripe %d from uid 65534: %q; want it closed", i, got)
		}
	}
	if n := joined(); n != 0 {
		t.Errorf("the other user's group: %d groups joined; want none", n)
	}

	// Our stripe 0 of 2 waits; the other user's stripe 1 with the same id is closed and
	// neither completes nor spoils the group: our own stripe 1 completes it, and the
	// gate acks it on stripe 0 (a header of length 0xFFFFFFFE).
	id := "ffeeddccbbaa99887766554433221100"
	rawID, _ := hex.DecodeString(id)
	ours := func(index int) net.Conn {
		c, err := net.Dial("unix", s.socketPath())
		if err != nil {
			t.Fatal(err)
		}
		c.Write(append(append([]byte(stripe.Magic), rawID...), byte(index), 2))
		return c
	}
	c0 := ours(0)
	defer c0.Close()
	time.Sleep(50 * time.Millisecond) // stripe 0 is held by the listener
	if got := helloAs(id, 1, 2); !closedOnIt(got) {
		t.Errorf("the other user's stripe of our group: %q; want it closed", got)
	}
	if n := joined(); n != 0 {
		t.Errorf("our group with the other user's stripe: %d groups joined; want none", n)
	}
	c1 := ours(1)
	defer c1.Close()
	c0.SetReadDeadline(time.Now().Add(5 * time.Second))
	var ack [12]byte
	if _, err := io.ReadFull(c0, ack[:]); err != nil || binary.BigEndian.Uint32(ack[8:]) != 0xFFFFFFFE {
		t.Errorf("our own group: read %x, %v; want the gate's ack", ack, err)
	}
	c0.Close()
	c1.Close()

	// A striped request of ours is served.
	dial := func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", s.socketPath())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sc, err := stripe.Dial(ctx, 4, dial, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	sc.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(sc, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(sc), nil)
	if err != nil {
		t.Fatalf("a striped request of ours: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != "the app" {
		t.Errorf("a striped request of ours: %s %q; want the app's page", resp.Status, body)
	}
	if n := joined(); n != 2 {
		t.Errorf("%d groups joined; want our 2", n)
	}
	logs.mu.Lock()
	defer logs.mu.Unlock()
	if n := strings.Count(logs.b.String(), "closed a connection from another user"); n != 3 {
		t.Errorf("%d refusals logged; want 3:\n%s", n, logs.b.String())
	}
}

// closedOnIt: the helper's read saw the server close the connection (EOF, or a reset
// when the server closed it with the hello unread).
func closedOnIt(got string) bool {
	return strings.HasPrefix(got, "read 0: ") && (strings.HasSuffix(got, "EOF") || strings.HasSuffix(got, "connection reset by peer"))
}

// syncWriter serialises writes to w (a logger's lines from several goroutines).
type syncWriter struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// sessionOtherUsersReach is a new session whose state root another uid may pass
// through (0755 above it), and the helper binary that runs as uid 65534; it skips t
// unless root on Linux.
func sessionOtherUsersReach(t *testing.T) (helper string, s *session) {
	t.Helper()
	if !isRoot() || runtime.GOOS != "linux" {
		t.Skip("needs root (to run a helper as uid 65534) on Linux")
	}
	helper = helperBinary(t)
	root := tempRoot(t)
	os.Chmod(filepath.Dir(root), 0o755)
	s, err := newSession(root)
	if err != nil {
		t.Fatal(err)
	}
	return helper, s
}
