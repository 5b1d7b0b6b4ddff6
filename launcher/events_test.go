package launcher

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/remote"
	"github.com/tether-dev/tether/tunnel"
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
	running.State = remote.StateRunning
	list, _ := json.Marshal([]remote.Record{running})
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
