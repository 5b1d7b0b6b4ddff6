package tokenserver

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// The gate logs what it refused and why, never what was presented: no query, no
// Authorization, no Cookie, no Referer, no subprotocol list. As a second line of
// defence every record passes through a redacting handler that replaces the token (raw
// and URL-encoded) wherever it appears, in the message and in every attribute, so even
// a path or an error text that happens to hold it cannot leak it.

const redacted = "[redacted]"

// redactor replaces known secrets in strings.
type redactor struct {
	secrets []string
}

func newRedactor(secrets ...string) *redactor {
	r := &redactor{}
	r.add(secrets...)
	return r
}

// add registers secrets and their URL-encoded forms. Short strings are skipped: they
// would mangle ordinary text and are not secrets worth the name.
func (r *redactor) add(secrets ...string) {
	for _, s := range secrets {
		for _, v := range []string{s, url.QueryEscape(s), url.PathEscape(s)} {
			if len(v) >= 8 && !slices.Contains(r.secrets, v) {
				r.secrets = append(r.secrets, v)
			}
		}
	}
}

func (r *redactor) redact(s string) string {
	if r == nil {
		return s
	}
	for _, v := range r.secrets {
		if strings.Contains(s, v) {
			s = strings.ReplaceAll(s, v, redacted)
		}
	}
	return s
}

// redactingHandler wraps a slog.Handler.
type redactingHandler struct {
	inner slog.Handler
	r     *redactor
}

func newRedactingLogger(l *slog.Logger, r *redactor) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(&redactingHandler{inner: l.Handler(), r: r})
}

func (h *redactingHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

func (h *redactingHandler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, h.r.redact(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.redactAttr(a))
		return true
	})
	return h.inner.Handle(ctx, out)
}

func (h *redactingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		clean[i] = h.redactAttr(a)
	}
	return &redactingHandler{inner: h.inner.WithAttrs(clean), r: h.r}
}

func (h *redactingHandler) WithGroup(name string) slog.Handler {
	return &redactingHandler{inner: h.inner.WithGroup(name), r: h.r}
}

func (h *redactingHandler) redactAttr(a slog.Attr) slog.Attr {
	a.Key = h.r.redact(a.Key)
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		a.Value = slog.StringValue(h.r.redact(v.String()))
	case slog.KindGroup:
		g := v.Group()
		clean := make([]any, len(g))
		for i, ga := range g {
			clean[i] = h.redactAttr(ga)
		}
		a.Value = slog.GroupValue(argsToAttrs(clean)...)
	case slog.KindAny:
		// Errors, Stringers and everything else become redacted text: we cannot know
		// what a value's own formatting would print.
		a.Value = slog.StringValue(h.r.redact(fmt.Sprint(v.Any())))
	default:
		a.Value = v
	}
	return a
}

func argsToAttrs(args []any) []slog.Attr {
	out := make([]slog.Attr, 0, len(args))
	for _, x := range args {
		out = append(out, x.(slog.Attr))
	}
	return out
}

// errorLogWriter turns net/http's ErrorLog lines (TLS handshake errors, accept errors,
// reverse-proxy copy errors) into redacted slog records.
//
// A failed TLS handshake is a line per connection that anyone who can reach a TLS
// listener can cause at will (a port scan, junk bytes, plain HTTP to the TLS port), and
// on a cluster every user of the network can: so the first one after a quiet spell is
// logged as it is, and the rest are counted and summed up in one line per
// handshakeWindow ("37 more TLS handshakes failed in the last 1m0s; the last: …").
type errorLogWriter struct {
	logger *slog.Logger
	msg    string

	mu        sync.Mutex
	start     time.Time   // when the current window began
	logged    bool        // a handshake failure was logged in full in this window
	dropped   int         // failures counted since the last summary
	last      string      // the last one counted
	summaryAt *time.Timer // pending summary; nil when the writer is quiet
}

// handshakeWindow is how often failed TLS handshakes are summed up.
const handshakeWindow = time.Minute

func (w *errorLogWriter) Write(p []byte) (int, error) {
	line := truncate(strings.TrimRight(string(p), "\n"), 512)
	if !strings.HasPrefix(line, "http: TLS handshake error from ") {
		w.logger.Warn(w.msg, "detail", line)
		return len(p), nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	if w.summaryAt == nil && now.Sub(w.start) >= handshakeWindow {
		w.start, w.logged = now, false // quiet for a whole window: start afresh
	}
	if !w.logged {
		w.logged = true
		w.logger.Warn(w.msg, "detail", line)
		return len(p), nil
	}
	w.dropped++
	w.last = line
	if w.summaryAt == nil {
		w.summaryAt = time.AfterFunc(w.start.Add(handshakeWindow).Sub(now), w.summarize)
	}
	return len(p), nil
}

// summarize logs how many handshake failures were counted in the window that just
// ended, and keeps counting for one more window; a window without any ends the spell.
func (w *errorLogWriter) summarize() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.dropped == 0 {
		w.summaryAt = nil
		return
	}
	noun := "handshakes"
	if w.dropped == 1 {
		noun = "handshake"
	}
	w.logger.Warn(w.msg, "detail", fmt.Sprintf("%d more TLS %s failed in the last %s; the last: %s",
		w.dropped, noun, time.Since(w.start).Round(time.Second), w.last))
	w.dropped, w.last = 0, ""
	w.start = time.Now()
	w.summaryAt = time.AfterFunc(handshakeWindow, w.summarize)
}

func newErrorLog(logger *slog.Logger, msg string) *log.Logger {
	return log.New(&errorLogWriter{logger: logger, msg: msg}, "", 0)
}

// truncate caps a string we log (a path, an error) at n bytes.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
