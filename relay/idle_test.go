package relay

import (
	"bufio"
	"crypto/ed25519"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// memHelperEnv makes the test binary the relay process TestIdleHostMemory measures
// (its own process, so the test's 1,000 client ends are not counted).
const memHelperEnv = "TETHER_RELAY_MEM_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(memHelperEnv) == "1" {
		memHelper()
		return
	}
	os.Exit(m.Run())
}

// memHelper runs a router on 127.0.0.1, prints its address, and answers each line on
// stdin with its memory after a GC, until stdin closes.
func memHelper() {
	key := KeyFromSecret([]byte(strings.Repeat("m", 32)))
	s := &Server{Key: key.Public().(ed25519.PublicKey), Limits: Limits{HostsPerAddr: 10000}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("error", err)
		return
	}
	go (&http.Server{Handler: s}).Serve(ln)
	fmt.Println(ln.Addr())
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		runtime.GC()
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Println(ms.HeapInuse, ms.StackInuse, rss(), runtime.NumGoroutine(), s.HostCount())
	}
}

// rss is the process's resident set in bytes (Linux), or 0.
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

type memStats struct{ heap, stack, rss, goroutines, hosts int64 }

// TestIdleHostMemory opens 1,000 host control connections to a router in another
// process and reports what each idle host costs it: heap and stacks after a GC, and
// resident memory.
func TestIdleHostMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 1,000 connections; not in -short")
	}
	const hosts = 1000
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), memHelperEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() })
	out := bufio.NewScanner(stdout)
	if !out.Scan() {
		t.Fatal("the helper printed nothing")
	}
	addr := out.Text()
	stats := func() memStats {
		t.Helper()
		io.WriteString(stdin, "stats\n")
		if !out.Scan() {
			t.Fatal("the helper stopped")
		}
		var m memStats
		if _, err := fmt.Sscan(out.Text(), &m.heap, &m.stack, &m.rss, &m.goroutines, &m.hosts); err != nil {
			t.Fatalf("helper said %q: %v", out.Text(), err)
		}
		return m
	}
	// Warm up: one host and gone, so the first connection's one-time costs
	// (handshake code paths, pools) are not charged to the thousand.
	key := KeyFromSecret([]byte(strings.Repeat("m", 32)))
	d := &websocket.Dialer{ReadBufferSize: 256, WriteBufferSize: 256}
	open := func(i int) *websocket.Conn {
		tok, _ := Mint(key, RoleHost, fmt.Sprintf("p%d", i), "box", time.Hour)
		ws, _, err := d.Dial("ws://"+addr+pathHost, http.Header{"Authorization": {"Bearer " + tok}})
		if err != nil {
			t.Fatalf("host %d: %v", i, err)
		}
		return ws
	}
	open(-1).Close()
	time.Sleep(100 * time.Millisecond)
	before := stats()
	conns := make([]*websocket.Conn, 0, hosts)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for i := range hosts {
		conns = append(conns, open(i))
	}
	var after memStats
	deadline := time.Now().Add(30 * time.Second)
	for after = stats(); after.hosts != hosts; after = stats() {
		if time.Now().After(deadline) {
			t.Fatalf("the router holds %d hosts, want %d", after.hosts, hosts)
		}
		time.Sleep(50 * time.Millisecond)
	}
	heap := (after.heap - before.heap) / hosts
	stack := (after.stack - before.stack) / hosts
	rssPer := (after.rss - before.rss) / hosts
	t.Logf("per idle host at %d hosts: heap %d B, stacks %d B (heap+stacks %.1f KiB), RSS %.1f KiB; goroutines %d → %d",
		hosts, heap, stack, float64(heap+stack)/1024, float64(rssPer)/1024, before.goroutines, after.goroutines)
	if g := (after.goroutines - before.goroutines) / hosts; g > 1 {
		t.Errorf("%d goroutines per idle host; want 1 (its handler's read)", g)
	}
	// Generous: the point is the figure; a regression to buffers held per idle
	// connection (2 × 4 KiB and more) or a goroutine per timer shows here.
	if limit := int64(16 << 10); heap+stack > limit {
		t.Errorf("an idle host costs %d bytes of heap and stack; want under %d", heap+stack, limit)
	}
}
