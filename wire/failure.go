package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/tether-dev/tether/internal/termsafe"
)

// FailKind says what kind of failure a Failure is: what the launcher decides by (which
// advice to give, which exit status), never by the words.
type FailKind string

const (
	// FailUsage: the command line was wrong (exit status 2).
	FailUsage FailKind = "usage"
	// FailNoSession: no session of the user there has the id or name asked for.
	FailNoSession FailKind = "no-session"
	// FailNameTaken: a session that is not over has the name asked for (Session).
	FailNameTaken FailKind = "name-taken"
	// FailAppExited: the app ended; Exit says how, AppOutput is its last output.
	// Before the session was ready, the command is what failed.
	FailAppExited FailKind = "app-exited"
	// FailSetupFailed: the setup script, or the login shell it runs in, failed before
	// the app started; AppOutput is their output (OutputOf is OutputSetup).
	FailSetupFailed FailKind = "setup-failed"
	// FailAppMissing: the preset's app is not installed there.
	FailAppMissing FailKind = "app-missing"
	// FailNotReady: the app did not get ready within the ready timeout.
	FailNotReady FailKind = "not-ready"
	// FailServerExited: the background server ended before it reported.
	FailServerExited FailKind = "server-exited"
	// FailBatchRefused: the scheduler refused the job; SchedulerSaid holds its words.
	FailBatchRefused FailKind = "batch-refused"
	// FailNoScheduler: the scheduler's submit command is not on the PATH there.
	FailNoScheduler FailKind = "no-scheduler"
	// FailIdle: the session stopped itself after its idle timeout.
	FailIdle FailKind = "idle"
	// FailPortFree: nothing listens on the port `tether forward` asked for.
	FailPortFree FailKind = "port-free"
	// FailPortTaken: another user's program holds the port asked for.
	FailPortTaken FailKind = "port-taken"
)

// OutputSetup is Failure.OutputOf for the output of the setup and the login shell.
const OutputSetup = "setup"

// Failure is what a command run for a launcher prints, as one JSON line, when it
// fails (serve --json on stdout; see DESIGN.md's "Failures are structured"): error,
// hint and app_output for anyone, and the same as data for the launcher, which words
// its own line from Kind, Said and Advice (their references to the machine and to
// tether commands its own way) and never reads Msg or Hint. A *Failure is an error on
// the remote's side, so the code that fails says it once.
type Failure struct {
	// Msg and Hint are Said and Advice in the remote's words.
	Msg  string `json:"error"`
	Hint string `json:"hint"`
	// AppOutput is the last lines of the app's output (or the setup's: OutputOf), at
	// most MaxAppOutput; never null.
	AppOutput []string `json:"app_output"`
	Kind      FailKind `json:"kind,omitempty"`
	// Said is what went wrong; Advice the next step (may be empty).
	Said   Text `json:"said,omitempty"`
	Advice Text `json:"advice,omitempty"`
	// OutputOf says whose output AppOutput is: OutputSetup, or empty for the app's.
	OutputOf string `json:"output_of,omitempty"`
	// Session is the id of the session the failure is about, when there is one (the
	// session left for `tether logs` by an app that exited; the one holding a name).
	Session string `json:"session,omitempty"`
	// Exit says how the app ended ("exited with status 1", "was killed by signal
	// killed"), for FailAppExited.
	Exit string `json:"exit,omitempty"`
	// SchedulerSaid is the scheduler's own words, for FailBatchRefused.
	SchedulerSaid string `json:"scheduler_said,omitempty"`
}

// Fail is a Failure of this kind, with what went wrong and the next step.
func Fail(kind FailKind, said, advice Text) *Failure {
	return &Failure{Kind: kind, Said: said, Advice: advice}
}

// Error is the failure in the remote's words: what went wrong; the next step.
func (f *Failure) Error() string {
	msg, hint := f.Said.String(), f.Advice.String()
	if msg == "" {
		msg = f.Msg
	}
	if hint == "" {
		hint = f.Hint
	}
	if hint == "" {
		return msg
	}
	return msg + "; " + hint
}

// ExitCode is 2 for a usage error, else 1.
func (f *Failure) ExitCode() int {
	if f.Kind == FailUsage {
		return 2
	}
	return 1
}

// FailureOf is err as a Failure: err itself when it is one (or wraps one), an error
// that says its Failure (a method Failure() *Failure) as it says, else a Failure whose
// Said is err's text, a usage error (ExitCode 2) as FailUsage.
func FailureOf(err error) *Failure {
	if err == nil {
		return nil
	}
	var f *Failure
	if errors.As(err, &f) {
		return f
	}
	var says interface{ Failure() *Failure }
	if errors.As(err, &says) {
		return says.Failure()
	}
	f = &Failure{Said: Plain(err.Error())}
	var coded interface{ ExitCode() int }
	if errors.As(err, &coded) && coded.ExitCode() == 2 {
		f.Kind = FailUsage
	}
	return f
}

// MarshalJSON fills in Msg and Hint from Said and Advice, and an empty AppOutput.
func (f *Failure) MarshalJSON() ([]byte, error) {
	type plain Failure
	g := plain(*f)
	if s := f.Said.String(); s != "" {
		g.Msg = s
	}
	if s := f.Advice.String(); s != "" {
		g.Hint = s
	}
	if g.AppOutput == nil {
		g.AppOutput = []string{}
	}
	return json.Marshal(g)
}

// Line is the failure as one JSON line, newline included.
func (f *Failure) Line() []byte {
	b, err := json.Marshal(f)
	if err != nil {
		b, _ = json.Marshal(&Failure{Said: Plain(err.Error())})
	}
	return append(b, '\n')
}

// DecodeFailure parses one failure line from a remote that may be hostile and checks
// it; a line without "error" is not a failure (ok false).
func DecodeFailure(line []byte) (f *Failure, ok bool, err error) {
	if len(line) > MaxRecordLength {
		return nil, false, errors.New("wire: failure line too long")
	}
	var probe map[string]json.RawMessage
	if json.Unmarshal(bytes.TrimSpace(line), &probe) != nil {
		return nil, false, nil
	}
	if _, has := probe["error"]; !has {
		return nil, false, nil
	}
	f = &Failure{}
	if err := json.Unmarshal(bytes.TrimSpace(line), f); err != nil {
		return nil, true, fmt.Errorf("wire: decoding a failure: %w", err)
	}
	if err := f.Validate(); err != nil {
		return nil, true, err
	}
	if len(f.Said) == 0 {
		f.Said = Plain(termsafe.OneLine(f.Msg))
	}
	if len(f.Advice) == 0 && f.Hint != "" {
		f.Advice = Plain(termsafe.OneLine(f.Hint))
	}
	return f, true, nil
}

// Validate checks a failure read from a remote that may be hostile: bounded texts,
// app output of MaxAppOutput short lines without control characters, a known shape.
func (f *Failure) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("wire: invalid failure: %s %s", field, fmt.Sprintf(format, args...))
	}
	if len(f.Msg) > 8192 || len(f.Hint) > 8192 {
		return bad("error", "or hint is over 8 KiB")
	}
	if len(f.AppOutput) > MaxAppOutput {
		return bad("app_output", "has %d lines, more than %d", len(f.AppOutput), MaxAppOutput)
	}
	for _, l := range f.AppOutput {
		if len(l) > 2048 || termsafe.HasControl(l) {
			return bad("app_output", "has a line over 2 KiB or with control characters")
		}
	}
	if err := f.Said.validate(); err != nil {
		return bad("said", "%v", err)
	}
	if err := f.Advice.validate(); err != nil {
		return bad("advice", "%v", err)
	}
	if len(f.Kind) > 32 || termsafe.HasControl(string(f.Kind)) {
		return bad("kind", "%q is not a kind", termsafe.Clip(string(f.Kind), 32))
	}
	if f.Session != "" && !ValidID(f.Session) {
		return bad("session", "%q is not a session id", termsafe.Clip(f.Session, 64))
	}
	if f.OutputOf != "" && f.OutputOf != OutputSetup {
		return bad("output_of", "%q is unknown", termsafe.Clip(f.OutputOf, 32))
	}
	for _, s := range []string{f.Exit, f.SchedulerSaid} {
		if len(s) > 4096 || termsafe.HasControl(s) {
			return bad("exit", "or scheduler_said is over 4 KiB or holds control characters")
		}
	}
	return nil
}

// Usagef is a usage error (FailUsage, exit status 2) in plain words.
func Usagef(format string, args ...any) *Failure {
	return Fail(FailUsage, Textf(format, args...), nil)
}
