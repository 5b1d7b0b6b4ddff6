package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tether-dev/tether/batch"
	"github.com/tether-dev/tether/internal/termsafe"
	"github.com/tether-dev/tether/tokenserver"
)

// Record is the ready record: what `tether serve --json` prints as one line on stdout
// once the session is ready, what `tether ls --json` lists (with State), and what the
// launcher reads from the remote over SSH. Its JSON keys are the contract of DESIGN.md.
type Record struct {
	// ID is the session's short random id, unique on this machine for this user.
	ID string `json:"id"`
	// Name is the human name given with --name, usable wherever the id is; may be empty.
	Name string `json:"name"`
	// PID is the guarded server's process id (not the app's).
	PID int `json:"pid"`
	// Host is the hostname of the machine the session runs on.
	Host string `json:"host"`
	// Socket is the absolute path of the guarded server's Unix socket.
	Socket string `json:"socket"`
	// URL is the TCP URL when the server also listens on TCP (--listen), else empty.
	URL string `json:"url"`
	// Token is the session's secret. It is only ever in this record (0600) and on the
	// ready line.
	Token string `json:"token"`
	// BaseURL is the path prefix the server serves under, starting and ending with "/".
	BaseURL string `json:"base_url"`
	// TLS is set when the server speaks HTTPS; CertSHA256 then pins its certificate
	// (hex SHA-256 of the DER).
	TLS        bool   `json:"tls"`
	CertSHA256 string `json:"cert_sha256"`
	// Command is the app's command line as given (placeholders unexpanded); empty for
	// the built-in app.
	Command []string  `json:"command"`
	Started time.Time `json:"started"`
	// App is the preset the session runs (serve --app), if any. An addition to
	// DESIGN.md's fields; for the static preset Command is ["static", DIR].
	App string `json:"app,omitempty"`
	// Version is the version of the tether binary serving the session.
	Version string `json:"version"`
	// Stripes is the most stripes the server's Unix socket joins into one connection
	// (package internal/stripe: a launcher may carry one browser connection over that
	// many SSH channels, past one channel's window per round trip); 0 (older servers):
	// one channel per connection. An addition to DESIGN.md's fields.
	Stripes int `json:"stripes,omitempty"`
	// Reused is set only on the answer of `serve --reuse`: the session was running
	// already, the newest of this many of the same app (see reuse.go).
	Reused int `json:"reused,omitempty"`
	// State is set by `ls` only: starting (the server waits for the app), running,
	// app-exited or dead; for Slurm sessions also pending (queued, or started but not
	// ready yet) and ended (the job is over).
	State string `json:"state,omitempty"`
	// Exit and AppOutput are set by `ls` only, for a session whose app has ended
	// (app-exited): how it ended ("exited with status 0", "was killed by signal
	// killed") and the last lines of its output (at most MaxAppOutput).
	Exit      string   `json:"exit,omitempty"`
	AppOutput []string `json:"app_output,omitempty"`
	// ExitStatus is set with Exit when the app exited on its own (not killed by a
	// signal): its exit status, for a launcher to tell a clean end (0) by.
	ExitStatus *int `json:"exit_status,omitempty"`

	// Batch sessions only (launch --slurm, --sge, --pbs, --lsf, --batch): the server
	// runs in a batch job on a compute node and listens there on Addr, TLS always on,
	// token required.
	//
	// Scheduler is the batch system's name (batch.Lookup); empty is Slurm.
	Scheduler string `json:"scheduler,omitempty"`
	// JobID is the job's id (the job is named tether-<id>).
	JobID string `json:"job_id,omitempty"`
	// Node is the compute node the job runs on.
	Node string `json:"node,omitempty"`
	// BatchOptions are the scheduler's options the session was submitted with (one
	// word each), for the hint to start another like it.
	BatchOptions []string `json:"batch_options,omitempty"`
	// ViaNodeSSH says the session was launched with --via-node-ssh: the launcher
	// reaches it by SSH to its node, and attach does the same without being told.
	ViaNodeSSH bool `json:"via_node_ssh,omitempty"`
	// Addr is the node's address and the kernel-chosen port the server listens on
	// (IP:PORT); URL is https://Addr{base_url}.
	Addr string `json:"addr,omitempty"`
	// Job is set by `ls` only, for batch sessions: the job as the scheduler shows it.
	Job *JobStatus `json:"job,omitempty"`
}

// JobStatus is a batch job as the scheduler shows it, in Slurm's words (package
// batch maps the others onto it).
type JobStatus = batch.Job

// Session states, as ls reports them (Record.State).
const (
	// StateStarting: the server waits for the app.
	StateStarting = "starting"
	// StateRunning: the server is ready and answers on its socket.
	StateRunning = "running"
	// StateAppExited: the app ended; the server is gone, the record and logs stay.
	StateAppExited = "app-exited"
	// StateDead: the server is gone without a word (killed, or the machine restarted).
	StateDead = "dead"
	// StatePending: a batch session's job is queued (or started, its server not ready).
	StatePending = "pending"
	// StateEnded: a batch session's job is over.
	StateEnded = "ended"
)

const (
	// MaxNameLen is the longest session name.
	MaxNameLen = 64
	// MaxAppOutput is how many of the app's last lines a record or a failure carries.
	MaxAppOutput = 20
	// MaxRecordLength bounds one line of JSON between the two sides.
	MaxRecordLength = 1 << 20
	// MaxSocketPath keeps socket paths under sun_path (108 bytes on Linux, 104 on the
	// BSDs and macOS, both counting the NUL) with a margin.
	MaxSocketPath = 100
)

var hexPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Validate checks a record read from a remote that may be hostile: every field has a
// sane charset and length, the socket is an absolute clean path short enough for a
// Unix socket, the token has the token format, the URL is empty or a loopback http(s)
// URL, and TLS comes with a certificate fingerprint.
func (r *Record) Validate() error {
	if r == nil {
		return errors.New("wire: no record")
	}
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("wire: invalid record: %s %s", field, fmt.Sprintf(format, args...))
	}
	if !ValidID(r.ID) {
		return bad("id", "%q is not 8 characters of [a-z2-7]", termsafe.Clip(r.ID, 64))
	}
	if r.Name != "" && CheckName(r.Name) != nil {
		return bad("name", "%q is not a valid session name", termsafe.Clip(r.Name, 64))
	}
	if r.Reused < 0 || r.Reused > 1<<20 {
		return bad("reused", "%d is out of range", r.Reused)
	}
	if r.PID <= 0 || r.PID > 1<<22 {
		return bad("pid", "%d is out of range", r.PID)
	}
	if !ValidHost(r.Host) {
		return bad("host", "%q is not a hostname", termsafe.Clip(r.Host, 64))
	}
	if !path.IsAbs(r.Socket) || path.Clean(r.Socket) != r.Socket || len(r.Socket) > MaxSocketPath || termsafe.HasControl(r.Socket) {
		return bad("socket", "%q is not a clean absolute path of at most %d bytes", termsafe.Clip(r.Socket, 64), MaxSocketPath)
	}
	if err := tokenserver.ValidateToken(r.Token); err != nil {
		return bad("token", "is malformed")
	}
	if b, err := tokenserver.NormalizeBaseURL(r.BaseURL); err != nil || b != r.BaseURL {
		return bad("base_url", "%q is not a path starting and ending with /", termsafe.Clip(r.BaseURL, 64))
	}
	if r.JobID == "" {
		if r.Node != "" || r.Addr != "" {
			return bad("node", "and addr are set without job_id")
		}
		if r.URL != "" {
			if err := validLoopbackURL(r.URL, r.TLS); err != nil {
				return bad("url", "%q: %v", termsafe.Clip(r.URL, 64), err)
			}
		}
	} else if err := r.validateSlurm(); err != nil {
		return err
	}
	if r.TLS && !hexPattern.MatchString(r.CertSHA256) {
		return bad("cert_sha256", "%q is not 64 lowercase hex digits", termsafe.Clip(r.CertSHA256, 64))
	}
	if !r.TLS && r.CertSHA256 != "" {
		return bad("cert_sha256", "is set without tls")
	}
	if len(r.Command) > 4096 {
		return bad("command", "has %d arguments", len(r.Command))
	}
	for _, a := range r.Command {
		if strings.ContainsRune(a, 0) || len(a) > 1<<16 {
			return bad("command", "has an argument with a NUL byte or over 64 KiB")
		}
	}
	if r.Started.IsZero() {
		return bad("started", "is missing")
	}
	if r.App != "" && !ValidAppName(r.App) {
		return bad("app", "%q is not a preset name", termsafe.Clip(r.App, 64))
	}
	if len(r.Version) > 128 || termsafe.HasControl(r.Version) {
		return bad("version", "%q is not a version", termsafe.Clip(r.Version, 64))
	}
	return r.validateListed()
}

// validateSlurm checks a Slurm session's fields: the server on a compute node is
// reached at Addr, which need not be loopback, so TLS (pinned) is required and the URL
// must be https://Addr/…
func (r *Record) validateSlurm() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("wire: invalid record: %s %s", field, fmt.Sprintf(format, args...))
	}
	if !batch.JobIDPattern.MatchString(r.JobID) {
		return bad("job_id", "%q is not a batch job id", termsafe.Clip(r.JobID, 64))
	}
	if !ValidHost(r.Node) {
		return bad("node", "%q is not a node name", termsafe.Clip(r.Node, 64))
	}
	if r.Scheduler != "" && !batch.ValidName(r.Scheduler) {
		return bad("scheduler", "%q is not a scheduler name", termsafe.Clip(r.Scheduler, 64))
	}
	if err := validBatchOptions(r.BatchOptions); err != nil {
		return bad("batch_options", "%v", err)
	}
	if !r.TLS {
		return bad("tls", "is off for a batch session (its server is reachable from the cluster network)")
	}
	host, port, err := net.SplitHostPort(r.Addr)
	if err != nil || net.ParseIP(host) == nil || strings.Contains(host, "%") {
		return bad("addr", "%q is not IP:PORT", termsafe.Clip(r.Addr, 64))
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return bad("addr", "%q: port out of range", termsafe.Clip(r.Addr, 64))
	}
	u, err := url.Parse(r.URL)
	if err != nil || u.Scheme != "https" || u.Host != r.Addr || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" || u.Path != r.BaseURL {
		return bad("url", "%q is not https://%s%s", termsafe.Clip(r.URL, 64), termsafe.Clip(r.Addr, 64), termsafe.Clip(r.BaseURL, 64))
	}
	return nil
}

// validateListed checks what ls adds to a record: its state and, for Slurm sessions,
// the job's status.
func (r *Record) validateListed() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("wire: invalid record: %s %s", field, fmt.Sprintf(format, args...))
	}
	switch r.State {
	case "", StateStarting, StateRunning, StateAppExited, StateDead:
	case StatePending, StateEnded:
		if r.JobID == "" {
			return bad("state", "%q without job_id", r.State)
		}
	default:
		return bad("state", "%q is unknown", termsafe.Clip(r.State, 64))
	}
	if r.ExitStatus != nil && (*r.ExitStatus < 0 || *r.ExitStatus > 255) {
		return bad("exit_status", "%d is not an exit status", *r.ExitStatus)
	}
	if len(r.Exit) > 200 || termsafe.HasControl(r.Exit) {
		return bad("exit", "%q is not one short line", termsafe.Clip(r.Exit, 64))
	}
	if len(r.AppOutput) > MaxAppOutput {
		return bad("app_output", "has %d lines, more than %d", len(r.AppOutput), MaxAppOutput)
	}
	for _, l := range r.AppOutput {
		if len(l) > 2048 || termsafe.HasControl(l) {
			return bad("app_output", "line %q is too long or holds control characters", termsafe.Clip(l, 64))
		}
	}
	if r.Job != nil {
		if err := r.Job.Validate(); err != nil {
			return bad("job", "%v", err)
		}
		if r.Job.JobID != r.JobID {
			return bad("job", "is job %q, not the session's %q", termsafe.Clip(r.Job.JobID, 64), termsafe.Clip(r.JobID, 64))
		}
	}
	return nil
}

// ValidateQueued checks the record of a Slurm session that `ls` lists before its
// server is ready (pending) or after its job ended: the fields it has then (id, name,
// job id, state, job status, started, command, version). Validate checks ready ones.
func (r *Record) ValidateQueued() error {
	if r == nil {
		return errors.New("wire: no record")
	}
	if !ValidID(r.ID) {
		return fmt.Errorf("wire: invalid record: id %q is not 8 characters of [a-z2-7]", termsafe.Clip(r.ID, 64))
	}
	if r.Name != "" && CheckName(r.Name) != nil {
		return fmt.Errorf("wire: invalid record: name %q is not a valid session name", termsafe.Clip(r.Name, 64))
	}
	if !batch.JobIDPattern.MatchString(r.JobID) {
		return fmt.Errorf("wire: invalid record: job_id %q is not a batch job id", termsafe.Clip(r.JobID, 64))
	}
	if r.Node != "" && !ValidHost(r.Node) {
		return fmt.Errorf("wire: invalid record: node %q is not a node name", termsafe.Clip(r.Node, 64))
	}
	if r.Scheduler != "" && !batch.ValidName(r.Scheduler) {
		return fmt.Errorf("wire: invalid record: scheduler %q is not a scheduler name", termsafe.Clip(r.Scheduler, 64))
	}
	if err := validBatchOptions(r.BatchOptions); err != nil {
		return fmt.Errorf("wire: invalid record: batch_options %v", err)
	}
	if r.App != "" && !ValidAppName(r.App) {
		return fmt.Errorf("wire: invalid record: app %q is not a preset name", termsafe.Clip(r.App, 64))
	}
	if len(r.Version) > 128 || termsafe.HasControl(r.Version) || len(r.Command) > 4096 {
		return errors.New("wire: invalid record: version or command")
	}
	for _, a := range r.Command {
		if strings.ContainsRune(a, 0) || len(a) > 1<<16 {
			return errors.New("wire: invalid record: command has an argument with a NUL byte or over 64 KiB")
		}
	}
	switch r.State {
	case StatePending, StateEnded, StateDead:
	default:
		return fmt.Errorf("wire: invalid record: state %q for a queued batch session", termsafe.Clip(r.State, 64))
	}
	return r.validateListed()
}

// validBatchOptions checks the options a record says its job was submitted with.
func validBatchOptions(opts []string) error {
	if len(opts) > 256 {
		return fmt.Errorf("has %d words", len(opts))
	}
	for _, o := range opts {
		if len(o) > 4096 || termsafe.HasControl(o) {
			return fmt.Errorf("has a word over 4 KiB or with control characters")
		}
	}
	return nil
}

// DecodeRecord parses one ready-record line (as printed by `tether serve --json`) and
// validates it.
func DecodeRecord(line []byte) (Record, error) {
	var r Record
	if len(line) > MaxRecordLength {
		return r, errors.New("wire: record too long")
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	if err := dec.Decode(&r); err != nil {
		return Record{}, fmt.Errorf("wire: decoding record: %w", err)
	}
	if dec.More() {
		return Record{}, errors.New("wire: trailing data after the record")
	}
	if err := r.Validate(); err != nil {
		return Record{}, err
	}
	return r, nil
}

func validLoopbackURL(s string, tls bool) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("does not parse")
	}
	want := "http"
	if tls {
		want = "https"
	}
	if u.Scheme != want {
		return fmt.Errorf("scheme is not %s", want)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return errors.New("has user info, query or fragment")
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		return errors.New("has no port")
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return errors.New("port out of range")
	}
	if host != "localhost" {
		ip := net.ParseIP(host)
		if ip == nil || !ip.IsLoopback() {
			return errors.New("host is not loopback")
		}
	}
	return nil
}
