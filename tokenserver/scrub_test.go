package tokenserver

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

const scrubSecret = "AppSecret_0123456789abcdefghijklmnopqrstuvw"

// escapes writes s with every character escaped by enc.
func escapes(s string, enc func(byte) string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteString(enc(s[i]))
	}
	return b.String()
}

// The secret is found however a body writes it: literally, or with some or all of its
// characters escaped as JSON, JavaScript, URLs or HTML do, split across reads
// anywhere; text loses it (and a NAME= before it), other bodies have it overwritten.
func TestScrubReaderEscapes(t *testing.T) {
	sec := scrubSecret
	forms := []string{
		sec,
		escapes(sec, func(c byte) string { return fmt.Sprintf(`\u%04x`, c) }),
		escapes(sec, func(c byte) string { return fmt.Sprintf(`\u%04X`, c) }),
		sec[:5] + fmt.Sprintf(`\u%04x`, sec[5]) + sec[6:],         // one character escaped, mid-secret
		fmt.Sprintf(`\u%04x`, sec[0]) + sec[1:],                   // the first
		sec[:len(sec)-1] + fmt.Sprintf(`\u%04X`, sec[len(sec)-1]), // the last
		escapes(sec, func(c byte) string { return fmt.Sprintf(`\x%02x`, c) }),
		escapes(sec, func(c byte) string { return fmt.Sprintf(`%%%02X`, c) }),
		escapes(sec, func(c byte) string { return fmt.Sprintf(`&#%d;`, c) }),
		escapes(sec, func(c byte) string { return fmt.Sprintf(`&#x%x;`, c) }),
		sec[:10] + fmt.Sprintf("&#%07d;", sec[10]) + sec[11:],
	}
	slashed := "with/slash/secret-0123"
	for _, fill := range []bool{false, true} {
		var in, want bytes.Buffer
		rng := rand.New(rand.NewPCG(3, 4))
		for i := 0; i < 600; i++ {
			f := forms[rng.IntN(len(forms))]
			lead := strings.Repeat(`x\n"\\%&#;`[rng.IntN(9):], rng.IntN(3))
			in.WriteString(lead)
			want.WriteString(lead)
			switch rng.IntN(4) {
			case 0:
				in.WriteString(`{"url": "/tree?token=` + f + `"}`)
				if fill {
					want.WriteString(`{"url": "/tree?token=` + strings.Repeat("*", len(f)) + `"}`)
				} else {
					want.WriteString(`{"url": "/tree?"}`)
				}
			case 1:
				in.WriteString(`"` + strings.ReplaceAll(slashed, "/", `\/`) + `"`)
				if fill {
					want.WriteString(`"` + strings.Repeat("*", len(slashed)+2) + `"`)
				} else {
					want.WriteString(`""`)
				}
			default:
				in.WriteString(f)
				if fill {
					want.WriteString(strings.Repeat("*", len(f)))
				}
			}
		}
		// Near misses pass unchanged.
		for _, miss := range []string{sec[:20] + `\u0058` + sec[21:], `\u00` + sec[1:], `\u004` + sec[1:], sec[:len(sec)-1] + "%", `&#65` + sec[1:], `\q` + sec[1:]} {
			in.WriteString(miss)
			want.WriteString(miss)
		}
		s := newScrubber([]string{sec, slashed})
		for _, size := range []int{1, 3, 7, 64, 4093, 1 << 20} {
			z := newScrubReader(s, io.NopCloser(&chunked{b: in.Bytes(), n: size}), fill)
			got, err := io.ReadAll(z)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want.Bytes()) {
				i := 0
				for i < len(got) && i < want.Len() && got[i] == want.Bytes()[i] {
					i++
				}
				t.Fatalf("fill %v, read size %d: output differs at byte %d:\n got %q\nwant %q", fill, size, i,
					got[max(0, i-40):min(len(got), i+80)], want.Bytes()[max(0, i-40):min(want.Len(), i+80)])
			}
		}
	}
}

// An event stream is scrubbed and still flows: each event reaches the client while
// the app holds the stream open.
func TestScrubEventStreamFlows(t *testing.T) {
	next := make(chan string)
	defer close(next) // before the backend's cleanup, which waits for the handler
	backend := &recordingApp{handler: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.(http.Flusher).Flush()
		for ev := range next {
			io.WriteString(w, ev)
			w.(http.Flusher).Flush()
		}
	}}
	up := startBackend(t, "tcp", backend)
	up.Secrets = []string{scrubSecret}
	g := newGate(t, func(o *Options) { o.App = NewProxy(up, o.Logger) })
	r, _ := http.NewRequest("GET", g.served()+"/events", nil)
	r.Header.Set("Authorization", "token "+g.token)
	resp, err := client(t).Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events := make(chan string)
	go func() {
		br := bufio.NewReader(resp.Body)
		for {
			var ev []byte
			for !bytes.HasSuffix(ev, []byte("\n\n")) {
				line, err := br.ReadBytes('\n')
				ev = append(ev, line...)
				if err != nil {
					close(events)
					return
				}
			}
			events <- string(ev)
		}
	}()
	for i, ev := range []string{"data: " + scrubSecret + "\n\n", "data: ok\n\n", "data: {\"t\": \"\\u0041" + scrubSecret[1:] + "\"}\n\n", "data: a&b=\n\n"} {
		next <- ev
		select {
		case s := <-events:
			want := strings.ReplaceAll(strings.ReplaceAll(ev, scrubSecret, ""), "\\u0041"+scrubSecret[1:], "")
			if s != want {
				t.Errorf("event %d: got %q; want %q", i, s, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("event %d did not reach the client while the stream stayed open", i)
		}
	}
}

// Bodies the old proxy let through: a binary type, a body compressed although the
// proxy asked for none, JSON with the secret \u-escaped; and one it cannot check (an
// unknown coding) is withheld with a 502.
func TestProxyScrubsEveryBody(t *testing.T) {
	gz := func(s string) []byte {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		io.WriteString(w, s)
		w.Close()
		return b.Bytes()
	}
	zl := func(s string) []byte {
		var b bytes.Buffer
		w := zlib.NewWriter(&b)
		io.WriteString(w, s)
		w.Close()
		return b.Bytes()
	}
	raw := func(s string) []byte {
		var b bytes.Buffer
		w, _ := flate.NewWriter(&b, 5)
		io.WriteString(w, s)
		w.Close()
		return b.Bytes()
	}
	page := `<a href="/x?token=` + scrubSecret + `">x</a>`
	uEscaped := escapes(scrubSecret, func(c byte) string { return fmt.Sprintf(`\u%04x`, c) })
	tests := []struct {
		name, ctype, coding string
		body                []byte
		code                int
		want                string
	}{
		{"binary", "application/octet-stream", "", []byte("PK\x03\x04" + scrubSecret + "\x00\xff"), 200, "PK\x03\x04" + strings.Repeat("*", len(scrubSecret)) + "\x00\xff"},
		{"image", "image/png", "", []byte("\x89PNG" + scrubSecret), 200, "\x89PNG" + strings.Repeat("*", len(scrubSecret))},
		{"gzip", "text/html", "gzip", gz(page), 200, `<a href="/x?">x</a>`},
		{"gzip-binary", "application/octet-stream", "gzip", gz("bin" + scrubSecret), 200, "bin" + strings.Repeat("*", len(scrubSecret))},
		{"deflate-zlib", "text/plain", "deflate", zl("a " + scrubSecret + " b"), 200, "a  b"},
		{"deflate-raw", "text/plain", "deflate", raw("a " + scrubSecret + " b"), 200, "a  b"},
		{"json-u-escaped", "application/json", "", []byte(`{"token": "` + uEscaped + `"}`), 200, `{"token": ""}`},
		{"brotli", "text/html", "br", []byte("\x1b\x03\x00" + scrubSecret), 502, "cannot check"},
		{"two-codings", "text/html", "gzip, gzip", gz(string(gz(page))), 502, "cannot check"},
	}
	backend := &recordingApp{handler: func(w http.ResponseWriter, r *http.Request) {
		for _, tt := range tests {
			if r.URL.Path == "/"+tt.name {
				w.Header().Set("Content-Type", tt.ctype)
				if tt.coding != "" {
					w.Header().Set("Content-Encoding", tt.coding)
				}
				w.Write(tt.body)
			}
		}
	}}
	up := startBackend(t, "unix", backend)
	up.Secrets = []string{scrubSecret}
	g := newGate(t, func(o *Options) { o.App = NewProxy(up, o.Logger) })
	base := g.served()
	for _, tt := range tests {
		r, _ := http.NewRequest("GET", base+"/"+tt.name, nil)
		r.Header.Set("Authorization", "token "+g.token)
		r.Header.Set("Accept-Encoding", "gzip, deflate, br") // the client's wish is not passed on
		resp, body := get(t, client(t), r)
		if resp.StatusCode != tt.code || !strings.Contains(body, tt.want) || tt.code == 200 && body != tt.want {
			t.Errorf("%s: %d %q; want %d %q", tt.name, resp.StatusCode, body, tt.code, tt.want)
		}
		if ce := resp.Header.Get("Content-Encoding"); ce != "" {
			t.Errorf("%s: Content-Encoding %q went to the client with a decoded body", tt.name, ce)
		}
		mustNotContain(t, tt.name, body, scrubSecret)
	}
	if !strings.Contains(g.logs.String(), "withheld") {
		t.Errorf("the withheld answers were not logged:\n%s", g.logs)
	}
	for _, rec := range backend.reqs {
		if ae := rec.Header.Get("Accept-Encoding"); ae != "identity" {
			t.Errorf("the app was offered Accept-Encoding %q; want identity", ae)
		}
	}
}

// Ranges: a client asking for part of a file never gets part of a secret, however its
// range cuts one: the proxy widens the range toward the app, scrubs the wider answer
// and cuts it back. Everything else about ranges still works (suffix and open ranges,
// If-Range, 416), and a multi-range request is answered in full.
func TestProxyScrubsRanges(t *testing.T) {
	const size = 50000
	file := make([]byte, size)
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range file {
		file[i] = byte(rng.Uint32())
	}
	at := []int{0, 1000, 1000 + len(scrubSecret) + 3, 30000, size - len(scrubSecret)}
	for _, a := range at {
		copy(file[a:], scrubSecret)
	}
	esc := escapes(scrubSecret, func(c byte) string { return fmt.Sprintf(`\u%04x`, c) })
	copy(file[20000:], esc)
	clean := bytes.Clone(file) // what the client may see: every secret overwritten
	for _, a := range at {
		copy(clean[a:], strings.Repeat("*", len(scrubSecret)))
	}
	copy(clean[20000:], strings.Repeat("*", len(esc)))
	modtime := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	backend := &recordingApp{handler: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "video/mp4")
		http.ServeContent(w, r, "f.mp4", modtime, bytes.NewReader(file))
	}}
	up := startBackend(t, "tcp", backend)
	up.Secrets = []string{scrubSecret}
	g := newGate(t, func(o *Options) { o.App = NewProxy(up, o.Logger) })
	base := g.served()
	fetch := func(rangeHdr string, extra ...string) (*http.Response, string) {
		t.Helper()
		r, _ := http.NewRequest("GET", base+"/f.mp4", nil)
		r.Header.Set("Authorization", "token "+g.token)
		if rangeHdr != "" {
			r.Header.Set("Range", rangeHdr)
		}
		for i := 0; i+1 < len(extra); i += 2 {
			r.Header.Set(extra[i], extra[i+1])
		}
		return get(t, client(t), r)
	}
	type want struct{ first, last int }
	ranges := map[string]want{
		"bytes=1005-1100":   {1005, 1100}, // starts inside a secret
		"bytes=900-1010":    {900, 1010},  // ends inside one
		"bytes=1003-1010":   {1003, 1010}, // inside one
		"bytes=1010-1060":   {1010, 1060}, // the end of one, the start of the next
		"bytes=20003-20100": {20003, 20100},
		"bytes=0-5":         {0, 5},
		"bytes=5-":          {5, size - 1},
		"bytes=-20":         {size - 20, size - 1},
		"bytes=49990-60000": {49990, size - 1},
		"bytes=29999-30000": {29999, 30000},
	}
	for h, w := range ranges {
		resp, body := fetch(h)
		wantCR := fmt.Sprintf("bytes %d-%d/%d", w.first, w.last, size)
		if resp.StatusCode != http.StatusPartialContent || resp.Header.Get("Content-Range") != wantCR ||
			resp.Header.Get("Content-Length") != strconv.Itoa(w.last-w.first+1) {
			t.Errorf("%s: %d, Content-Range %q, Content-Length %q; want 206, %q", h, resp.StatusCode,
				resp.Header.Get("Content-Range"), resp.Header.Get("Content-Length"), wantCR)
			continue
		}
		if body != string(clean[w.first:w.last+1]) {
			t.Errorf("%s: the body is not the scrubbed file's bytes %d-%d", h, w.first, w.last)
		}
		// No byte of a secret at its own offset.
		for _, a := range at {
			for i := max(a, w.first); i < min(a+len(scrubSecret), w.last+1); i++ {
				if body[i-w.first] == scrubSecret[i-a] && scrubSecret[i-a] != '*' {
					t.Errorf("%s: byte %d is the secret's", h, i)
					break
				}
			}
		}
	}
	for _, past := range []string{"bytes=60000-", "bytes=50000-50010", "bytes=50100-"} { // the widened range still overlaps
		if resp, body := fetch(past); resp.StatusCode != http.StatusRequestedRangeNotSatisfiable || strings.Contains(body, "*") ||
			resp.Header.Get("Content-Range") != "bytes */"+strconv.Itoa(size) {
			t.Errorf("%s, past the end: %d %q %q; want 416", past, resp.StatusCode, resp.Header.Get("Content-Range"), body)
		}
	}
	if resp, body := fetch("bytes=49990-"); resp.StatusCode != 206 || body != string(clean[49990:]) {
		t.Errorf("a range just before the end: %d", resp.StatusCode)
	}
	if resp, body := fetch("bytes=0-10, 1005-1100"); resp.StatusCode != 200 || body != string(clean) {
		t.Errorf("several ranges: %d (%d bytes); want 200 with the whole scrubbed file", resp.StatusCode, len(body))
	}
	if resp, body := fetch(""); resp.StatusCode != 200 || body != string(clean) || resp.ContentLength != size {
		t.Errorf("the whole file: %d, length %d", resp.StatusCode, resp.ContentLength)
	}
	lm := modtime.Format(http.TimeFormat)
	if resp, body := fetch("bytes=1005-1100", "If-Range", lm); resp.StatusCode != 206 || body != string(clean[1005:1101]) {
		t.Errorf("If-Range matching: %d", resp.StatusCode)
	}
	if resp, body := fetch("bytes=1005-1100", "If-Range", modtime.Add(-time.Hour).Format(http.TimeFormat)); resp.StatusCode != 200 || body != string(clean) {
		t.Errorf("If-Range not matching: %d; want 200 with the whole file", resp.StatusCode)
	}
	if resp, _ := fetch("bytes=1005-1100"); resp.Header.Get("Accept-Ranges") != "bytes" {
		t.Errorf("Accept-Ranges %q went missing", resp.Header.Get("Accept-Ranges"))
	}
	// HEAD with a range: passed on unchanged (no body to scrub).
	r, _ := http.NewRequest("HEAD", base+"/f.mp4", nil)
	r.Header.Set("Authorization", "token "+g.token)
	r.Header.Set("Range", "bytes=1005-1100")
	if resp, _ := get(t, client(t), r); resp.Header.Get("Content-Range") != "bytes 1005-1100/50000" {
		t.Errorf("HEAD with a range: Content-Range %q", resp.Header.Get("Content-Range"))
	}
}

// An app that answers 206 to a request for the whole, or a range other than the one
// asked for, is withheld (502): its bytes cannot be checked at their edges.
func TestProxyRefusesUncheckablePartial(t *testing.T) {
	backend := &recordingApp{handler: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Range", "bytes 1000-1009/5000")
		w.WriteHeader(http.StatusPartialContent)
		io.WriteString(w, scrubSecret[:10])
	}}
	up := startBackend(t, "tcp", backend)
	up.Secrets = []string{scrubSecret}
	g := newGate(t, func(o *Options) { o.App = NewProxy(up, o.Logger) })
	base := g.served()
	for _, rg := range []string{"", "bytes=1000-1009"} {
		r, _ := http.NewRequest("GET", base+"/f", nil)
		r.Header.Set("Authorization", "token "+g.token)
		if rg != "" {
			r.Header.Set("Range", rg)
		}
		resp, body := get(t, client(t), r)
		if resp.StatusCode != http.StatusBadGateway || strings.Contains(body, scrubSecret[:10]) {
			t.Errorf("Range %q: %d %q; want 502", rg, resp.StatusCode, body)
		}
	}
}
