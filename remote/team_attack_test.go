//go:build unix

package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tether-dev/tether/access"
	"github.com/tether-dev/tether/tokenserver"
)

// Attacks on a team server through the real gate (tokenserver) and the real access
// policy (access.Live: argon2id keys, reloads), served on loopback.

var _ tokenserver.KeyStamps = (*access.Live)(nil)

// Two keys, hashed once for the tests of this file.
var (
	attackKeyA = "the first team key, long enough"
	attackKeyB = "the second team key, long enough"
	attackKeyC = "a third key, replacing the first"
	attackHash = sync.OnceValue(func() map[string]string {
		m := map[string]string{}
		for _, k := range []string{attackKeyA, attackKeyB, attackKeyC} {
			h, err := access.HashKey(k)
			if err != nil {
				panic(err)
			}
			m[k] = h
		}
		return m
	})
)

// attackPolicy is an access file: keys by name (name → key, apps), and with oidc a
// group for carol@example.org.
func attackPolicy(keys [][3]string, carolApps string) string {
	s := "access_control: keys\n"
	if carolApps != "" {
		s = "access_control: oidc\noidc:\n  issuer: https://login.example.org\n  client_id: lab\n" +
			"  client_secret_file: oidc-secret\n  redirect_url: https://lab.example.org/_tether/oidc/callback\n" +
			"user_groups:\n  lab:\n    emails: [carol@example.org]\n    apps: [" + carolApps + "]\n"
	}
	s += "keys:\n"
	for _, k := range keys {
		s += fmt.Sprintf("  %s:\n    hash: %s\n    apps: [%s]\n", k[0], attackHash()[k[1]], k[2])
	}
	return s
}

// stubSignIn stands in for the OIDC provider: the callback's ?email= is the verified
// address (the gate and the policy are what is under test).
type stubSignIn struct{}

func (stubSignIn) CallbackPath() string { return "/_tether/oidc/callback" }
func (stubSignIn) Start(w http.ResponseWriter, r *http.Request, next string) {
	http.Error(w, "no provider here", http.StatusNotFound)
}
func (stubSignIn) Finish(w http.ResponseWriter, r *http.Request) (string, string, error) {
	if e := r.URL.Query().Get("email"); e != "" {
		return e, "/", nil
	}
	return "", "", errors.New("no e-mail")
}

// realTeam is the real gate with the real policy, on 127.0.0.1, with apps nb, site
// and admin that answer "APP USER".
type realTeam struct {
	live   *access.Live
	dir    string
	base   string
	client *http.Client
	token  string
}

func newRealTeam(t *testing.T, policy string) *realTeam {
	t.Helper()
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "oidc-secret"), []byte("s3cret\n"), 0o600))
	file := filepath.Join(dir, "team.yml")
	must(t, os.WriteFile(file, []byte(policy), 0o600))
	live, err := access.LoadLive(file)
	if err != nil {
		t.Fatal(err)
	}
	var apps []tokenserver.NamedApp
	for _, n := range []string{"nb", "site", "admin"} {
		apps = append(apps, tokenserver.NamedApp{Name: n, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, n+" "+r.Header.Get(tokenserver.UserHeader))
		})})
	}
	tok, _ := tokenserver.NewToken()
	o := tokenserver.Options{Token: tok, Team: live, Apps: apps}
	if strings.Contains(policy, "oidc") {
		o.SignIn = stubSignIn{}
	}
	g, err := tokenserver.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go g.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		g.Shutdown(ctx)
	})
	return &realTeam{live: live, dir: dir, base: "http://" + ln.Addr().String(), token: tok,
		client: &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}}}
}

// reload writes the access file and reloads it, as SIGHUP does.
func (rt *realTeam) reload(t testing.TB, policy string) {
	file := filepath.Join(rt.dir, "team.yml")
	tmp := file + ".new"
	if err := os.WriteFile(tmp, []byte(policy), 0o600); err != nil {
		t.Error(err)
		return
	}
	if err := os.Rename(tmp, file); err != nil {
		t.Error(err)
		return
	}
	if err := rt.live.Reload(file); err != nil {
		t.Error(err)
	}
}

// get sends GET path with header pairs and returns status and body.
func (rt *realTeam) get(t testing.TB, path string, hdr ...string) (int, string) {
	r, _ := http.NewRequest("GET", rt.base+path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := rt.client.Do(r)
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// signIn signs in with a key by the login form and returns the Cookie header value.
func (rt *realTeam) signIn(t *testing.T, key string) string {
	t.Helper()
	resp := rt.postLogin(t, key)
	cs := resp.Cookies()
	if resp.StatusCode != http.StatusSeeOther || len(cs) != 1 {
		t.Fatalf("login form: %d, cookies %v; want 303 and a session cookie", resp.StatusCode, cs)
	}
	return cs[0].Name + "=" + cs[0].Value
}

// A key replaced under the same name (rotated after a leak) or renamed on reload: a
// session signed in with the old key must not live on under the name, with the
// rights of whatever key now holds it.
func TestTeamAttackKeyRotatedOrRenamed(t *testing.T) {
	a := attackPolicy([][3]string{{"alice", attackKeyA, "nb"}, {"bob", attackKeyB, "site"}}, "")
	rt := newRealTeam(t, a)
	cookie := rt.signIn(t, attackKeyA) // alice: nb
	if code, body := rt.get(t, "/nb/", "Cookie", cookie); code != 200 || body != "nb alice" {
		t.Fatalf("alice's cookie on nb: %d %q", code, body)
	}

	// The names swap: key A is now bob's (nb), key B alice's (site).
	rt.reload(t, attackPolicy([][3]string{{"bob", attackKeyA, "nb"}, {"alice", attackKeyB, "site"}}, ""))
	if code, body := rt.get(t, "/site/", "Cookie", cookie); code == 200 {
		t.Errorf("after the names swapped, key A's session opened site (%q), which only key B may open", body)
	}
	if code, body := rt.get(t, "/site/", "Authorization", "Bearer "+attackKeyA); code == 200 {
		t.Errorf("key A itself opened site (%q)", body)
	}
	if code, body := rt.get(t, "/nb/", "Authorization", "Bearer "+attackKeyA); code != 200 || body != "nb bob" {
		t.Errorf("key A on nb after the swap: %d %q; want 200 as bob", code, body)
	}

	// Rotation: alice's key replaced by a new one, same name, same rights.
	rt.reload(t, a)
	cookie = rt.signIn(t, attackKeyA)
	rt.reload(t, attackPolicy([][3]string{{"alice", attackKeyC, "nb"}, {"bob", attackKeyB, "site"}}, ""))
	if code, body := rt.get(t, "/nb/", "Cookie", cookie); code == 200 {
		t.Errorf("after alice's key was replaced, a session of the old key still opens nb (%q)", body)
	}
	if code, _ := rt.get(t, "/nb/", "Authorization", "Bearer "+attackKeyA); code == 200 {
		t.Error("the replaced key itself still opens nb")
	}
	fresh := rt.signIn(t, attackKeyC)
	if code, body := rt.get(t, "/nb/", "Cookie", fresh); code != 200 || body != "nb alice" {
		t.Errorf("the new key's session on nb: %d %q; want 200 as alice", code, body)
	}
}

// SIGHUP reloads racing requests (run with -race): keys by header, keys' and an OIDC
// member's cookies, while the policy swaps 100 times between two versions in which
// key A opens only nb and key B only site (under different names), and admin opens to
// nobody. No request may be judged half by one version and half by the other.
func TestTeamAttackReloadRace(t *testing.T) {
	a := attackPolicy([][3]string{{"alice", attackKeyA, "nb"}, {"bob", attackKeyB, "site"}}, "nb")
	b := attackPolicy([][3]string{{"bob", attackKeyA, "nb"}, {"alice", attackKeyB, "site"}}, "site")
	rt := newRealTeam(t, a)
	cookieA, cookieB := rt.signIn(t, attackKeyA), rt.signIn(t, attackKeyB)
	resp, err := rt.client.Get(rt.base + "/_tether/oidc/callback?email=carol@example.org")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 {
		t.Fatalf("the member's sign-in: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	cookieC := resp.Cookies()[0].Name + "=" + resp.Cookies()[0].Value

	var stop atomic.Bool
	var served atomic.Int64
	var wg sync.WaitGroup
	check := func(who, path string, may func(app string) bool, hdr ...string) {
		for !stop.Load() {
			code, body := rt.get(t, path, hdr...)
			app, _, _ := strings.Cut(body, " ")
			if code == 200 {
				served.Add(1)
				if !may(app) {
					t.Errorf("%s reached %s: %q", who, path, body)
				}
			}
		}
	}
	only := func(want string) func(string) bool { return func(app string) bool { return app == want } }
	for _, p := range []string{"/nb/", "/site/", "/admin/"} {
		wg.Go(func() { check("key A by header", p, only("nb"), "Authorization", "Bearer "+attackKeyA) })
		wg.Go(func() { check("key B by header", p, only("site"), "Authorization", "Bearer "+attackKeyB) })
		wg.Go(func() { check("key A's cookie", p, only("nb"), "Cookie", cookieA) })
		wg.Go(func() { check("key B's cookie", p, only("site"), "Cookie", cookieB) })
		wg.Go(func() {
			check("the member's cookie", p, func(app string) bool { return app == "nb" || app == "site" }, "Cookie", cookieC)
		})
	}
	for i := range 100 {
		rt.reload(t, []string{b, a}[i%2])
		time.Sleep(2 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("100 reloads, %d requests served meanwhile", served.Load())
}

// getFrom is get over a fresh connection from source address src (127.0.0.0/8).
func (rt *realTeam) getFrom(t testing.TB, src, path string, hdr ...string) int {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
	r, _ := http.NewRequest("GET", rt.base+path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(r)
	if err != nil {
		t.Error(err)
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// A stranger on the machine floods a team server listening on loopback with wrong
// keys, each from its own address of 127.0.0.2…127.0.0.250: on loopback all sources
// share one bucket (behind SSH everything comes from 127.0.0.1, and anyone on the
// machine may pick any 127.x address), so the flood empties it. The owner's token and
// the members' session cookies still get in; so does a key already verified since the
// server started (found again without hashing); only a key not seen before waits
// for the flood to stop (429).
func TestTeamAttackLoopbackFlood(t *testing.T) {
	rt := newRealTeam(t, attackPolicy([][3]string{{"alice", attackKeyA, "nb"}, {"bob", attackKeyB, "site"}}, ""))
	cookie := rt.signIn(t, attackKeyA) // alice signs in: her key is now known
	codes := map[int]int{}
	for i := 2; i <= 250; i++ {
		codes[rt.getFrom(t, fmt.Sprintf("127.0.0.%d", i), "/nb/", "Authorization", fmt.Sprintf("Bearer wrong-key-from-source-%03d", i))]++
	}
	t.Logf("249 wrong keys from 249 loopback sources: %v", codes)
	if codes[http.StatusTooManyRequests] < 200 {
		t.Errorf("answers %v; want the shared bucket empty after its 10 (429)", codes)
	}
	for _, c := range []struct {
		who  string
		want int
		hdr  []string
	}{
		{"the owner's token", 200, []string{"Authorization", "Bearer " + rt.token}},
		{"alice's cookie", 200, []string{"Cookie", cookie}},
		{"alice's key, verified before", 200, []string{"Authorization", "Bearer " + attackKeyA}},
		{"bob's key, never seen", 429, []string{"Authorization", "Bearer " + attackKeyB}},
	} {
		path := "/nb/"
		if strings.HasPrefix(c.who, "bob") {
			path = "/site/"
		}
		if got := rt.getFrom(t, "127.0.0.1", path, c.hdr...); got != c.want {
			t.Errorf("%s during the flood: %d; want %d", c.who, got, c.want)
		}
	}
}

// signInStatus posts the login form with value and returns the status.
func (rt *realTeam) signInStatus(t *testing.T, value string) int {
	t.Helper()
	return rt.postLogin(t, value).StatusCode
}

// postLogin posts the login form (same-origin, as the page's own form) with value; the
// answer's body is closed.
func (rt *realTeam) postLogin(t *testing.T, value string) *http.Response {
	t.Helper()
	r, _ := http.NewRequest("POST", rt.base+"/_tether/login", strings.NewReader(url.Values{"token": {value}, "next": {"/"}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Origin", rt.base)
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := rt.client.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// The stored hash presented as the key, and keys with spaces and non-ASCII letters,
// against real argon2id hashes through the real gate, by header and by login form:
// a key is its exact bytes (no Unicode normalization: the NFD spelling of an NFC key
// is another key, as in most password checks), the hash opens nothing.
func TestTeamAttackKeyForms(t *testing.T) {
	unicodeKey := "cl\u00e9 d'acc\u00e8s tr\u00e8s longue \u2603" // é, è precomposed (NFC)
	nfd := "cle\u0301 d'acce\u0300s tre\u0300s longue \u2603"     // the same, decomposed (NFD)
	spaced := "a key with   inner spaces"
	h1, err := access.HashKey(unicodeKey)
	must(t, err)
	h2, err := access.HashKey(spaced)
	must(t, err)
	rt := newRealTeam(t, attackPolicy([][3]string{{"alice", attackKeyA, "nb"}}, "")+
		"  uni:\n    hash: "+h1+"\n    apps: [nb]\n  spaced:\n    hash: '"+h2+"'\n    apps: [nb]\n")
	for _, c := range []struct {
		what, key string
		want      int
	}{
		{"key A's hash as the key", attackHash()[attackKeyA], 401},
		{"the non-ASCII key (NFC, as hashed)", unicodeKey, 200},
		{"the non-ASCII key decomposed (NFD)", nfd, 401},
		{"the key with inner spaces", spaced, 200},
		{"the key with its inner spaces squeezed", "a key with inner spaces", 401},
		{"key A with a zero-width space inside", "the first team\u200b key, long enough", 401},
	} {
		got := rt.getFrom(t, "127.0.0.1", "/nb/", "Authorization", "Bearer "+c.key)
		form := rt.signInStatus(t, c.key)
		if got != c.want {
			t.Errorf("%s by header: %d; want %d", c.what, got, c.want)
		}
		if want := map[int]int{200: 303, 401: 401}[c.want]; form != want {
			t.Errorf("%s by login form: %d; want %d", c.what, form, want)
		}
	}
	// A space after the key is HTTP's own whitespace in a header (not part of the
	// value), but part of what the form sends: the form refuses it.
	if got := rt.getFrom(t, "127.0.0.1", "/nb/", "Authorization", "Bearer "+attackKeyA+" "); got != 200 {
		t.Errorf("key A and a space by header: %d; want 200", got)
	}
	if got := rt.signInStatus(t, attackKeyA+" "); got != 401 {
		t.Errorf("key A and a space by login form: %d; want 401", got)
	}
}
