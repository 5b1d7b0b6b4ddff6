package launcher

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-dev/tether/tokenserver"
	"github.com/tether-dev/tether/wire"
)

// portSession is a session's real gate (tokenserver) on a Unix socket, with Ports
// reaching one raw TCP program of ours as port 5432 and refusing 9000 as another
// user's; the fake remote lists it. It records what the program received.
type portSession struct {
	rec    wire.Record
	mu     sync.Mutex
	got    strings.Builder
	dialed []int
}

func startPortSession(t *testing.T, f *fakeRemote) *portSession {
	t.Helper()
	ps := &portSession{rec: goodRecord()}
	// The program: says hello first, echoes, tells the count after the client's EOF.
	prog, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	go func() {
		for {
			c, err := prog.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.WriteString(c, "hello\n")
				b, _ := io.ReadAll(c)
				ps.mu.Lock()
				ps.got.Write(b)
				ps.mu.Unlock()
				fmt.Fprintf(c, "%s|got %d\n", b, len(b))
			}()
		}
	}()
	dir, err := os.MkdirTemp("", "tp-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ps.rec.Socket = filepath.Join(dir, "s.sock")
	gate, err := tokenserver.New(tokenserver.Options{Token: ps.rec.Token, SessionID: ps.rec.ID, App: http.NotFoundHandler(),
		Ports: &tokenserver.Ports{
			Dial: func(ctx context.Context, port int) (net.Conn, error) {
				ps.mu.Lock()
				ps.dialed = append(ps.dialed, port)
				ps.mu.Unlock()
				if port != 5432 {
					return nil, portRefused(403, wire.FailPortTaken, wire.Textf("port %d on %v is held by another user, bob (uid 1001), not by you; nothing was sent to it", port, wire.ThisMachine))
				}
				var d net.Dialer
				return d.DialContext(ctx, "tcp", prog.Addr().String())
			},
			Check: func(port int) error {
				switch port {
				case 5432:
					return nil
				case 9000:
					return portRefused(403, wire.FailPortTaken, wire.Textf("port 9000 on %v is held by another user, bob (uid 1001), not by you; nothing was sent to it", wire.ThisMachine))
				}
				return portRefused(502, wire.FailPortFree, wire.Textf("nothing listens on port %d on %v's loopback (127.0.0.1 or ::1)", port, wire.ThisMachine))
			},
		}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", ps.rec.Socket)
	if err != nil {
		t.Fatal(err)
	}
	go gate.Serve(ln)
	t.Cleanup(func() { gate.Shutdown(context.Background()) })
	running := ps.rec
	running.State = wire.StateRunning
	list, _ := json.Marshal([]wire.Record{running})
	f.write("ls.out", string(list)+"\n")
	return ps
}

// runForward runs ForwardPort until the test ends; it returns its output and a channel
// with its result.
func runForward(t *testing.T, f *fakeRemote, o ForwardPortOptions) (stdout, stderr *syncBuf, done chan error, cancel context.CancelFunc) {
	t.Helper()
	stdout, stderr = &syncBuf{}, &syncBuf{}
	o.Options = Options{SSH: f.cfg, Host: "fakehost", Version: "test", RemoteBinary: f.bin, Stdout: stdout, Stderr: stderr}
	ctx, cancel := context.WithCancel(context.Background())
	done = make(chan error, 1)
	go func() { done <- ForwardPort(ctx, o) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("ForwardPort did not return")
		}
	})
	return stdout, stderr, done, cancel
}

// tether forward through the session's gate: the JSON line, a raw stream both ways
// (the program speaks first; half-close reaches it), Ctrl-C's line.
func TestForwardPortStream(t *testing.T) {
	f := newFakeRemote(t)
	f.install()
	ps := startPortSession(t, f)
	stdout, stderr, done, cancel := runForward(t, f, ForwardPortOptions{Port: 5432, JSON: true})
	waitFor(t, "the JSON line", func() bool {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("ForwardPort: %v\n%s", err, stderr.String())
		default:
		}
		return strings.HasSuffix(stdout.String(), "\n")
	})
	var line ForwardLine
	if err := json.Unmarshal([]byte(stdout.String()), &line); err != nil || line.Port != 5432 || line.Session != ps.rec.ID || line.LocalPort == 0 {
		t.Fatalf("JSON line %q: %v", stdout.String(), err)
	}
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", line.LocalPort))
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		if hello, err := br.ReadString('\n'); hello != "hello\n" {
			t.Fatalf("first line %q, %v", hello, err)
		}
		fmt.Fprintf(c, "ping %d", i)
		c.(*net.TCPConn).CloseWrite()
		rest, _ := io.ReadAll(br)
		c.Close()
		if want := fmt.Sprintf("ping %d|got 6\n", i); string(rest) != want {
			t.Errorf("stream %d: %q; want %q", i, rest, want)
		}
	}
	mustHave(t, stderr.String(), fmt.Sprintf("forwarding 127.0.0.1:%d to port 5432 on fakehost (session %s)", line.LocalPort, ps.rec.ID))
	cancel()
	err := <-done
	done <- err
	if err != nil {
		t.Errorf("after Ctrl-C: %v", err)
	}
	mustHave(t, stderr.String(), "stopped forwarding port 5432; session abcdefgh keeps running on fakehost")
	if strings.Contains(stdout.String()+stderr.String(), ps.rec.Token) {
		t.Error("the token was printed")
	}
}

// A port the server refuses ends the command before it listens, in the server's words
// and with the next step; so does a port nothing listens on. Bad numbers are usage
// errors, before any connection.
func TestForwardPortRefused(t *testing.T) {
	f := newFakeRemote(t)
	f.install()
	ps := startPortSession(t, f)
	for _, tt := range []struct {
		port int
		want []string
	}{
		{9000, []string{"cannot forward port 9000 on fakehost: port 9000 on fakehost is held by another user, bob (uid 1001)", "forward a port that a program of yours listens on"}},
		{9001, []string{"cannot forward port 9001 on fakehost: nothing listens on port 9001", "start the program on fakehost first (on 127.0.0.1:9001)"}},
	} {
		_, _, done, _ := runForward(t, f, ForwardPortOptions{Port: tt.port})
		var err error
		select {
		case err = <-done:
			done <- err
		case <-time.After(20 * time.Second):
			t.Fatal("ForwardPort did not fail")
		}
		var le *Error
		if !errors.As(err, &le) || le.ExitCode() != 1 {
			t.Fatalf("port %d: %v; want an Error", tt.port, err)
		}
		for _, w := range tt.want {
			mustHave(t, err.Error(), w)
		}
	}
	ps.mu.Lock()
	if len(ps.dialed) > 0 {
		t.Errorf("ports dialled: %v", ps.dialed)
	}
	ps.mu.Unlock()
	for _, bad := range []ForwardPortOptions{{Port: 0}, {Port: 65536}, {Port: 22, LocalPort: -1}} {
		err := ForwardPort(context.Background(), bad)
		var le *Error
		if !errors.As(err, &le) || le.ExitCode() != 2 {
			t.Errorf("%+v: %v; want a usage error", bad, err)
		}
	}
}

// A stream the server refuses after the check (the port changed hands) closes the
// local connection and is told once, in the server's words.
func TestForwardStreamRefusalTold(t *testing.T) {
	var lines []string
	var mu sync.Mutex
	tell := newRefusalTeller(func(format string, args ...any) {
		mu.Lock()
		lines = append(lines, fmt.Sprintf(format, args...))
		mu.Unlock()
	})
	now := time.Now()
	tell.now = func() time.Time { return now }
	err := &streamRefused{status: 403, words: "port 5432 on this machine is held by another user, bob (uid 1001), not by you; nothing was sent to it"}
	for i := 0; i < 5; i++ {
		tell.tell("gpu-box", 5432, err)
	}
	now = now.Add(refuseQuiet + time.Second)
	tell.tell("gpu-box", 5432, err)
	if len(lines) != 2 || lines[0] != "tether: a connection to port 5432 on gpu-box was closed: port 5432 on this machine is held by another user, bob (uid 1001), not by you; nothing was sent to it" {
		t.Errorf("told %q", lines)
	}
	if got := serverWords("403 Forbidden: port 1 is x\n"); got != "port 1 is x" {
		t.Errorf("serverWords: %q", got)
	}
	if got := serverWords("\x1b]0;evil\x07502 Bad Gateway: a\x1b[2Jb\nmore"); strings.ContainsAny(got, "\x1b\x07\n") {
		t.Errorf("serverWords kept control characters: %q", got)
	}
}

func mustHave(t *testing.T, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Errorf("%q lacks %q", s, sub)
	}
}

// A --local-port that is taken or out of range is refused in forward's own words
// (--local-port, not launch's --port).
func TestListenForwardNamesLocalPort(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := busy.Addr().(*net.TCPAddr).Port
	for _, local := range []int{port, 70000} {
		ln, err := listenForward(local, 5432)
		if ln != nil {
			ln.Close()
		}
		if err == nil || !strings.Contains(err.Error(), "--local-port") || strings.Contains(err.Error(), "--port") {
			t.Errorf("--local-port %d: %v; want an error naming --local-port only", local, err)
		}
	}
	// 0: PORT's number when free, else any free port.
	ln, err := listenForward(0, port)
	if err != nil {
		t.Fatal(err)
	}
	if got := ln.Addr().(*net.TCPAddr).Port; got == port || got == 0 {
		t.Errorf("with %d taken, listened on %d", port, got)
	}
	ln.Close()
}

// portRefused is a refusal as the remote's gate gives it: text for a person, and the
// same as a wire.Failure for a launcher.
func portRefused(status int, kind wire.FailKind, said wire.Text) *tokenserver.PortError {
	f := wire.Fail(kind, said, nil)
	return &tokenserver.PortError{Status: status, Msg: said.String(), Detail: f.Line()}
}
