//go:build unix

package remote

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/tether-dev/tether/internal/localpeer"
	"github.com/tether-dev/tether/wire"
)

// runApp starts the app, waits until it is ready and looks at where it listens (see
// apptrust.go). When a listener that is not the app's holds its TCP port, the app is
// stopped and started again on a fresh port, portAttempts times in all. Each process
// started is recorded (started) before the wait, so stop finds it. It returns the
// last plan (whose files the caller removes) and the running app (which the caller
// stops), also with an error; an error has been reported through rep.
func (o *ServeOptions) runApp(ctx context.Context, sess *session, started func(*appProc) error, out io.Writer, rep reporter, progress func(wire.Note)) (*appPlan, *appProc, error) {
	deadline := time.Now().Add(o.ReadyTimeout)
	fail := func(said wire.Text) error {
		f := wire.Fail("", said, nil)
		rep.failed(f)
		return f
	}
	var (
		plan *appPlan
		app  *appProc
	)
	for attempt := 1; ; attempt++ {
		var err error
		if plan, err = o.App.planIn(sess, o.BaseURL, o.shellEnv); err != nil {
			return nil, nil, err
		}
		if o.AppName != "" {
			progress(wire.Stepf("starting %s: %s", o.describeApp(), commandLine(plan.argv)))
		} else {
			progress(wire.Stepf("starting %s", commandLine(plan.argv)))
		}
		if app, err = startApp(plan, out); err != nil {
			return plan, nil, err
		}
		if err := started(app); err != nil {
			return plan, app, err
		}
		err = waitReady(ctx, plan, app, time.Until(deadline), progress)
		taken := portTaken(err, plan)
		if taken == nil {
			if err != nil {
				return plan, app, readyFailure(err, app, sess.ID, rep)
			}
			break
		}
		// Nothing went to the impostor; this app (which cannot bind its port) goes, and
		// its files with it.
		app.stop(appGrace)
		removeAppFiles(plan.files)
		if attempt == portAttempts {
			return nil, nil, fail(wire.Textf("the app's port was taken before the app could listen on it, %d times in a row, by %s (last %s); nothing was sent to it; "+
				"let the app listen on {socket}, or read $PORT instead of taking {port} on its command line (which every user can read)", portAttempts, taken.holder(), taken.addr))
		}
		progress(wire.Warnf("%v; nothing was sent to it; starting the app again on another port", taken))
	}

	ls, err := appListeners(app)
	switch {
	case errors.Is(err, localpeer.ErrUnsupported):
		if plan.network == "tcp" {
			progress(wire.Notef("this system does not tell tether who holds the app's port or where the app listens; make sure it listens on 127.0.0.1 only"))
		}
		return plan, app, nil
	case err != nil:
		return plan, app, fail(wire.Textf("cannot check where the app listens: %v", err))
	}
	if ex := exposed(ls); len(ex) > 0 {
		if !o.AllowExposed {
			return plan, app, fail(exposedError(ex))
		}
		progress(exposedWarning(ex))
		if plan.found != nil {
			progress(wire.Notef("%s", plan.found.note()))
		}
		return plan, app, nil
	}
	if plan.network == "tcp" {
		where := plan.address
		if lb := loopbackOn(ls, plan.addrPort.Port()); len(lb) > 0 {
			where = joinAddrs(lb)
		}
		if plan.found != nil {
			progress(wire.Notef("%s%v", plan.found.note(), foundTail(len(plan.secrets) > 0)))
			return plan, app, nil
		}
		if len(plan.secrets) > 0 {
			progress(wire.Notef("the app listens on %s, where other users of %v can connect to it; it demands its own per-session secret, which only the proxy sends", where, wire.ThisMachine))
		} else {
			progress(wire.Notef("the app listens on %s, where other users of %v can reach it without the token; apps that can listen on {socket} are private", where, wire.ThisMachine))
		}
	}
	return plan, app, nil
}

// portTaken is the *portTakenError behind a failed wait: the probe met another user's
// listener, or the app exited (unable to bind) while another user holds its port.
func portTaken(err error, plan *appPlan) *portTakenError {
	var t *portTakenError
	switch {
	case errors.As(err, &t):
		return t
	case errors.Is(err, errAppExited) && plan.network == "tcp":
		return foreignHolder(plan.addrPort)
	}
	return nil
}

// readyFailure reports an app that did not become ready, with its last output.
func readyFailure(err error, app *appProc, id string, rep reporter) error {
	if errors.Is(err, errAppExited) {
		<-app.done
		f := appFailure(describeExit(app.err), " before it was ready", app.tail.Lines(20), id, false)
		rep.failed(f)
		return f
	}
	if errors.Is(err, context.Canceled) {
		return errors.New("interrupted while waiting for the app")
	}
	f := wire.Fail(wire.FailNotReady, wire.Plain(err.Error()), wire.Plain("check the command and try again"))
	f.AppOutput = app.tail.Lines(20)
	rep.failed(f)
	return f
}
