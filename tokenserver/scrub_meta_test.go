package tokenserver

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// What the app sends around a body carries its secret no further than a header does:
// an informational answer (103 Early Hints: the proxy passes 1xx answers on as they
// come) and trailers (sent after a chunked body) lose the fields that hold it, written
// literally or escaped.
func TestProxyScrubsInformationalAndTrailers(t *testing.T) {
	backend := &recordingApp{handler: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</static/app.js?token="+scrubSecret+">; rel=preload")
		w.Header().Set("X-Fine", "early")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		w.Header().Del("X-Fine")
		w.Header().Set("Trailer", "X-Debug-Token, X-Escaped, X-Kept")
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "body ok\n")
		w.(http.Flusher).Flush()
		w.Header().Set("X-Debug-Token", scrubSecret)
		w.Header().Set("X-Escaped", escapes(scrubSecret, func(c byte) string { return fmt.Sprintf("%%%02X", c) }))
		w.Header().Set("X-Kept", "trailer ok")
	}}
	up := startBackend(t, "unix", backend)
	up.Secrets = []string{scrubSecret}
	g := newGate(t, func(o *Options) { o.App = NewProxy(up, o.Logger) })
	base := g.served()

	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /page HTTP/1.1\r\nHost: "+testHost+"\r\nAuthorization: token "+g.token+"\r\nTE: trailers\r\nConnection: close\r\n\r\n")
	raw, err := io.ReadAll(bufio.NewReader(c))
	if err != nil {
		t.Fatal(err)
	}
	got := string(raw)
	for _, want := range []string{"103 Early Hints", "X-Fine: early", "200 OK", "body ok", "X-Kept: trailer ok"} {
		if !strings.Contains(got, want) {
			t.Errorf("the answer lacks %q:\n%s", want, got)
		}
	}
	mustNotContain(t, "the raw answer (1xx and trailers)", got, scrubSecret)
	if strings.Contains(got, "%41ppSecret") || strings.Contains(got, "%41%70%70") {
		t.Errorf("the raw answer holds the secret, escaped:\n%s", got)
	}
}
