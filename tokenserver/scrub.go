package tokenserver

import (
	"bytes"
	"io"
	"mime"
	"net/http"
	"strings"
)

// scrubber keeps an app's secrets out of what the client gets back: the proxy injects
// them into requests, and an app may echo them (Jupyter Notebook 6 writes its token
// into every page, in a data attribute and in a link's ?token=; JupyterLab into its
// page config). A browser that saw the secret could reach the app around the gate,
// and a link carrying it would meet the gate as a wrong token of ours.
type scrubber struct {
	secrets [][]byte
	longest int
}

// maxPairName bounds the parameter name cut together with a secret (NAME=secret).
const maxPairName = 32

// minSecretLen: shorter values are not scrubbed (they would match ordinary text).
const minSecretLen = 8

func newScrubber(secrets []string) *scrubber {
	s := &scrubber{}
	for _, v := range secrets {
		if len(v) < minSecretLen {
			continue
		}
		s.secrets = append(s.secrets, []byte(v))
		s.longest = max(s.longest, len(v))
	}
	if len(s.secrets) == 0 {
		return nil
	}
	return s
}

// headers drops every response header line holding a secret and returns how many.
func (s *scrubber) headers(h http.Header) int {
	n := 0
	for k, vs := range h {
		kept := vs[:0:0]
		for _, v := range vs {
			if s.contains([]byte(v)) {
				n++
				continue
			}
			kept = append(kept, v)
		}
		if len(kept) == 0 {
			delete(h, k)
		} else if len(kept) != len(vs) {
			h[k] = kept
		}
	}
	return n
}

func (s *scrubber) contains(b []byte) bool {
	for _, sec := range s.secrets {
		if bytes.Contains(b, sec) {
			return true
		}
	}
	return false
}

// body wraps a text response's body in a scrubbing reader. Binary types, compressed
// bodies (which the proxy asks the app not to send) and partial content pass as they
// are; so do event streams and a switched protocol (a WebSocket's frames are the
// app's).
func (s *scrubber) body(resp *http.Response) {
	if resp.Body == nil || resp.Body == http.NoBody || resp.StatusCode == http.StatusSwitchingProtocols ||
		resp.StatusCode == http.StatusPartialContent || resp.Request != nil && resp.Request.Method == http.MethodHead {
		return
	}
	if ce := resp.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return
	}
	// An event stream must flow as it comes; holding back its tail would stall it.
	if !textual(resp.Header.Get("Content-Type")) || strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return
	}
	resp.Body = &scrubReader{s: s, r: resp.Body}
	resp.ContentLength = -1
	resp.Header.Del("Content-Length")
}

// textual reports whether a media type is text that may carry a secret: text/*,
// JSON, JavaScript, XML, and a body with no type at all.
func textual(ct string) bool {
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return true
	}
	switch {
	case strings.HasPrefix(mt, "text/"), strings.HasSuffix(mt, "+json"), strings.HasSuffix(mt, "+xml"),
		strings.HasSuffix(mt, "/json"), strings.HasSuffix(mt, "/javascript"), strings.HasSuffix(mt, "/ecmascript"),
		strings.HasSuffix(mt, "/xml"), mt == "application/x-www-form-urlencoded":
		return true
	}
	return false
}

// scrubReader cuts the secrets out of a stream. It holds back enough bytes that a
// secret split across reads, and the NAME= before it, are still seen whole.
type scrubReader struct {
	s     *scrubber
	r     io.ReadCloser
	buf   []byte // read, not yet scrubbed or handed out
	out   []byte // scrubbed, ready to hand out
	chunk []byte
	eof   bool
	err   error
}

func (z *scrubReader) Read(p []byte) (int, error) {
	for len(z.out) == 0 {
		if z.eof {
			return 0, z.err
		}
		if z.chunk == nil {
			z.chunk = make([]byte, 32<<10)
		}
		n, err := z.r.Read(z.chunk)
		z.buf = append(z.buf, z.chunk[:n]...)
		if err != nil {
			z.eof, z.err = true, err
		}
		z.process()
	}
	n := copy(p, z.out)
	z.out = z.out[n:]
	return n, nil
}

// process moves what is safe from buf to out, with every secret cut.
func (z *scrubReader) process() {
	for {
		at, sec := z.s.first(z.buf)
		if at < 0 {
			break
		}
		from := pairStart(z.buf, at)
		z.out = append(z.out, z.buf[:from]...)
		z.buf = z.buf[at+len(sec):]
	}
	keep := z.s.longest - 1 + maxPairName + 2
	if z.eof {
		keep = 0
	}
	if len(z.buf) > keep {
		cut := len(z.buf) - keep
		z.out = append(z.out, z.buf[:cut]...)
		z.buf = append([]byte(nil), z.buf[cut:]...)
	}
}

// first finds the earliest secret in b.
func (s *scrubber) first(b []byte) (int, []byte) {
	at, which := -1, []byte(nil)
	for _, sec := range s.secrets {
		if i := bytes.Index(b, sec); i >= 0 && (at < 0 || i < at) {
			at, which = i, sec
		}
	}
	return at, which
}

// pairStart returns where the cut for a secret at b[at:] begins: at the NAME of a
// query pair NAME=secret (NAME of letters, digits, '_', '-' or '.', after '?', '&' or
// ';'), so the link keeps working without it; else at the secret itself.
func pairStart(b []byte, at int) int {
	if at == 0 || b[at-1] != '=' {
		return at
	}
	i := at - 1
	for i > 0 && at-1-i < maxPairName && isPairNameByte(b[i-1]) {
		i--
	}
	if i == at-1 || i == 0 {
		return at
	}
	switch b[i-1] {
	case '?', '&', ';':
		return i
	}
	return at
}

func isPairNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
}

func (z *scrubReader) Close() error { return z.r.Close() }
