package tokenserver

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// scrubber keeps an app's secrets out of what the client gets back: the proxy injects
// them into requests, and an app may echo them (Jupyter Notebook 6 writes its token
// into every page, in a data attribute and in a link's ?token=; JupyterLab into its
// page config). A browser that saw the secret could reach the app around the gate,
// and a link carrying it would meet the gate as a wrong token of ours.
//
// Every body is scrubbed, whatever its type: text has the secret cut out (a query
// pair NAME=secret as a whole, so links keep working), anything else has it
// overwritten byte for byte, so lengths and offsets inside the file stay right. A
// secret is found written literally or with its characters escaped as JSON, JavaScript,
// URLs or HTML write them (\u0041, \x41, \/, %41, &#65;, &#x41;). A WebSocket's
// messages from the app are scrubbed too (scrubws.go).
type scrubber struct {
	secrets [][]byte
	longest int       // longest secret, in bytes
	first   [256]bool // first bytes of the secrets, literally
	inSec   [256]bool // every byte of every secret
	ascii   bool      // every secret is ASCII
}

// maxPairName bounds the parameter name cut together with a secret (NAME=secret).
const maxPairName = 32

// minSecretLen: shorter values are not scrubbed (they would match ordinary text).
const minSecretLen = 8

// maxUnit is the longest escape of one character we decode (&#x0010FFFF;).
const maxUnit = 12

// fillByte overwrites a secret in a body whose length must not change.
const fillByte = '*'

func newScrubber(secrets []string) *scrubber {
	s := &scrubber{ascii: true}
	for _, v := range secrets {
		if len(v) < minSecretLen {
			continue
		}
		s.secrets = append(s.secrets, []byte(v))
		s.longest = max(s.longest, len(v))
		s.first[v[0]] = true
		for i := 0; i < len(v); i++ {
			s.inSec[v[i]] = true
			s.ascii = s.ascii && v[i] < utf8.RuneSelf
		}
	}
	if len(s.secrets) == 0 {
		return nil
	}
	return s
}

// maxEncoded bounds the length of one secret as written in a body, escapes and all.
func (s *scrubber) maxEncoded() int { return s.longest * maxUnit }

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
	spans, _ := s.scan(b, true, nil)
	return len(spans) > 0
}

// errUncheckable: the app sent a body the scrubber cannot read (a content coding it
// does not decode, or a partial answer that is not the range it asked for). The proxy
// withholds it: 502.
type errUncheckable struct{ why string }

func (e *errUncheckable) Error() string {
	return "proxy: cannot check the app's answer for its secret: " + e.why
}

// body makes resp's body safe to send. It reports an *errUncheckable when it cannot.
//
// The proxy asks the app for identity coding; gzip and deflate are decoded should the
// app compress anyway, any other coding is refused. A 206 answers the widened range the
// proxy asked for (see widenRange): its body is scrubbed as a whole and cut back to the
// range the client wanted, so a secret that straddles the client's range edges is
// seen whole.
func (s *scrubber) body(resp *http.Response) error {
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return s.upgrade(resp)
	}
	if resp.Body == nil || resp.Body == http.NoBody || resp.StatusCode < 200 ||
		resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified ||
		resp.Request != nil && resp.Request.Method == http.MethodHead {
		return nil // no body to speak of
	}
	ce := strings.ToLower(strings.TrimSpace(resp.Header.Get("Content-Encoding")))
	if len(resp.Header.Values("Content-Encoding")) > 1 || strings.Contains(ce, ",") {
		return &errUncheckable{"more than one Content-Encoding"}
	}
	partial := resp.StatusCode == http.StatusPartialContent
	switch ce {
	case "", "identity":
	case "gzip", "x-gzip", "deflate":
		if partial {
			return &errUncheckable{"a compressed partial answer"}
		}
		resp.Body = &decodedBody{coding: ce, orig: resp.Body}
		resp.Header.Del("Content-Encoding")
		resp.Header.Del("Content-Length")
		resp.ContentLength = -1
	default:
		return &errUncheckable{"Content-Encoding " + strconv.Quote(truncate(ce, 32))}
	}
	if partial {
		return s.partialBody(resp)
	}
	// Text loses the secret; anything else keeps its length and offsets.
	fill := !textual(resp.Header.Get("Content-Type"))
	resp.Body = newScrubReader(s, resp.Body, fill)
	if !fill {
		resp.Header.Del("Content-Length")
		resp.ContentLength = -1
	}
	return nil
}

// textual reports whether a media type is text, where a secret is cut out rather than
// overwritten: text/*, JSON, JavaScript, XML, a form, and a body with no type at all.
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

// decodedBody decodes a gzip or deflate body on first read (so that ModifyResponse
// never waits for the body).
type decodedBody struct {
	coding string
	orig   io.ReadCloser
	r      io.Reader
	err    error
}

func (d *decodedBody) Read(p []byte) (int, error) {
	if d.r == nil && d.err == nil {
		d.r, d.err = d.open()
	}
	if d.err != nil {
		return 0, d.err
	}
	return d.r.Read(p)
}

func (d *decodedBody) open() (io.Reader, error) {
	br := bufio.NewReader(d.orig)
	if d.coding != "deflate" {
		return gzip.NewReader(br)
	}
	// HTTP's deflate is zlib (RFC 1950); some servers send raw deflate (RFC 1951).
	h, err := br.Peek(2)
	if err == nil && h[0]&0x0f == 8 && (uint(h[0])<<8|uint(h[1]))%31 == 0 {
		return zlib.NewReader(br)
	}
	return flate.NewReader(br), nil
}

func (d *decodedBody) Close() error { return d.orig.Close() }

// Ranges. A client's single byte range is widened by the longest a secret can be
// written, both ways, before the app sees it; the app's 206 is scrubbed (overwriting,
// so offsets hold) and cut back to what the client asked for. Several ranges in one
// request (multipart answers) are not offered to the app: it answers 200 in full.

// byteRange is a parsed "bytes=" range: first-last, first- (last < 0), or the final
// suffix bytes (first < 0).
type byteRange struct {
	first, last, suffix int64
}

type wantedRangeKey struct{}

// widenRange rewrites the Range of an outgoing GET: it returns the range the client
// asked for (nil if none, or if the request is left to be answered in full).
func (s *scrubber) widenRange(h http.Header, method string) *byteRange {
	v := h.Get("Range")
	if v == "" || method != http.MethodGet {
		return nil
	}
	rg, ok := parseRange(v, len(h.Values("Range")))
	if !ok {
		// Several ranges, or something we do not parse: the app answers in full.
		h.Del("Range")
		h.Del("If-Range")
		return nil
	}
	w := int64(s.maxEncoded())
	switch {
	case rg.first < 0:
		h.Set("Range", fmt.Sprintf("bytes=-%d", rg.suffix+w))
	case rg.last < 0:
		h.Set("Range", fmt.Sprintf("bytes=%d-", max(0, rg.first-w)))
	default:
		h.Set("Range", fmt.Sprintf("bytes=%d-%d", max(0, rg.first-w), rg.last+w))
	}
	return &rg
}

// parseRange parses one "bytes=" range spec.
func parseRange(v string, lines int) (byteRange, bool) {
	unit, spec, ok := strings.Cut(v, "=")
	if lines != 1 || !ok || !strings.EqualFold(strings.TrimSpace(unit), "bytes") || strings.Contains(spec, ",") {
		return byteRange{}, false
	}
	a, b, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return byteRange{}, false
	}
	num := func(s string) (int64, bool) {
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		return n, err == nil && n >= 0 && n < 1<<53
	}
	switch {
	case strings.TrimSpace(a) == "":
		n, ok := num(b)
		return byteRange{first: -1, last: -1, suffix: n}, ok && n > 0
	case strings.TrimSpace(b) == "":
		n, ok := num(a)
		return byteRange{first: n, last: -1}, ok
	}
	f, ok1 := num(a)
	l, ok2 := num(b)
	return byteRange{first: f, last: l}, ok1 && ok2 && f <= l
}

// partialBody checks a 206 against the range the client wanted, scrubs it and cuts
// it to that range (or turns it into the 416 the client's range deserves).
func (s *scrubber) partialBody(resp *http.Response) error {
	var want *byteRange
	if resp.Request != nil {
		want, _ = resp.Request.Context().Value(wantedRangeKey{}).(*byteRange)
	}
	if want == nil {
		return &errUncheckable{"a partial answer to a request for the whole"}
	}
	first, last, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
	if !ok {
		return &errUncheckable{"a partial answer without one Content-Range"}
	}
	ws, we := want.first, want.last
	switch {
	case want.first < 0: // the final suffix bytes
		if total >= 0 {
			ws, we = max(0, total-want.suffix), total-1
		} else {
			ws, we = max(first, last-want.suffix+1), last
		}
	case want.last < 0 || total >= 0 && we > total-1:
		we = last
		if total >= 0 {
			we = total - 1
		}
	}
	if total >= 0 && ws >= total {
		resp.Body.Close()
		resp.StatusCode, resp.Status = http.StatusRequestedRangeNotSatisfiable, "416 Requested Range Not Satisfiable"
		resp.Header.Set("Content-Range", "bytes */"+strconv.FormatInt(total, 10))
		resp.Header.Del("Content-Type")
		resp.Header.Set("Content-Length", "0")
		resp.ContentLength = 0
		resp.Body = http.NoBody
		return nil
	}
	// The answer must hold the margins asked for, or a secret at the edges of the
	// client's range might not be seen whole.
	w := int64(s.maxEncoded())
	needLast := we + w
	if total >= 0 {
		needLast = min(needLast, total-1)
	}
	if ws > we || first > max(0, ws-w) || last < needLast {
		return &errUncheckable{"a partial answer that is not the range asked for"}
	}
	totalText := "*"
	if total >= 0 {
		totalText = strconv.FormatInt(total, 10)
	}
	n := we - ws + 1
	resp.Header.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%s", ws, we, totalText))
	resp.Header.Set("Content-Length", strconv.FormatInt(n, 10))
	resp.ContentLength = n
	resp.Body = &windowReader{r: newScrubReader(s, resp.Body, true), skip: ws - first, left: n}
	return nil
}

// parseContentRange parses "bytes first-last/total" (total -1 for "*").
func parseContentRange(v string) (first, last, total int64, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSpace(v), "bytes ")
	if !found {
		return 0, 0, 0, false
	}
	rng, tot, found := strings.Cut(rest, "/")
	a, b, found2 := strings.Cut(rng, "-")
	if !found || !found2 {
		return 0, 0, 0, false
	}
	var err1, err2, err3 error
	first, err1 = strconv.ParseInt(a, 10, 64)
	last, err2 = strconv.ParseInt(b, 10, 64)
	total = -1
	if tot != "*" {
		total, err3 = strconv.ParseInt(tot, 10, 64)
	}
	ok = err1 == nil && err2 == nil && err3 == nil && first >= 0 && first <= last && (total < 0 || last < total)
	return first, last, total, ok
}

// windowReader skips the first skip bytes of r and reads the next left.
type windowReader struct {
	r          io.ReadCloser
	skip, left int64
}

func (w *windowReader) Read(p []byte) (int, error) {
	for w.skip > 0 {
		n, err := io.CopyN(io.Discard, w.r, w.skip)
		w.skip -= n
		if err != nil {
			return 0, unexpectedEOF(err)
		}
	}
	if w.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > w.left {
		p = p[:w.left]
	}
	n, err := w.r.Read(p)
	w.left -= int64(n)
	if err == io.EOF && w.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func (w *windowReader) Close() error { return w.r.Close() }

// scrubState scrubs a stream that comes in pieces (cut, or with fill overwritten). It
// holds back only what could still turn out to be a secret (and, when cutting, a
// NAME= that may come before one), so a stream such as text/event-stream flows as it
// comes.
type scrubState struct {
	s     *scrubber
	fill  bool
	buf   []byte // buf[:ready] is scrubbed; buf[ready:] is held back
	ready int
	spans []span
}

// push scrubs p after what was held back and returns what may go out now (valid
// until the next push).
func (st *scrubState) push(p []byte, final bool) []byte {
	n := copy(st.buf, st.buf[st.ready:])
	st.buf = append(st.buf[:n], p...)
	st.ready = st.process(final)
	return st.buf[:st.ready]
}

// scrubReader scrubs a body as it is read, reading straight into its buffer.
type scrubReader struct {
	scrubState
	r   io.ReadCloser
	out int // buf[out:ready] is yet to be read
	eof bool
	err error
}

func newScrubReader(s *scrubber, r io.ReadCloser, fill bool) *scrubReader {
	return &scrubReader{scrubState: scrubState{s: s, fill: fill}, r: r}
}

const scrubChunk = 64 << 10

func (z *scrubReader) Read(p []byte) (int, error) {
	for z.out == z.ready {
		if z.eof {
			return 0, z.err
		}
		// Keep what is held back, read more after it.
		held := copy(z.buf[:cap(z.buf)], z.buf[z.ready:])
		if z.buf == nil {
			z.buf = make([]byte, 0, scrubChunk+z.s.maxEncoded()+maxPairName+2)
		}
		z.buf = z.buf[:held]
		n, err := z.r.Read(z.buf[held:cap(z.buf)])
		z.buf = z.buf[:held+n]
		if err != nil {
			z.eof, z.err = true, err
		}
		z.out, z.ready = 0, z.process(z.eof)
	}
	n := copy(p, z.buf[z.out:z.ready])
	z.out += n
	return n, nil
}

// process scrubs buf in place and returns how much of it may go out now.
func (z *scrubState) process(final bool) int {
	b := z.buf
	spans, hold := z.s.scan(b, final, z.spans[:0])
	z.spans = spans
	if z.fill {
		for _, sp := range spans {
			for i := sp.start; i < sp.end; i++ {
				b[i] = fillByte
			}
		}
		return hold
	}
	// Cut: compact in place, dropping each secret and the NAME= before it. The cuts
	// are found first: compacting overwrites what pairStart looks at.
	for i, sp := range spans {
		prev := 0
		if i > 0 {
			prev = spans[i-1].end
		}
		spans[i].cut = max(pairStart(b, sp.start), prev)
	}
	if !final && len(spans) > 0 {
		hold = max(holdPair(b, hold), spans[len(spans)-1].end)
	} else if !final {
		hold = holdPair(b, hold)
	}
	w, r := 0, 0
	for _, sp := range spans {
		w += copy(b[w:], b[r:sp.cut])
		r = sp.end
	}
	shift := r - w
	w += copy(b[w:], b[r:])
	z.buf = b[:w]
	return hold - shift
}

func (z *scrubReader) Close() error { return z.r.Close() }

// span is a secret found in a buffer: b[start:end].
type span struct{ start, end, cut int }

// scan finds every secret in b, written literally or escaped, without overlaps, in
// order. Unless final, it also returns where b must be held back: the start of a
// secret b may end in the middle of (len(b) if none).
func (s *scrubber) scan(b []byte, final bool, spans []span) ([]span, int) {
	// Literally: the common case, at memchr speed.
	for _, sec := range s.secrets {
		for from := 0; ; {
			i := bytes.Index(b[from:], sec)
			if i < 0 {
				break
			}
			spans = append(spans, span{start: from + i, end: from + i + len(sec)})
			from += i + len(sec)
		}
	}
	// Escaped: such a secret has an escape among its first len(secret) characters,
	// and the characters before that escape are literal. So look only around escapes
	// that decode to a byte some secret holds.
	for _, esc := range []byte{'\\', '%', '&'} {
		for from := 0; ; {
			i := bytes.IndexByte(b[from:], esc)
			if i < 0 {
				break
			}
			p := from + i
			from = p + 1
			if !s.mayEscape(b[p:]) {
				continue // \n, \u00e9, &amp; and such: cheaply ruled out
			}
			u, _, st := decodeUnit(b, p, true)
			if st != unitEscape || !s.inSec[u.b[0]] {
				continue
			}
			for _, sec := range s.secrets {
				for k := min(len(sec)-1, p); k >= 0; k-- {
					start := p - k
					if k > 0 && (b[start] != sec[0] || !bytes.Equal(b[start:p], sec[:k])) {
						continue
					}
					if end, m := matchAt(b, start, sec, true); m == matchFull {
						spans = append(spans, span{start: start, end: end})
					}
				}
			}
		}
	}
	spans = dropOverlaps(spans)
	hold := len(b)
	if final {
		return spans, hold
	}
	lo := len(b) - s.maxEncoded()
	if n := len(spans); n > 0 {
		lo = max(lo, spans[n-1].end)
	}
	for i := max(lo, 0); i < len(b); i++ {
		c := b[i]
		if !s.first[c] && c != '\\' && c != '%' && c != '&' {
			continue
		}
		for _, sec := range s.secrets {
			if _, m := matchAt(b, i, sec, false); m == matchPartial {
				return spans, i
			}
		}
	}
	return spans, hold
}

// mayEscape reports whether the escape b starts with may decode to a byte of a
// secret (or b ends too soon to tell).
func (s *scrubber) mayEscape(b []byte) bool {
	if len(b) < 2 {
		return true
	}
	next := b[1]
	switch b[0] {
	case '\\':
		switch next {
		case 'u':
			// A secret of ASCII bytes is written \u00XX with XX below 80.
			return !s.ascii || len(b) < 5 || b[2] == '0' && b[3] == '0' && '0' <= b[4] && b[4] <= '7'
		case 'x':
			return !s.ascii || len(b) < 3 || '0' <= b[2] && b[2] <= '7'
		}
		return s.inSec[next] && (next == '/' || next == '\\' || next == '"' || next == '\'')
	case '&':
		return next == '#'
	}
	v, n, ok := hexDigits(b[1:], 2)
	return ok && (n < 2 || s.inSec[v])
}

// dropOverlaps sorts spans and keeps the earliest of any that overlap.
func dropOverlaps(spans []span) []span {
	if len(spans) < 2 {
		return spans
	}
	slices.SortFunc(spans, func(a, b span) int {
		if a.start != b.start {
			return a.start - b.start
		}
		return b.end - a.end
	})
	out := spans[:1]
	for _, sp := range spans[1:] {
		if sp.start >= out[len(out)-1].end {
			out = append(out, sp)
		}
	}
	return out
}

type matchResult int

const (
	matchNone    matchResult = iota
	matchFull                // b[start:end] is the secret
	matchPartial             // b ends before the secret could end
)

// matchAt reports whether the secret is written at b[i:], each character literally or
// escaped. Not final: b may continue, so running out of b is a partial match.
func matchAt(b []byte, i int, sec []byte, final bool) (int, matchResult) {
	for j := 0; j < len(sec); {
		if i >= len(b) {
			if final {
				return 0, matchNone
			}
			return 0, matchPartial
		}
		if c := b[i]; c == sec[j] && c != '\\' && c != '%' && c != '&' {
			i, j = i+1, j+1
			continue
		}
		u, n, st := decodeUnit(b, i, final)
		if st == unitIncomplete {
			return 0, matchPartial
		}
		if !bytes.HasPrefix(sec[j:], u.bytes()) {
			return 0, matchNone
		}
		i, j = i+n, j+u.n
	}
	return i, matchFull
}

type unitKind int

const (
	unitLiteral    unitKind = iota
	unitEscape              // an escape, decoded
	unitIncomplete          // b ends inside what may be an escape
)

// decodeUnit reads one character at b[i]: an escape (\uXXXX, \xHH, \/ and JSON's
// other two-character escapes, %HH, &#DDD; or &#xHHH;) decoded to its UTF-8 bytes (a
// %HH to its byte), or else the literal byte. Not final: a prefix of an escape at the
// end of b is unitIncomplete.
func decodeUnit(b []byte, i int, final bool) (unit, int, unitKind) {
	c := b[i]
	lit := byteUnit(c)
	rest := b[i+1:]
	incomplete := func() (unit, int, unitKind) {
		if final {
			return lit, 1, unitLiteral
		}
		return unit{}, 0, unitIncomplete
	}
	switch c {
	case '\\':
		if len(rest) == 0 {
			return incomplete()
		}
		switch rest[0] {
		case 'u', 'x':
			digits := 4
			if rest[0] == 'x' {
				digits = 2
			}
			v, n, ok := hexDigits(rest[1:], digits)
			if !ok {
				return lit, 1, unitLiteral
			}
			if n < digits {
				return incomplete()
			}
			return runeUnit(rune(v)), 2 + digits, unitEscape
		case '/', '\\', '"', '\'':
			return byteUnit(rest[0]), 2, unitEscape
		}
		return lit, 1, unitLiteral
	case '%':
		v, n, ok := hexDigits(rest, 2)
		if !ok {
			return lit, 1, unitLiteral
		}
		if n < 2 {
			return incomplete()
		}
		return byteUnit(byte(v)), 3, unitEscape
	case '&':
		if len(rest) == 0 {
			return incomplete()
		}
		if rest[0] != '#' {
			return lit, 1, unitLiteral
		}
		j, base := 1, 10
		if j < len(rest) && (rest[j] == 'x' || rest[j] == 'X') {
			j, base = 2, 16
		}
		v, k := 0, 0
		for ; j < len(rest) && k < 8; j, k = j+1, k+1 {
			d := digitValue(rest[j])
			if d < 0 || d >= base {
				break
			}
			v = v*base + d
		}
		switch {
		case j == len(rest) && k < 8:
			return incomplete()
		case j == len(rest) || k == 0 || rest[j] != ';' || v > utf8.MaxRune:
			return lit, 1, unitLiteral
		}
		return runeUnit(rune(v)), 1 + j + 1, unitEscape
	}
	return lit, 1, unitLiteral
}

// hexDigits reads up to n hex digits: their value, how many (fewer than n only where b
// ends), and false if a non-hex byte comes first.
func hexDigits(b []byte, n int) (int, int, bool) {
	v := 0
	for k := 0; k < n; k++ {
		if k == len(b) {
			return v, k, true
		}
		d := digitValue(b[k])
		if d < 0 || d > 15 {
			return 0, 0, false
		}
		v = v<<4 | d
	}
	return v, n, true
}

func digitValue(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// unit is a decoded character: its UTF-8 bytes (one byte for %HH).
type unit struct {
	b [utf8.UTFMax]byte
	n int
}

func (u *unit) bytes() []byte { return u.b[:u.n] }

func byteUnit(c byte) unit { return unit{b: [utf8.UTFMax]byte{c}, n: 1} }

func runeUnit(r rune) unit {
	if r >= 0 && r < utf8.RuneSelf {
		return byteUnit(byte(r))
	}
	var u unit
	u.n = utf8.EncodeRune(u.b[:], r)
	return u
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

// holdPair moves a hold point back over a NAME= (or the start of one, down to a lone
// '?', '&' or ';') that comes right before it, together with that '?', '&' or ';', so
// that a secret arriving next can be cut with its name.
func holdPair(b []byte, hold int) int {
	i := hold
	if i > 0 && b[i-1] == '=' {
		i--
	}
	k := i
	for k > 0 && i-k < maxPairName && isPairNameByte(b[k-1]) {
		k--
	}
	if k > 0 {
		switch b[k-1] {
		case '?', '&', ';':
			return k - 1
		}
	}
	return hold
}

func isPairNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
}

// Around the body. ReverseProxy passes the app's informational answers (1xx, such as
// 103 Early Hints) on to the client as they arrive, before ModifyResponse sees
// anything, and copies the trailers that follow a chunked body once the body is
// closed: their fields are judged as the header's are.

// scrubInformational is the proxy's RoundTripper: it takes the secrets out of 1xx
// answers' fields before ReverseProxy forwards them. Its trace hook runs before
// ReverseProxy's (httptrace calls the newest hook first) and edits the same map.
type scrubInformational struct {
	next http.RoundTripper
	s    *scrubber
	warn func(n int)
}

func (t *scrubInformational) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx := httptrace.WithClientTrace(r.Context(), &httptrace.ClientTrace{
		Got1xxResponse: func(_ int, h textproto.MIMEHeader) error {
			if n := t.s.headers(http.Header(h)); n > 0 {
				t.warn(n)
			}
			return nil
		},
	})
	return t.next.RoundTrip(r.WithContext(ctx))
}

// trailers makes resp's trailers safe: they arrive once its body has been read to the
// end, and ReverseProxy copies them after closing it.
func (s *scrubber) trailers(resp *http.Response, warn func(n int)) {
	if resp.StatusCode == http.StatusSwitchingProtocols || resp.Body == nil || resp.Body == http.NoBody {
		return
	}
	resp.Body = &trailerScrub{ReadCloser: resp.Body, resp: resp, s: s, warn: warn}
}

type trailerScrub struct {
	io.ReadCloser
	resp *http.Response
	s    *scrubber
	warn func(n int)
	done bool
}

func (t *trailerScrub) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	if err == io.EOF {
		t.scrub()
	}
	return n, err
}

func (t *trailerScrub) Close() error {
	err := t.ReadCloser.Close()
	t.scrub()
	return err
}

func (t *trailerScrub) scrub() {
	if t.done || len(t.resp.Trailer) == 0 {
		return
	}
	t.done = true
	if n := t.s.headers(t.resp.Trailer); n > 0 {
		t.warn(n)
	}
}
