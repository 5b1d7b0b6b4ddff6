package tokenserver

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
)

// Upstream.Host: pass-through keeps the client's Host; loopback sends 127.0.0.1:PORT
// to a TCP app and localhost to one on a socket, whatever Host the client used.
func TestProxyHostPolicy(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		for _, policy := range []HostPolicy{HostPassThrough, HostLoopback} {
			backend := &recordingApp{}
			up := startBackend(t, network, backend)
			up.Host = policy
			g := newGate(t, func(o *Options) {
				o.App = NewProxy(up, o.Logger)
				o.AllowHosts = []string{"gpu-box.example"}
			})
			base := g.served()
			port := base[strings.LastIndexByte(base, ':')+1:]
			for _, host := range []string{"127.0.0.1:" + port, "gpu-box.example:" + port} {
				r, _ := http.NewRequest("GET", base+"/x", nil)
				r.Host = host
				r.Header.Set("Authorization", "token "+g.token)
				resp, body := get(t, client(t), r)
				if resp.StatusCode != 200 || body != "app ok" {
					t.Fatalf("%s %d Host %s: %d %q", network, policy, host, resp.StatusCode, body)
				}
				seen := backend.last(t).Host
				want := host
				if policy == HostLoopback {
					want = "localhost"
					if network == "tcp" {
						want = up.Address
					}
				}
				if seen != want {
					t.Errorf("%s policy %d, client Host %s: the app saw Host %q; want %q", network, policy, host, seen, want)
				}
			}
		}
	}
}

// Upstream.Secrets: an app that echoes its injected secret (in a header, in a page, in
// a link's query) gives the client none of it; a binary body has it overwritten, its
// length kept; the app is asked for uncompressed bodies so that they can be scrubbed.
func TestProxyNeverReflectsAppSecret(t *testing.T) {
	const secret = "AppSecret_0123456789abcdefghijklmnopqrstuvw"
	var sawAcceptEncoding []string
	backend := &recordingApp{handler: func(w http.ResponseWriter, r *http.Request) {
		sawAcceptEncoding = append(sawAcceptEncoding, r.Header.Get("Accept-Encoding"))
		got := strings.TrimPrefix(r.Header.Get("Authorization"), "token ")
		w.Header().Set("X-Echo", got)
		w.Header().Add("Set-Cookie", "app-login="+got+"; Path=/")
		w.Header().Add("Set-Cookie", "_xsrf=abc; Path=/")
		switch r.URL.Path {
		case "/page":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, `<body data-jupyter-api-token="`+got+`"><a href="/tree?token=`+got+`">home</a> <a href="/x?a=1&amp;token=`+got+`&b=2">x</a> {"token": "`+got+`"}</body>`)
		case "/bin":
			w.Header().Set("Content-Type", "application/octet-stream")
			io.WriteString(w, "bin:"+got)
		}
	}}
	up := startBackend(t, "tcp", backend)
	up.Header = http.Header{"Authorization": {"token " + secret}}
	up.Secrets = []string{secret}
	g := newGate(t, func(o *Options) { o.App = NewProxy(up, o.Logger) })
	base := g.served()

	r, _ := http.NewRequest("GET", base+"/page", nil)
	r.Header.Set("Authorization", "token "+g.token)
	r.Header.Set("Accept-Encoding", "gzip")
	resp, body := get(t, client(t), r)
	if resp.StatusCode != 200 {
		t.Fatalf("page: %d", resp.StatusCode)
	}
	if strings.Contains(body, secret) || resp.Header.Get("X-Echo") != "" {
		t.Errorf("the secret came back: X-Echo %q, body %q", resp.Header.Get("X-Echo"), body)
	}
	for _, c := range resp.Cookies() {
		if strings.Contains(c.Value, secret) || c.Name == "app-login" {
			t.Errorf("the cookie holding the secret came back: %v", c)
		}
	}
	if len(resp.Cookies()) != 1 || resp.Cookies()[0].Name != "_xsrf" {
		t.Errorf("the app's other cookie should pass: %v", resp.Cookies())
	}
	want := `<body data-jupyter-api-token=""><a href="/tree?">home</a> <a href="/x?a=1&amp;&b=2">x</a> {"token": ""}</body>`
	if body != want {
		t.Errorf("page body\n got %q\nwant %q", body, want)
	}
	r, _ = http.NewRequest("GET", base+"/bin", nil)
	r.Header.Set("Authorization", "token "+g.token)
	if resp, body := get(t, client(t), r); body != "bin:"+strings.Repeat("*", len(secret)) || resp.ContentLength != int64(len(body)) {
		t.Errorf("a binary body: %q (length %d); want the secret overwritten, length kept", body, resp.ContentLength)
	}
	for _, ae := range sawAcceptEncoding {
		if ae != "identity" {
			t.Errorf("the app was offered Accept-Encoding %q; want identity, so that bodies can be scrubbed", ae)
		}
	}
}

// The scrubbing reader finds secrets split across reads of any size, cuts NAME=secret
// pairs whole, and leaves everything else byte for byte.
func TestScrubReader(t *testing.T) {
	secrets := []string{"SECRETsecret0123456789", "otherSECRET-abcdefgh"}
	s := newScrubber(append(secrets, "short"))
	var in, want bytes.Buffer
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		switch rng.IntN(6) {
		case 0:
			in.WriteString(secrets[rng.IntN(2)])
		case 1:
			in.WriteString("?token=" + secrets[0])
			want.WriteString("?")
		case 2:
			in.WriteString("&access_token=" + secrets[1] + "&")
			want.WriteString("&&")
		case 3:
			in.WriteString(" x=" + secrets[0]) // no separator before the name: the name stays
			want.WriteString(" x=")
		default:
			w := strings.Repeat(string(rune('a'+rng.IntN(26))), rng.IntN(40)) + "short SECRET ="
			in.WriteString(w)
			want.WriteString(w)
		}
	}
	for _, size := range []int{1, 2, 7, 64, 1 << 20} {
		z := newScrubReader(s, io.NopCloser(&chunked{b: in.Bytes(), n: size}), false)
		got, err := io.ReadAll(z)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want.Bytes()) {
			i := 0
			for i < len(got) && i < want.Len() && got[i] == want.Bytes()[i] {
				i++
			}
			t.Fatalf("read size %d: output differs at byte %d: got %q, want %q", size, i, got[max(0, i-20):min(len(got), i+40)], want.Bytes()[max(0, i-20):min(want.Len(), i+40)])
		}
	}
	if newScrubber([]string{"short", ""}) != nil {
		t.Errorf("values shorter than %d bytes must not be scrubbed", minSecretLen)
	}
}

// chunked hands out b at most n bytes per Read.
type chunked struct {
	b []byte
	n int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	k := min(len(p), c.n, len(c.b))
	copy(p, c.b[:k])
	c.b = c.b[k:]
	return k, nil
}
