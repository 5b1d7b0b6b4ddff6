//go:build unix

package remote

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tether-dev/tether/wire"
)

// fakeScheduler answers a jobWatch's queries from what the test says, and notes when it
// was asked.
type fakeScheduler struct {
	mu    sync.Mutex
	job   wire.JobStatus
	err   error
	asked []time.Duration // since start
	start time.Time
}

func (f *fakeScheduler) set(j wire.JobStatus, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.job, f.err = j, err
}

func (f *fakeScheduler) query(ctx context.Context, sf *sessionFile) (map[string]wire.JobStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, time.Since(f.start))
	if f.err != nil {
		return nil, f.err
	}
	return map[string]wire.JobStatus{f.job.JobID: f.job}, nil
}

// askedSince is how often the scheduler was asked since d after start.
func (f *fakeScheduler) askedSince(d time.Duration) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, a := range f.asked {
		if a >= d {
			n++
		}
	}
	return n
}

// sentEvent is an event the watch sent, and when.
type sentEvent struct {
	at time.Duration
	ev wire.Event
}

type eventLog struct {
	mu     sync.Mutex
	events []sentEvent
	start  time.Time
}

func (l *eventLog) send(ev wire.Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, sentEvent{time.Since(l.start), ev})
	return nil
}

func (l *eventLog) sent() []sentEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]sentEvent(nil), l.events...)
}

func (l *eventLog) kinds() string {
	var k []string
	for _, e := range l.sent() {
		k = append(k, string(e.ev.Kind)+"@"+e.at.String())
	}
	return strings.Join(k, " ")
}

// queuedBatchSession writes a batch session's record as batch submit does: queued,
// with its job id.
func queuedBatchSession(t *testing.T, jobID string) (*session, *sessionFile) {
	t.Helper()
	root := tempRoot(t)
	s, err := newSession(root)
	if err != nil {
		t.Fatal(err)
	}
	sf := &sessionFile{Record: wire.Record{ID: s.ID, JobID: jobID, Command: []string{"app"}, Started: time.Now().UTC(), Version: "test"},
		Phase: phaseQueued, Slurm: true}
	if err := writeRecord(s, sf); err != nil {
		t.Fatal(err)
	}
	return s, sf
}

// The job watch's clock, on synctest's fake one: the scheduler every second while the
// job waits, at once when the record's phase changes, every 15 s once the session is
// ready; an unchanged job re-sent once a minute (its time left); a note at the third
// failure in a row, not before; the job's end (here: stopped) the last event.
func TestJobWatchPolling(t *testing.T) {
	s, sf := queuedBatchSession(t, "42")
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		sched := &fakeScheduler{start: start}
		sched.set(wire.JobStatus{JobID: "42", Name: jobName(s.ID), State: "PENDING", Reason: "Resources"}, nil)
		log := &eventLog{start: start}
		w, err := openJobWatch(s.ID)
		if err != nil {
			t.Fatal(err)
		}
		w.query, w.send = sched.query, log.send
		done := make(chan error, 1)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel() // a failed check leaves no goroutine blocked in the bubble
		go func() { done <- w.run(ctx) }()

		// Pending: asked at 0, 1 s, … 59 s and 60 s; the job sent at 0 and, unchanged, at 60 s.
		time.Sleep(60*time.Second + time.Millisecond)
		synctest.Wait()
		if n := sched.askedSince(0); n != 61 {
			t.Errorf("pending for 60 s: asked %d times; want 61 (every second)", n)
		}
		if got, want := log.kinds(), "job@0s job@1m0s"; got != want {
			t.Errorf("pending for 60 s: sent %s; want %s", got, want)
		}

		// It runs, and its server writes the ready record: asked at once (the phase
		// changed), the job and the ready record sent at the next look.
		sched.set(wire.JobStatus{JobID: "42", Name: jobName(s.ID), State: "RUNNING", Node: "node1", TimeLeft: "59:00"}, nil)
		sf.Phase, sf.Node, sf.Addr, sf.TLS = phaseRunning, "node1", "10.0.0.5:4000", true
		sf.PID, sf.Host, sf.Socket, sf.Token, sf.BaseURL = 4242, "node1", "/tmp/tether-x/server.sock", strings.Repeat("t", 43), "/"
		sf.URL, sf.CertSHA256 = "https://10.0.0.5:4000/", strings.Repeat("a", 64)
		if err := writeRecord(s, sf); err != nil {
			t.Fatal(err)
		}
		ready := time.Since(start)
		time.Sleep(200 * time.Millisecond)
		synctest.Wait()
		if got, want := log.kinds(), "job@0s job@1m0s job@1m0.2s ready@1m0.2s"; got != want {
			t.Fatalf("ready: sent %s; want %s", got, want)
		}

		// Ready: asked every 15 s, no longer every second.
		time.Sleep(60 * time.Second)
		synctest.Wait()
		if n := sched.askedSince(ready); n != 5 {
			t.Errorf("ready for 60 s: asked %d times; want 5 (at once, then every 15 s)", n)
		}

		// The scheduler fails: a note at the third failure in a row only.
		sched.set(wire.JobStatus{}, errors.New("squeue: error: slurm_load_jobs error: Socket timed out"))
		failing := time.Since(start)
		time.Sleep(45 * time.Second)
		synctest.Wait()
		notes := 0
		for _, e := range log.sent() {
			if e.ev.Kind == wire.EventNote {
				notes++
				if e.at < failing+30*time.Second || !strings.Contains(e.ev.Said.String(), "Socket timed out") {
					t.Errorf("note at %v (failing since %v): %s", e.at, failing, e.ev.Said)
				}
			}
		}
		if notes != 1 {
			t.Errorf("three failures: %d notes; want 1 (%s)", notes, log.kinds())
		}

		// `tether stop` cancels the job: the last event says so, and the watch ends.
		if err := os.WriteFile(filepath.Join(s.Dir, stoppingFile), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		sched.set(wire.JobStatus{JobID: "42", Name: jobName(s.ID), State: "CANCELLED"}, nil)
		time.Sleep(15 * time.Second)
		synctest.Wait()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("the watch ended with %v", err)
			}
		default:
			t.Fatal("the watch goes on after the job's end")
		}
		sent := log.sent()
		last := sent[len(sent)-1].ev
		if last.Kind != wire.EventEnded || !last.Removed {
			t.Errorf("last event %+v; want ended, removed", last)
		}
	})
}

// A session whose job id never comes (its submit died before writing it): the watch
// gives up after 2 minutes, having asked the scheduler nothing.
func TestJobWatchNoJobID(t *testing.T) {
	s, _ := queuedBatchSession(t, "")
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		sched := &fakeScheduler{start: start}
		w, err := openJobWatch(s.ID)
		if err != nil {
			t.Fatal(err)
		}
		w.query, w.send = sched.query, (&eventLog{start: start}).send
		err = w.run(context.Background())
		if took := time.Since(start); err == nil || !strings.Contains(err.Error(), "no job id after 2 minutes") || took < 2*time.Minute || took > 2*time.Minute+time.Second {
			t.Errorf("after %v: %v; want the submit's failure after 2 minutes", took, err)
		}
		if n := sched.askedSince(0); n != 0 {
			t.Errorf("asked the scheduler %d times about no job", n)
		}
	})
}
