//go:build unix

package e2e

import (
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	pathpkg "path"
	"strconv"
	"time"

	"github.com/gorilla/websocket"
)

// BenchAppArg, as the first argument of the e2e test binary (TestMain) or of `go run
// ./e2e/bench`, runs RunBenchApp instead of the tests or the bench.
const BenchAppArg = "app"

// RunBenchApp is the app the bench, the fault campaign and the soak reach, run as
// `PROGRAM app PORT PORTFILE` (tether starts it with {port}; the bench reads PORTFILE
// to point ssh -L at it). It matches on the last path element, so it works under any
// base URL:
//
//	GET  .../bytes?n=N  N bytes (Content-Length set)
//	POST .../upload     reads the body, answers its length
//	POST .../sha256     reads the body, answers its SHA-256 in hex
//	GET  .../small      a fixed 128-byte body
//	GET  .../ws         WebSocket echo
//	GET  .../hold?ms=N  waits N ms (at most a minute), then a fixed 128-byte body
func RunBenchApp(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("usage: app PORT PORTFILE")
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", args[0]))
	if err != nil {
		return err
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	if err := os.WriteFile(args[1], []byte(port), 0o600); err != nil {
		return err
	}
	chunk := make([]byte, 256<<10)
	for i := range chunk {
		chunk[i] = byte(i)
	}
	small := make([]byte, 128)
	for i := range small {
		small[i] = 'a' + byte(i%26)
	}
	up := websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096, CheckOrigin: func(*http.Request) bool { return true }}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch pathpkg.Base(r.URL.Path) {
		case "bytes":
			n, err := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
			if err != nil || n < 0 {
				http.Error(w, "bad n", http.StatusBadRequest)
				return
			}
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
			for n > 0 {
				k := min(n, int64(len(chunk)))
				if _, err := w.Write(chunk[:k]); err != nil {
					return
				}
				n -= k
			}
		case "upload":
			buf := make([]byte, 256<<10)
			n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r.Body}, buf)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			fmt.Fprint(w, n)
		case "sha256":
			h := sha256.New()
			if _, err := io.Copy(h, r.Body); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			fmt.Fprintf(w, "%x", h.Sum(nil))
		case "small":
			w.Header().Set("Content-Type", "text/plain")
			w.Write(small)
		case "hold":
			ms, err := strconv.Atoi(r.URL.Query().Get("ms"))
			if err != nil || ms < 0 || ms > 60000 {
				http.Error(w, "bad ms", http.StatusBadRequest)
				return
			}
			select {
			case <-time.After(time.Duration(ms) * time.Millisecond):
			case <-r.Context().Done():
				return
			}
			w.Header().Set("Content-Type", "text/plain")
			w.Write(small)
		case "ws":
			c, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer c.Close()
			for {
				t, m, err := c.ReadMessage()
				if err != nil {
					return
				}
				if c.WriteMessage(t, m) != nil {
					return
				}
			}
		default:
			// The readiness probe and anything else.
			w.Write([]byte("bench app\n"))
		}
	})
	srv := &http.Server{Handler: h}
	return srv.Serve(ln)
}
