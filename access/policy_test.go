package access

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Three keys, so that "checks every hash" is visible: key i is keyN(i).
func keyN(i int) string { return fmt.Sprintf("team-key-number-%d-long-enough", i) }

var threeHashes = func() [3]string {
	var h [3]string
	for i := range h {
		var err error
		if h[i], err = HashKey(keyN(i)); err != nil {
			panic(err)
		}
	}
	return h
}()

func threeKeysFile(names [3]string) string {
	s := "access_control: keys\nkeys:\n"
	for i, n := range names {
		if n != "" {
			s += fmt.Sprintf("  %s:\n    hash: %s\n    apps: [app%d]\n", n, threeHashes[i], i)
		}
	}
	return s
}

// keyCost runs p.Key(key) and returns its answer, how many argon2 hashes it computed
// and how long it took.
func keyCost(p interface {
	Key(string) (string, bool)
}, key string) (string, bool, int64, time.Duration) {
	before := hashed.Load()
	start := time.Now()
	name, ok := p.Key(key)
	return name, ok, hashed.Load() - before, time.Since(start)
}

// TestKey: the right key gives its name after hashing with every configured hash
// (whichever matched), the second time from the cache with no hashing; a wrong key,
// the hash itself presented as the key and a key too short are refused, and wrong keys
// are never cached.
func TestKey(t *testing.T) {
	p, err := Load(writeFile(t, threeKeysFile([3]string{"alice", "bob", "carol"})))
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"alice", "bob", "carol"} {
		got, ok, n, first := keyCost(p, keyN(i))
		if !ok || got != name || n != 3 {
			t.Errorf("Key(key %d) = %q, %v after %d hashes; want %q after 3 (every hash, whichever matches)", i, got, ok, n, name)
		}
		got, ok, n, again := keyCost(p, keyN(i))
		if !ok || got != name || n != 0 {
			t.Errorf("Key(key %d) again = %q, %v after %d hashes; want %q from the cache", i, got, ok, n, name)
		}
		t.Logf("Key(%s) with 3 hashes: first %v, again %v (cached)", name, first.Round(time.Microsecond), again)
	}
	refused := []struct{ name, key string }{
		{"wrong key", keyN(9)},
		{"a key's hash", threeHashes[0]},
		{"a key's hash without its $ prefix", strings.TrimPrefix(threeHashes[1], "$")},
		{"the key with a newline", keyN(0) + "\n"},
		{"the key in upper case", strings.ToUpper(keyN(0))},
	}
	for _, tt := range refused {
		for try := range 2 {
			name, ok, n, _ := keyCost(p, tt.key)
			if ok || name != "" || n != 3 {
				t.Errorf("%s (try %d): Key = %q, %v after %d hashes; want refused after 3 (wrong keys are not cached)", tt.name, try, name, ok, n)
			}
		}
	}
	for _, k := range []string{"", "short", strings.Repeat("x", MaxKeyLen+1)} {
		if name, ok, n, d := keyCost(p, k); ok || n != 0 || d > 10*time.Millisecond {
			t.Errorf("Key(%d bytes) = %q, %v after %d hashes in %v; want refused at once", len(k), name, ok, n, d)
		}
	}
	if got := p.cache.len(); got != 3 {
		t.Errorf("the cache holds %d keys; want 3 (the right ones only)", got)
	}
}

// TestKeyConcurrency: many goroutines presenting keys at once (right, wrong, and the
// same new key twice) get the right answers, and no more than maxVerifying keys are
// hashed at a time.
func TestKeyConcurrency(t *testing.T) {
	p, err := Load(writeFile(t, threeKeysFile([3]string{"alice", "bob", ""})))
	if err != nil {
		t.Fatal(err)
	}
	var peak int64
	stop := make(chan struct{})
	var watch sync.WaitGroup
	watch.Add(1)
	go func() {
		defer watch.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if n := hashing.Load(); n > peak {
				peak = n
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
	const n = 12
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key, want := keyN(i%3), []string{"alice", "bob", ""}[i%3]
			if got, _ := p.Key(key); got != want {
				errs <- fmt.Errorf("Key(key %d) = %q; want %q", i%3, got, want)
			}
		}()
	}
	wg.Wait()
	close(stop)
	watch.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Each Key hashes its hashes one after another; at most maxVerifying run at once.
	if peak > int64(maxVerifying) {
		t.Errorf("%d argon2 hashes ran at once; want at most %d", peak, maxVerifying)
	}
	t.Logf("peak %d hashes at once (limit %d)", peak, maxVerifying)
}

func TestLiveReload(t *testing.T) {
	path := writeFile(t, threeKeysFile([3]string{"alice", "bob", "carol"}))
	live, err := LoadLive(path)
	if err != nil {
		t.Fatal(err)
	}
	if name, ok := live.Key(keyN(0)); !ok || name != "alice" {
		t.Fatalf("Key = %q, %v", name, ok)
	}
	live.Key(keyN(2))
	if !live.MayOpen("alice", "app0") || !live.MayOpen("carol", "app2") {
		t.Fatal("MayOpen before the reload")
	}

	// A bad file: the error, and the old policy stays in force.
	os.WriteFile(path, []byte("access_control: keys\nkeys:\n  alice:\n    hash: nope\n    apps: [app0]\n"), 0o644)
	err = live.Reload(path)
	var fe *FileError
	if err == nil || !errors.As(err, &fe) || fe.Line != 4 {
		t.Errorf("Reload of a bad file = %v; want a FileError at line 4", err)
	}
	if name, ok := live.Key(keyN(1)); !ok || name != "bob" || !live.MayOpen("carol", "app2") {
		t.Errorf("after a failed reload: Key(bob's) = %q, %v, MayOpen(carol) = %v; want the old policy", name, ok, live.MayOpen("carol", "app2"))
	}

	// A good file: alice's key renamed, carol removed. Alice's key was verified
	// before and its hash stays, so it is found without hashing, under its new name.
	os.WriteFile(path, []byte(threeKeysFile([3]string{"alice2", "bob", ""})), 0o644)
	if err := live.Reload(path); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if name, ok, n, _ := keyCost(live, keyN(0)); !ok || name != "alice2" || n != 0 {
		t.Errorf("after reload: Key(alice's key) = %q, %v after %d hashes; want alice2 from the cache", name, ok, n)
	}
	if name, ok := live.Key(keyN(2)); ok {
		t.Errorf("after reload: carol's removed key still works, as %q", name)
	}
	for _, tt := range []struct {
		user, app string
		want      bool
	}{{"alice", "app0", false}, {"alice2", "app0", true}, {"carol", "app2", false}, {"bob", "app1", true}} {
		if got := live.MayOpen(tt.user, tt.app); got != tt.want {
			t.Errorf("after reload: MayOpen(%q, %q) = %v; want %v", tt.user, tt.app, got, tt.want)
		}
	}
	if got := live.Policy().cache.len(); got != 2 {
		t.Errorf("after reload the cache holds %d keys; want 2 (alice's and bob's; carol's hash is gone)", got)
	}

	// Another bad file (an oidc one whose secret file is missing): refused, the
	// policy stays.
	os.WriteFile(path, []byte(strings.Replace(oidcFile, "client_secret_file: oidc-secret", "client_secret_file: /dev/null/x", 1)), 0o644)
	if err := live.Reload(path); err == nil {
		t.Error("Reload to a bad oidc file succeeded")
	}
	if live.Policy().Mode() != ModeKeys {
		t.Error("the mode changed")
	}
}

func TestLiveReloadModeChange(t *testing.T) {
	path := writeFile(t, oidcFile)
	writeSecret(t, filepath.Dir(path), "s3cret-value", 0o600)
	live, err := LoadLive(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{
		threeKeysFile([3]string{"alice", "", ""}),
		strings.Replace(oidcFile, "client_id: tether-lab", "client_id: other", 1),
	} {
		os.WriteFile(path, []byte(text), 0o644)
		if err := live.Reload(path); err == nil || !strings.Contains(err.Error(), "cannot change while tether serve runs") {
			t.Errorf("Reload = %v; want the mode/oidc change refused", err)
		}
		if live.Policy().Mode() != ModeOIDC || live.OIDC().ClientID != "tether-lab" || !live.Member("eve@umich.edu") {
			t.Error("a refused reload changed the policy")
		}
	}
	// The groups may change.
	os.WriteFile(path, []byte(strings.Replace(oidcFile, `"*@*"`, `"*@example.org"`, 1)), 0o644)
	if err := live.Reload(path); err != nil {
		t.Fatal(err)
	}
	if live.Member("eve@gmail.com") || !live.Member("x@example.org") {
		t.Error("the new groups are not in force")
	}
}

// TestLiveConcurrent: readers and reloads at once (run with -race).
func TestLiveConcurrent(t *testing.T) {
	path := writeFile(t, threeKeysFile([3]string{"alice", "bob", ""}))
	other := writeFile(t, threeKeysFile([3]string{"alice", "", "carol"}))
	live, err := LoadLive(path)
	if err != nil {
		t.Fatal(err)
	}
	live.Key(keyN(0)) // cached: alice stays in every version
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	deadline := time.Now().Add(300 * time.Millisecond)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if name, ok := live.Key(keyN(0)); !ok || name != "alice" {
					errs <- fmt.Errorf("Key(alice's) = %q, %v during reloads", name, ok)
					return
				}
				live.MayOpen("bob", "app1")
				live.Apps("carol")
				live.Paths("alice")
				live.Member("x@y")
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; time.Now().Before(deadline); i++ {
			if err := live.Reload([]string{path, other}[i%2]); err != nil {
				errs <- err
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// BenchmarkKeyCached: a key already verified (the gate asks on every request).
func BenchmarkKeyCached(b *testing.B) {
	p, err := Load(writeFile(b, threeKeysFile([3]string{"alice", "bob", "carol"})))
	if err != nil {
		b.Fatal(err)
	}
	p.Key(keyN(2))
	for b.Loop() {
		if _, ok := p.Key(keyN(2)); !ok {
			b.Fatal("refused")
		}
	}
}

// BenchmarkKeyFirst: a key seen for the first time, with three hashes configured.
func BenchmarkKeyFirst(b *testing.B) {
	p, err := Load(writeFile(b, threeKeysFile([3]string{"alice", "bob", "carol"})))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		p.cache = newKeyCache()
		if _, ok := p.Key(keyN(2)); !ok {
			b.Fatal("refused")
		}
	}
}

// team is tokenserver.Team as TEAM17.md fixes it (access may not import tokenserver):
// Policy and Live implement it.
type team interface {
	Key(key string) (name string, ok bool)
	Member(email string) bool
	MayOpen(user, app string) bool
}

var _, _ team = (*Policy)(nil), (*Live)(nil)

// TestAppNames: every app a key or group names, "*" left out, for serve to check
// against the apps it serves.
func TestAppNames(t *testing.T) {
	p, err := parse("t.yml", []byte(threeKeysFile([3]string{"a", "b", ""})+"  c:\n    hash: "+threeHashes[2]+"\n    apps: [\"*\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(p.AppNames(), ","); got != "app0,app1" {
		t.Errorf("AppNames() = %q; want app0,app1", got)
	}
}
