package remote

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tether-dev/tether/access"
	"github.com/tether-dev/tether/tokenserver"
)

// vmKiB reads a "VmXXX:" figure of /proc/self/status, in KiB.
func vmKiB(t *testing.T, field string) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// A burst of 200 concurrent wrong access keys, each from its own source address
// beyond loopback (so the per-source rate limit lets each one through to argon2id),
// against the real access policy behind the real gate: argon2id takes 19 MiB per
// check, and the gate runs at most a few at once, so the peak memory stays bounded.
func TestTeamWrongKeyBurstMemory(t *testing.T) {
	dir := t.TempDir()
	var keys strings.Builder
	for i := range 1 {
		h, err := access.HashKey(fmt.Sprintf("the right key number %d", i))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&keys, "  k%d:\n    hash: %s\n    apps: [a]\n", i, h)
	}
	file := filepath.Join(dir, "team.yml")
	must(t, os.WriteFile(file, []byte("access_control: keys\nkeys:\n"+keys.String()), 0o600))
	live, err := access.LoadLive(file)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := tokenserver.NewToken()
	g, err := tokenserver.New(tokenserver.Options{Token: tok, Team: live, AllowHosts: []string{"192.0.2.10"},
		Apps: []tokenserver.NamedApp{{Name: "a", Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})}}})
	if err != nil {
		t.Fatal(err)
	}
	before := vmKiB(t, "VmRSS")
	local, _ := net.ResolveTCPAddr("tcp", "192.0.2.10:8443")
	codes := map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			r := httptest.NewRequest("GET", "/a/", nil)
			r.Host = "192.0.2.10:8443"
			r.Header.Set("Authorization", "Bearer wrong-key-but-long-enough-"+strconv.Itoa(i))
			r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, net.Addr(local)))
			r.RemoteAddr = fmt.Sprintf("198.51.%d.%d:1", 100+i/250, 1+i%250)
			w := httptest.NewRecorder()
			g.ServeHTTP(w, r)
			mu.Lock()
			codes[w.Code]++
			mu.Unlock()
		})
	}
	wg.Wait()
	peak := vmKiB(t, "VmHWM")
	t.Logf("200 concurrent wrong keys: answers %v; RSS before %d MiB, peak %d MiB", codes, before>>10, peak>>10)
	if codes[http.StatusUnauthorized] != 200 {
		t.Errorf("answers %v; want 200 × 401 (each source's first failure)", codes)
	}
	// 200 checks at once would need 200 × 19 MiB = 3.7 GiB; the gate's few slots, each
	// 19 MiB, leave the garbage collector's headroom: a generous bound.
	if grow := (peak - before) >> 10; grow > 512 {
		t.Errorf("the peak RSS grew by %d MiB under the burst; want at most 512", grow)
	}
}
