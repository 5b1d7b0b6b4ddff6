package tunnel

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tether-dev/tether/internal/shquote"
	"golang.org/x/crypto/ssh"
)

// Run runs command (a remote shell string) with the given stdio. A command that exits
// with a status returns (status, nil); err is for commands that could not run, were
// killed by a signal, or lost their connection. Cancelling ctx kills the command
// (signal KILL where the server allows it) and closes the session.
func (c *Client) Run(ctx context.Context, command string, stdin io.Reader, stdout, stderr io.Writer) (exitStatus int, err error) {
	return c.run(ctx, command, stdin, stdout, stderr, true)
}

// run is Run; kill says whether cancelling sends SIGKILL before closing the session
// (Upload does not, so that its shell's trap can remove the temporary file).
func (c *Client) run(ctx context.Context, command string, stdin io.Reader, stdout, stderr io.Writer, kill bool) (int, error) {
	cc, err := c.conn(ctx)
	if err != nil {
		return -1, err
	}
	s, err := cc.client.NewSession()
	if err != nil {
		return -1, fmt.Errorf("tunnel: opening a session on %s: %w", c.cfg.Alias, err)
	}
	defer s.Close()
	s.Stdin, s.Stdout, s.Stderr = stdin, stdout, stderr
	if err := s.Start(command); err != nil {
		return -1, fmt.Errorf("tunnel: starting remote command on %s: %w", c.cfg.Alias, err)
	}
	stop := context.AfterFunc(ctx, func() {
		if kill {
			s.Signal(ssh.SIGKILL)
		}
		s.Close()
	})
	err = s.Wait()
	if !stop() {
		return -1, fmt.Errorf("tunnel: remote command on %s: %w", c.cfg.Alias, context.Cause(ctx))
	}
	var ee *ssh.ExitError
	var missing *ssh.ExitMissingError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee) && ee.Signal() == "":
		return ee.ExitStatus(), nil
	case errors.As(err, &ee):
		return -1, fmt.Errorf("tunnel: remote command on %s killed by signal %s", c.cfg.Alias, ee.Signal())
	case errors.As(err, &missing), cc.isDead():
		return -1, fmt.Errorf("tunnel: connection to %s lost while the remote command ran: %w", c.cfg.Alias, err)
	}
	return -1, fmt.Errorf("tunnel: remote command on %s: %w", c.cfg.Alias, err)
}

// ErrOutputLimit is wrapped by Output's error when the command wrote more than limit.
var ErrOutputLimit = errors.New("output exceeds the limit")

// Output runs argv (each argument quoted with Quote) and returns its stdout and stderr,
// each capped at limit bytes: more is an error wrapping ErrOutputLimit, and the command
// is stopped rather than waited for.
func (c *Client) Output(ctx context.Context, argv []string, limit int) (stdout, stderr []byte, exitStatus int, err error) {
	if len(argv) == 0 {
		return nil, nil, -1, errors.New("tunnel: Output needs a command")
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	out := &capWriter{limit: limit, over: func() { cancel(fmt.Errorf("%s: stdout %w of %d bytes", argv[0], ErrOutputLimit, limit)) }}
	errw := &capWriter{limit: limit, over: func() { cancel(fmt.Errorf("%s: stderr %w of %d bytes", argv[0], ErrOutputLimit, limit)) }}
	status, err := c.Run(ctx, shquote.Join(argv), nil, out, errw)
	return out.bytes(), errw.bytes(), status, err
}

// capWriter keeps up to limit bytes and calls over once when more arrive.
type capWriter struct {
	mu    sync.Mutex
	limit int
	b     []byte
	once  sync.Once
	over  func()
}

func (w *capWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	room := w.limit - len(w.b)
	if len(p) <= room {
		w.b = append(w.b, p...)
		w.mu.Unlock()
		return len(p), nil
	}
	if room > 0 {
		w.b = append(w.b, p[:room]...)
	}
	w.mu.Unlock()
	w.once.Do(w.over)
	return len(p), nil // keep draining; the session is being stopped
}

func (w *capWriter) bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b
}

// UploadError: the remote side rejected an upload (exit status and what it said).
type UploadError struct {
	Path   string
	Status int
	Stderr string
}

func (e *UploadError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" {
		msg = fmt.Sprintf("exit status %d", e.Status)
	}
	return fmt.Sprintf("tunnel: upload to %s failed: %s", e.Path, msg)
}

// Upload streams size bytes of r to remotePath through an exec channel: the parent
// directories are created 0700 (the target's directory must be the user's and writable by
// no one else), the content goes to a temporary name beside the target,
// is checked by SHA-256 on the remote (sha256sum or shasum -a 256), made 0700 and
// renamed over the target atomically. No locks (NFS homes). On any failure the temporary
// file is removed. A remotePath starting with "~/" is relative to the remote home.
// progress, when set, is called with the bytes sent so far.
func (c *Client) Upload(ctx context.Context, r io.Reader, size int64, remotePath string, progress func(written int64)) error {
	return upload(ctx, func(ctx context.Context, command string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
		return c.run(ctx, command, stdin, stdout, stderr, false)
	}, r, size, remotePath, progress)
}

// runFunc runs a remote shell command with the given stdio, as Client.Run.
type runFunc func(ctx context.Context, command string, stdin io.Reader, stdout, stderr io.Writer) (int, error)

// upload is Upload over any way to run a remote command (tether's own SSH client, or
// OpenSSH's through its master): the same script, the same checks.
func upload(ctx context.Context, run runFunc, r io.Reader, size int64, remotePath string, progress func(written int64)) error {
	if remotePath == "" || strings.HasSuffix(remotePath, "/") {
		return fmt.Errorf("tunnel: upload: bad remote path %q", remotePath)
	}
	// The hash goes on the command line, so it is computed first: by a pass over a
	// seekable reader, or while spooling to a local temporary file.
	sum, body, cleanup, err := hashFirst(r, size)
	if err != nil {
		return err
	}
	defer cleanup()
	return send(ctx, run, body, size, sum, false, remotePath, progress)
}

// ErrNoGzip is wrapped by UploadGzip's error when the remote has no gzip: nothing was
// created there, and Upload of the decompressed content may be tried instead.
var ErrNoGzip = errors.New("gzip is not installed on the remote")

// UploadGzip is Upload of a file sent compressed: gz is size bytes of a gzip stream,
// which the remote decompresses (gzip -dc) into the temporary file; sum is the SHA-256
// (hex) of the decompressed content, which the remote checks before the file is made
// executable and renamed into place, as Upload does. progress counts compressed bytes.
// A remote without gzip gets nothing and the error wraps ErrNoGzip.
func (c *Client) UploadGzip(ctx context.Context, gz io.Reader, size int64, sum, remotePath string, progress func(written int64)) error {
	return uploadGzip(ctx, func(ctx context.Context, command string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
		return c.run(ctx, command, stdin, stdout, stderr, false)
	}, gz, size, sum, remotePath, progress)
}

// uploadGzip is UploadGzip over any way to run a remote command.
func uploadGzip(ctx context.Context, run runFunc, gz io.Reader, size int64, sum, remotePath string, progress func(written int64)) error {
	if remotePath == "" || strings.HasSuffix(remotePath, "/") {
		return fmt.Errorf("tunnel: upload: bad remote path %q", remotePath)
	}
	if b, err := hex.DecodeString(sum); err != nil || len(b) != sha256.Size || strings.ToLower(sum) != sum {
		return fmt.Errorf("tunnel: upload: %q is not a SHA-256 in lowercase hex", sum)
	}
	return send(ctx, run, gz, size, sum, true, remotePath, progress)
}

// send runs the upload script: size bytes of body go to a temporary file beside
// remotePath (through gzip -dc when gunzip is set), whose SHA-256 must be sum.
func send(ctx context.Context, run runFunc, body io.Reader, size int64, sum string, gunzip bool, remotePath string, progress func(written int64)) error {
	// The paths go as arguments, not inside the script: the login shell that sshd
	// hands the line to may be csh/tcsh (! and a newline are its own even inside single
	// quotes) or fish (\\ and \' are), and shquote.ScriptCommand carries any word.
	// $1 is remotePath, $2 its directory ("~" and "~/…" are the remote home's), $3
	// the temporary file's name in it.
	var nonce [6]byte
	rand.Read(nonce[:])
	args := []string{remotePath, path.Dir(remotePath), "." + path.Base(remotePath) + ".tether-upload-" + hex.EncodeToString(nonce[:])}
	receive, needGzip := `cat > "$tmp" || exit 1`, ":"
	if gunzip {
		// Checked before anything is created, so that the caller may send it plain.
		needGzip = `command -v gzip >/dev/null 2>&1 || { echo "gzip is not installed" >&2; exit 7; }`
		receive = `gzip -dc > "$tmp" || exit 1`
	}
	// One line: csh and tcsh take no newline inside a single-quoted word.
	script := strings.Join([]string{
		`t="$1"; d="$2"; case "$t" in "~/"*) t="$HOME/${t#??}";; esac; case "$d" in "~") d="$HOME";; "~/"*) d="$HOME/${d#??}";; esac; tmp="$d/$3"`,
		"umask 077",
		needGzip,
		`if [ -d "$t" ]; then echo "$1 is a directory" >&2; exit 5; fi`,
		`mkdir -p -- "$d" || exit 1`,
		// The directory must be ours and writable by no one else: another user who can
		// write it could swap the temporary file for a symlink before the chmod (which
		// follows it) or the file itself before the rename.
		`if [ -h "$d" ] || [ ! -O "$d" ]; then echo "$d belongs to another user" >&2; exit 6; fi`,
		`case $(ls -ldn -- "$d") in ?????w*|????????w*) echo "$d is writable by other users" >&2; exit 6;; esac`,
		`trap 'rm -f -- "$tmp"' EXIT HUP INT TERM PIPE`,
		receive,
		`if command -v sha256sum >/dev/null 2>&1; then sum=$(sha256sum < "$tmp")` +
			`; elif command -v shasum >/dev/null 2>&1; then sum=$(shasum -a 256 < "$tmp")` +
			`; else echo "neither sha256sum nor shasum is installed" >&2; exit 4; fi`,
		`sum=${sum%%[ 	]*}`,
		`if [ "$sum" != ` + sum + ` ]; then echo "checksum mismatch: the file arrived damaged or incomplete" >&2; exit 3; fi`,
		`chmod 700 "$tmp" || exit 1`,
		`mv -f -- "$tmp" "$t" || exit 1`,
		`trap - EXIT`,
	}, "; ")
	var written atomic.Int64
	pr := &progressReader{r: io.LimitReader(body, size), n: &written, f: progress}
	var stderr capWriter
	stderr.limit, stderr.over = 4096, func() {}
	status, err := run(ctx, shquote.ScriptCommand(script, args), pr, io.Discard, &stderr)
	if err != nil {
		return fmt.Errorf("tunnel: upload to %s: %w", remotePath, err)
	}
	if status == 7 && gunzip {
		return fmt.Errorf("tunnel: upload to %s: %w", remotePath, ErrNoGzip)
	}
	if status != 0 {
		return &UploadError{Path: remotePath, Status: status, Stderr: string(stderr.bytes())}
	}
	if n := written.Load(); n != size {
		return fmt.Errorf("tunnel: upload to %s: sent %d of %d bytes", remotePath, n, size)
	}
	return nil
}

func hashFirst(r io.Reader, size int64) (sum string, body io.Reader, cleanup func(), err error) {
	h := sha256.New()
	if rs, ok := r.(io.ReadSeeker); ok {
		start, err := rs.Seek(0, io.SeekCurrent)
		if err == nil {
			if n, err := io.Copy(h, io.LimitReader(rs, size)); err != nil || n != size {
				return "", nil, nil, fmt.Errorf("tunnel: upload: reading the source: %d of %d bytes: %v", n, size, err)
			}
			if _, err := rs.Seek(start, io.SeekStart); err != nil {
				return "", nil, nil, fmt.Errorf("tunnel: upload: %w", err)
			}
			return hex.EncodeToString(h.Sum(nil)), rs, func() {}, nil
		}
	}
	f, err := os.CreateTemp("", "tether-upload-")
	if err != nil {
		return "", nil, nil, fmt.Errorf("tunnel: upload: %w", err)
	}
	cleanup = func() { f.Close(); os.Remove(f.Name()) }
	if n, err := io.Copy(io.MultiWriter(h, f), io.LimitReader(r, size)); err != nil || n != size {
		cleanup()
		return "", nil, nil, fmt.Errorf("tunnel: upload: reading the source: %d of %d bytes: %v", n, size, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		cleanup()
		return "", nil, nil, fmt.Errorf("tunnel: upload: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), f, cleanup, nil
}

type progressReader struct {
	r io.Reader
	n *atomic.Int64
	f func(int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		total := p.n.Add(int64(n))
		if p.f != nil {
			p.f(total)
		}
	}
	return n, err
}
