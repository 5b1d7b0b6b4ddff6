package launcher

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/tether-dev/tether/internal/shquote"
	"github.com/tether-dev/tether/internal/termsafe"
	"github.com/tether-dev/tether/wire"
)

// A session can end while a launcher is attached to it: `tether stop` from another
// terminal, the app quitting (Jupyter's Quit button), its idle timeout, a killed
// server. The launcher notices within endCheckEvery (plus a listing) and exits with one
// line saying why, instead of saying "ready" while the browser gets resets.

// endCheckEvery is how often the session's socket is checked: one channel open
// through the SSH connection, closed at once (no request: it does not count as
// activity for the server's idle timeout).
var endCheckEvery = 3 * time.Second

// socketWatch checks the session's socket every endCheckEvery and reports a refusal:
// a channel open that the live SSH server rejected (the socket is gone, or nobody
// listens on it). Failures of the SSH connection itself are the reconnect's business.
type socketWatch struct {
	refused chan struct{}
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

func (s *session) watchSocket(rec wire.Record) *socketWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &socketWatch{refused: make(chan struct{}, 1), cancel: cancel}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		t := time.NewTicker(endCheckEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
			c, err := s.conn.DialContext(dctx, "unix", rec.Socket)
			dcancel()
			if err == nil {
				c.Close()
				continue
			}
			if socketRefused(err) {
				select {
				case w.refused <- struct{}{}:
				default:
				}
			}
		}
	}()
	return w
}

func (w *socketWatch) stop() {
	w.cancel()
	w.wg.Wait()
}

// socketRefused reports whether err is the SSH server's answer that it could not connect to
// the socket, as opposed to a connection that failed or timed out.
func socketRefused(err error) bool {
	var oce *ssh.OpenChannelError
	return errors.As(err, &oce) && oce.Reason == ssh.ConnectionFailed
}

// errEndedCleanly: the session ended as someone meant it to (stopped, or the app
// exited with status 0); the launcher said so and exits 0.
var errEndedCleanly = errors.New("the session ended")

// sessionEnded asks the remote (`tether ls --json`) what became of a session whose
// socket refused a connection. nil: it still runs, or no answer yet (ask again at the
// next refusal); errEndedCleanly, after one line saying so; or the error to exit with.
// A listing that shows the server dead may catch a stop half-way: a second one, a
// second later, decides (deadSeen counts them across calls).
func (s *session) sessionEnded(ctx context.Context, rec wire.Record, deadSeen *int) error {
	for {
		r, ok := s.listed(ctx, rec.ID)
		if !ok {
			return nil
		}
		if r == nil || r.State != wire.StateDead {
			return s.ended(rec, r)
		}
		if *deadSeen++; *deadSeen >= 2 {
			return s.ended(rec, r)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

// listed is the session's entry in `tether ls --json` on the remote (nil: not listed);
// ok is false when the remote did not answer.
func (s *session) listed(ctx context.Context, id string) (r *wire.Record, ok bool) {
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	recs, err := s.list(lctx)
	cancel()
	if err != nil {
		return nil, false
	}
	for i := range recs {
		if recs[i].ID == id {
			return &recs[i], true
		}
	}
	return nil, true
}

// ended says why the session ended, given its listing (nil: not listed any more), or
// returns nil while it runs.
func (s *session) ended(rec wire.Record, r *wire.Record) error {
	what := fmt.Sprintf("session %s on %s ended", rec.ID, s.host)
	switch {
	case r == nil:
		s.status.line("tether: %s: it was stopped (`tether stop`, or its idle timeout)", what)
		return errEndedCleanly
	case r.State == wire.StateAppExited:
		how := termsafe.OneLine(r.Exit)
		if how == "" {
			how = "ended"
		}
		last := ""
		if n := len(r.AppOutput); n > 0 {
			s.status.line("tether: the app's last output on %s:", s.host)
			for _, l := range r.AppOutput {
				s.status.line("  %s", termsafe.Clip(termsafe.OneLine(l), 300))
			}
			last = fmt.Sprintf(" (last output: %q)", termsafe.Clip(termsafe.OneLine(r.AppOutput[n-1]), 100))
		}
		msg := fmt.Sprintf("%s: the app %s%s", what, termsafe.Clip(how, 100), last)
		if r.ExitStatus != nil && *r.ExitStatus == 0 {
			s.status.line("tether: %s", msg)
			return errEndedCleanly
		}
		return &Error{Msg: msg, Hint: "`" + s.cmdline("logs", rec.ID) + "` shows its output; start it again with `tether launch " + shquote.Quote(s.host) + "`", Err: errSessionGone}
	case r.State == wire.StateDead:
		return &Error{Msg: what + ": its server is gone (killed, or the machine restarted)",
			Hint: "`" + s.cmdline("logs", rec.ID) + "` may say why; `" + s.cmdline("stop", rec.ID) + "` clears it", Err: errSessionGone}
	}
	return nil
}
