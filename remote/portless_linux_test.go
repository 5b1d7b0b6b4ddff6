package remote

import (
	"context"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// portsApp opens listeners in the order its arguments say, each on a port the kernel
// picks (so the command names no port): "http" serves HTTP (http.server), "pair" two
// of those that begin to listen together, "raw" accepts and writes bytes that are not
// HTTP, "sleep:S" waits; an address after a
// colon binds there instead of 127.0.0.1. It prints "KIND PORT" for each.
const portsApp = `import http.server, socket, sys, threading, time
def serve(s):
    while True:
        c, _ = s.accept(); c.sendall(b"\x00\x01 not http\n"); c.close()
for step in sys.argv[1:]:
    kind, _, arg = step.partition(":")
    if kind == "sleep":
        time.sleep(float(arg)); continue
    addr = arg or "127.0.0.1"
    if kind == "pair":
        hs = [http.server.ThreadingHTTPServer((addr, 0), http.server.SimpleHTTPRequestHandler, bind_and_activate=False) for _ in range(2)]
        for h in hs: h.server_bind()
        for h in hs: h.server_activate()
        for h in hs:
            print("http", h.server_address[1], flush=True)
            threading.Thread(target=h.serve_forever, daemon=True).start()
    elif kind == "http":
        h = http.server.ThreadingHTTPServer((addr, 0), http.server.SimpleHTTPRequestHandler)
        print("http", h.server_address[1], flush=True)
        threading.Thread(target=h.serve_forever, daemon=True).start()
    else:
        r = socket.socket(); r.bind((addr, 0)); r.listen()
        print("raw", r.getsockname()[1], flush=True)
        threading.Thread(target=serve, args=(r,), daemon=True).start()
time.sleep(3600)
`

// portsOf are the ports portsApp printed, by kind, in order.
func portsOf(out string) map[string][]string {
	m := map[string][]string{}
	for _, l := range regexp.MustCompile(`(?m)^(http|raw) (\d+)$`).FindAllStringSubmatch(out, -1) {
		m[l[1]] = append(m[l[1]], l[2])
	}
	return m
}

// TestServeFindsTheAppsOwnPort: a COMMAND without {port}, {socket} or $PORT whose app
// listens on a port of its own is served from that port within seconds (on the old
// code serve waited on $PORT until the ready timeout), and serve says so in one line.
func TestServeFindsTheAppsOwnPort(t *testing.T) {
	needPython3(t)
	tempRoot(t)
	start := time.Now()
	r := startServe(t, ServeOptions{Command: []string{"python3", "-c", portsApp, "http"}, ReadyTimeout: 20 * time.Second})
	took := time.Since(start)
	defer r.stop(t)
	msgs := r.stderr.String()
	port := portsOf(msgs)["http"]
	if len(port) != 1 {
		t.Fatalf("the app printed no port:\n%s", msgs)
	}
	want := "tether: note: the app listens on 127.0.0.1:" + port[0] + "; using it; other users of this machine can reach it there without the token"
	if !strings.Contains(msgs, want) {
		t.Errorf("stderr lacks %q:\n%s", want, msgs)
	}
	if strings.Contains(msgs, "no {port} or {socket}") {
		t.Errorf("the note of systems that cannot find the port, on Linux:\n%s", msgs)
	}
	if took > 10*time.Second {
		t.Errorf("ready after %s; want seconds", took)
	}
	if code, body := fetch(t, socketClient(r.rec.Socket, nil), "http://localhost/", r.rec.Token); code != http.StatusOK || !strings.Contains(body, "Directory listing") {
		t.Errorf("through the gate: %d %.200q", code, body)
	}
	t.Logf("ready after %s", took)
}

// TestServeFindsPortAmongSeveral: of several ports the app opens, the only one that
// answers HTTP is used, else the first to listen (a port that is not HTTP only after
// a moment for one that is), and serve names them.
func TestServeFindsPortAmongSeveral(t *testing.T) {
	needPython3(t)
	for _, c := range []struct {
		name  string
		steps []string
		kind  string // the kind of the port that must be used
		index int    // which of that kind; -1: the lowest port
		why   string // how the note says it was picked ("" with one port)
		after time.Duration
	}{
		{"HTTP after a port that is not", []string{"raw", "sleep:0.5", "http"}, "http", 0, ", the only one that answers HTTP", 0},
		{"two that answer HTTP at once", []string{"pair"}, "http", -1, ", the lowest port (they began to listen together)", 0},
		{"none answers HTTP", []string{"raw"}, "raw", 0, "", findSettle},
	} {
		t.Run(c.name, func(t *testing.T) {
			tempRoot(t)
			start := time.Now()
			r := startServe(t, ServeOptions{Command: append([]string{"python3", "-c", portsApp}, c.steps...), ReadyTimeout: 20 * time.Second})
			took := time.Since(start)
			defer r.stop(t)
			msgs := r.stderr.String()
			ports := portsOf(msgs)[c.kind]
			if len(ports) <= c.index || len(ports) == 0 {
				t.Fatalf("the app printed no %s port:\n%s", c.kind, msgs)
			}
			used := "127.0.0.1:" + ports[max(c.index, 0)]
			if c.index < 0 {
				used = "127.0.0.1:" + slices.MinFunc(ports, func(a, b string) int { x, _ := strconv.Atoi(a); y, _ := strconv.Atoi(b); return x - y })
			}
			note := regexp.MustCompile(`tether: note: the app listens on [^;]*; using [^;]*`).FindString(msgs)
			switch {
			case note == "":
				t.Fatalf("no note on the port found:\n%s", msgs)
			case c.why != "" && !strings.HasSuffix(note, "using "+used+c.why):
				t.Errorf("note %q; want it to use %s%s", note, used, c.why)
			case c.why == "" && !strings.HasSuffix(note, "using it") && !strings.HasSuffix(note, "using "+used+", the first to listen"):
				t.Errorf("note %q; want it to use %s", note, used)
			case c.why == "" && strings.HasSuffix(note, "using it") && !strings.Contains(note, "on "+used+";"):
				t.Errorf("note %q; want it to use %s", note, used)
			}
			if took < c.after || took > 15*time.Second {
				t.Errorf("ready after %s; want between %s and 15s", took, c.after)
			}
			code, body := fetch(t, socketClient(r.rec.Socket, nil), "http://localhost/", r.rec.Token)
			if c.kind == "http" && (code != http.StatusOK || !strings.Contains(body, "Directory listing")) {
				t.Errorf("through the gate: %d %.200q", code, body)
			}
			t.Logf("%s (ready after %s)", note, took)
		})
	}
}

// TestServeFoundPortExposed: an app that picks its own port on every interface is
// refused at once, as with {port}; --allow-exposed runs it, with the warning.
func TestServeFoundPortExposed(t *testing.T) {
	needPython3(t)
	root := tempRoot(t)
	command := []string{"python3", "-c", portsApp, "http:0.0.0.0"}
	var stderr syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ready := &cancelOnWrite{cancel: cancel}
	start := time.Now()
	err := Serve(ctx, ServeOptions{Command: command, JSON: true, Stdout: ready, Stderr: &stderr, ReadyTimeout: 20 * time.Second})
	took := time.Since(start)
	if ready.String() != "" {
		t.Fatalf("serve became ready with the app on every interface: %s", ready.String())
	}
	if err == nil || !strings.Contains(err.Error(), "listens on 0.0.0.0:") || !strings.Contains(err.Error(), "--allow-exposed") || took > 10*time.Second {
		t.Fatalf("Serve after %s: %v; want the refusal naming 0.0.0.0 and --allow-exposed within seconds\n%s", took, err, stderr.String())
	}
	if entries, _ := os.ReadDir(root); len(entries) > 0 {
		t.Errorf("session left: %v", entries)
	}
	r := startServe(t, ServeOptions{Command: command, AllowExposed: true, ReadyTimeout: 20 * time.Second})
	defer r.stop(t)
	msgs := r.stderr.String()
	if !strings.Contains(msgs, "warning: the app listens on 0.0.0.0:") || !strings.Contains(msgs, "; using it") {
		t.Errorf("want the warning and the note:\n%s", msgs)
	}
	if code, _ := fetch(t, socketClient(r.rec.Socket, nil), "http://localhost/", r.rec.Token); code != http.StatusOK {
		t.Errorf("through the gate: %d", code)
	}
}
