package launcher

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/tunnel"
	"github.com/tether-dev/tether/wire"
)

// attachWithEvents runs Attach against the fake remote; between connecting and serving
// (where launch waits for the app to start, or a batch job waits in the queue) the
// transport reports the events evs. It returns stderr when the ready line is out, and
// a function that detaches and returns Attach's error and the whole of stderr.
func attachWithEvents(t *testing.T, evs []tunnel.Event) (ready func() (string, error), detach func() (error, string)) {
	t.Helper()
	f := newFakeRemote(t)
	f.install()
	fs := startFakeServer(t, false)
	running := fs.rec
	running.State = wire.StateRunning
	list, _ := json.Marshal([]wire.Record{running})
	f.write("ls.out", string(list)+"\n")

	testHookOpened = func(s *session, onEvent func(tunnel.Event)) {
		for _, e := range evs {
			onEvent(e)
		}
	}
	t.Cleanup(func() { testHookOpened = nil })

	stdout, stderr := &syncBuf{}, &syncBuf{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Attach(ctx, AttachOptions{Options: Options{SSH: f.cfg, Host: "fakehost", Version: "test", RemoteBinary: f.bin, Stdout: stdout, Stderr: stderr},
			ForwardOptions: ForwardOptions{NoBrowser: true}})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("Attach did not return")
		}
	})
	ready = func() (string, error) {
		deadline := time.After(15 * time.Second)
		for {
			if out := stderr.String(); strings.Contains(out, "tether: ready:") {
				return out, nil
			}
			select {
			case err := <-done:
				done <- err
				return stderr.String(), err
			case <-deadline:
				t.Fatalf("attach neither ready nor ended; stderr:\n%s", stderr.String())
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	detach = func() (error, string) {
		cancel()
		select {
		case err := <-done:
			done <- err
			return err, stderr.String()
		case <-time.After(20 * time.Second):
			t.Fatalf("Attach did not return; stderr:\n%s", stderr.String())
			return nil, ""
		}
	}
	return ready, detach
}

// A connection lost and back while the session was being started is told when it
// happens, not replayed after "ready" as if the connection were down now.
func TestConnectionEventsBeforeReadyAreNotReplayed(t *testing.T) {
	lost := errors.New("tunnel: connection lost: read: connection reset by peer")
	ready, detach := attachWithEvents(t, []tunnel.Event{
		{State: tunnel.Lost, Err: lost},
		{State: tunnel.Reconnecting, Attempt: 1},
		{State: tunnel.Reconnecting, Attempt: 2},
		{State: tunnel.Back},
	})
	atReady, err := ready()
	if err != nil {
		t.Fatalf("attach ended: %v\n%s", err, atReady)
	}
	if i := strings.Index(atReady, "connection to fakehost lost"); i < 0 || i > strings.Index(atReady, "tether: ready:") {
		t.Errorf("the lost connection was not told before ready; stderr:\n%s", atReady)
	}
	err, all := detach()
	if err != nil {
		t.Fatalf("detach: %v", err)
	}
	after := all[strings.Index(all, "tether: ready:"):]
	if strings.Contains(after, "lost") || strings.Contains(after, "reconnect") {
		t.Errorf("connection events from before ready were replayed after it:\n%s", all)
	}
}

// A transport that gave up for good (Failed) is never dropped, however many events
// came before it: the launcher does not say ready over a dead connection.
func TestConnectionFailedIsNeverDropped(t *testing.T) {
	var evs []tunnel.Event
	for i := 1; i <= 20; i++ {
		evs = append(evs, tunnel.Event{State: tunnel.Lost, Err: errors.New("tunnel: connection lost")},
			tunnel.Event{State: tunnel.Reconnecting, Attempt: 1}, tunnel.Event{State: tunnel.Back})
	}
	evs = append(evs, tunnel.Event{State: tunnel.Failed, Err: &tunnel.AuthError{}})
	ready, _ := attachWithEvents(t, evs)
	out, err := ready()
	if err == nil {
		t.Fatalf("attach said ready after the connection failed for good:\n%s", out)
	}
	if strings.Contains(out, "tether: ready:") {
		t.Errorf("ready line printed after the connection failed:\n%s", out)
	}
}

// The queue keeps every event in order; only a run of Reconnecting coalesces, into its
// latest attempt.
func TestConnEventsOrderAndCoalescing(t *testing.T) {
	q := newConnEvents()
	in := []tunnel.Event{{State: tunnel.Lost}, {State: tunnel.Reconnecting, Attempt: 1}, {State: tunnel.Reconnecting, Attempt: 2},
		{State: tunnel.Reconnecting, Attempt: 3}, {State: tunnel.Back}}
	for i := 0; i < 100; i++ {
		for _, e := range in {
			q.add(e)
		}
	}
	q.add(tunnel.Event{State: tunnel.Failed})
	<-q.ready()
	var got []string
	for e, ok := q.next(); ok; e, ok = q.next() {
		got = append(got, e.State.String()+strconv.Itoa(e.Attempt))
	}
	if len(got) != 301 || got[0] != "lost0" || got[1] != "reconnecting3" || got[2] != "back0" || got[300] != "failed0" {
		t.Fatalf("queue gave %d events, first %v, last %q", len(got), got[:3], got[len(got)-1])
	}
}

// The pump that owns the events before serving ends a batch job's wait when the
// connection fails for good (connGaveUp), and says why.
func TestPumpGivesUpOnFailed(t *testing.T) {
	var out syncBuf
	s := &session{host: "h", status: newStatus(&out), events: newConnEvents()}
	s.startPump()
	s.events.add(tunnel.Event{State: tunnel.Lost, Err: errors.New("tunnel: connection lost")})
	s.events.add(tunnel.Event{State: tunnel.Failed, Err: &tunnel.AuthError{User: "u", Host: "h"}})
	select {
	case <-s.connGaveUp():
	case <-time.After(10 * time.Second):
		t.Fatal("the pump did not give up on Failed")
	}
	if err := s.stopPump(); err == nil {
		t.Fatal("stopPump: no error after Failed")
	}
	if err := s.handOff(); err == nil {
		t.Fatal("handOff: no error after Failed")
	}
	if !strings.Contains(out.String(), "connection to h lost") {
		t.Errorf("the loss was not told: %q", out.String())
	}
}

// A batch job's watch has an owner: stop returns once its goroutine has ended (it ran
// on context.Background, cancelled and never waited for).
func TestSlurmWatchStopWaits(t *testing.T) {
	f := newFakeRemote(t)
	f.install()
	s, err := open(context.Background(), Options{SSH: f.cfg, Host: "fakehost", Version: "test", RemoteBinary: f.bin}, oneCommand)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	for i := 0; i < 5; i++ {
		// The fake knows no `batch watch`: it says nothing and exits 0, and the watch
		// tries again; stop it at different points of that loop.
		w := s.startWatch("abcdefgh")
		time.Sleep(time.Duration(i) * 30 * time.Millisecond)
		w.stop()
		select {
		case <-w.done:
		default:
			t.Fatalf("round %d: stop returned while the watch's goroutine still ran", i)
		}
	}
}

// The GC policy is the program's (main decides it per command); library code leaves
// the runtime's settings alone: serving a session set GOGC=400 and a 32 MiB memory
// limit for the whole process (any program or test that imported the launcher).
func TestServingLeavesGCPolicyAlone(t *testing.T) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		t.Skip("GOGC or GOMEMLIMIT set for this test run")
	}
	before := debug.SetGCPercent(100)
	debug.SetGCPercent(before)
	limit := debug.SetMemoryLimit(-1)
	ready, detach := attachWithEvents(t, nil)
	if out, err := ready(); err != nil {
		t.Fatalf("attach: %v\n%s", err, out)
	}
	if err, out := detach(); err != nil {
		t.Fatalf("detach: %v\n%s", err, out)
	}
	now := debug.SetGCPercent(before)
	nowLimit := debug.SetMemoryLimit(limit)
	if now != before || nowLimit != limit {
		t.Errorf("serving changed the process's GC policy: GOGC %d -> %d, memory limit %d -> %d", before, now, limit, nowLimit)
	}
}

// A question on the terminal that times out takes nothing typed afterwards: the next
// reader gets the next line (a goroutine left reading used to swallow it).
func TestConfirmTimeoutSwallowsNothing(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	var out syncBuf
	start := time.Now()
	yes, ok := confirmFrom(r, &out, 100*time.Millisecond)
	if !ok || !yes {
		t.Fatalf("no answer: yes %v ok %v; want the default, yes", yes, ok)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the question waited %v", took)
	}
	w.WriteString("n\nnext line\n")
	if yes, ok := confirmFrom(r, &out, 5*time.Second); !ok || yes {
		t.Fatalf("the answer typed after a timed-out question: yes %v ok %v; want no", yes, ok)
	}
	rest := make([]byte, 64)
	n, _ := r.Read(rest)
	if string(rest[:n]) != "next line\n" {
		t.Errorf("after the answer the input holds %q; want the next line untouched", rest[:n])
	}
}

// open's hashing goroutine has an owner on every path: a connect that fails at once
// (here a bad --ssh) returns only once the hashing has ended (it ran on, unwaited).
func TestOpenFailureWaitsForHashing(t *testing.T) {
	big := filepath.Join(t.TempDir(), "tether")
	if err := os.WriteFile(big, make([]byte, 32<<20), 0o700); err != nil { // hashing takes a while
		t.Fatal(err)
	}
	_, err := open(context.Background(), Options{Host: "h", SSHMode: "bogus", Version: "test", RemoteBinary: big}, oneCommand)
	if err == nil {
		t.Fatal("open with --ssh bogus: no error")
	}
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		// A frame of session.go still running (not the "created by" lines: a goroutine
		// that has returned may still be in runtime.goexit when the stacks are taken).
		running, _, _ := strings.Cut(g, "\ncreated by ")
		if strings.Contains(running, "launcher/session.go") {
			t.Fatalf("open's goroutine outlived it:\n%s", g)
		}
	}
}
