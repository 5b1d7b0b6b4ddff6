package launcher

import (
	"bufio"
	"crypto/subtle"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/remote"
)

func goodRecord() remote.Record {
	return remote.Record{ID: "abcdefgh", Name: "lab", PID: 4242, Host: "gpu-box", Socket: "/run/user/1000/tether/abcdefgh/server.sock",
		Token: "0123456789abcdefghijABCDEFGHIJ_-0123456789a", BaseURL: "/", Command: []string{"jupyter", "lab"},
		Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Version: "v1"}
}

func recordLine(t testing.TB, r remote.Record) string {
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// eqSecret compares secrets in constant time (tokenserver's lint wants it everywhere).
func eqSecret(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

func TestReadRecord(t *testing.T) {
	good := recordLine(t, goodRecord())
	rec, err := readRecord(bufio.NewReader(strings.NewReader("some chatter\n" + good + "\n")))
	if err != nil || rec.ID != "abcdefgh" || !eqSecret(rec.Token, goodRecord().Token) {
		t.Fatalf("got %+v, %v", rec, err)
	}
	// No trailing newline (serve died right after writing) still counts.
	if _, err := readRecord(bufio.NewReader(strings.NewReader(good))); err != nil {
		t.Errorf("record without newline: %v", err)
	}
}

func TestReadRecordHostile(t *testing.T) {
	mod := func(f func(*remote.Record)) string {
		r := goodRecord()
		f(&r)
		return recordLine(t, r)
	}
	tests := map[string]string{
		"empty":           "",
		"not json":        "{not json}\n",
		"array":           "[1,2]\n{\n",
		"trailing":        recordLine(t, goodRecord()) + " {}\n",
		"too long":        `{"id":"` + strings.Repeat("a", maxRecordLine+10) + "\"}\n",
		"no record":       strings.Repeat("x\n", maxProbeLines+5),
		"relative socket": mod(func(r *remote.Record) { r.Socket = "server.sock" }),
		"socket escapes":  mod(func(r *remote.Record) { r.Socket = "/tmp/../etc/x" }),
		"bad token":       mod(func(r *remote.Record) { r.Token = "short" }),
		"token with nl":   mod(func(r *remote.Record) { r.Token = "0123456789abcdef\nSet-Cookie: x" }),
		"base url":        mod(func(r *remote.Record) { r.BaseURL = "//evil.example/" }),
		"remote url":      mod(func(r *remote.Record) { r.URL = "http://evil.example:80/" }),
		"tls no pin":      mod(func(r *remote.Record) { r.TLS = true }),
		"pid":             mod(func(r *remote.Record) { r.PID = -1 }),
		"host escapes":    mod(func(r *remote.Record) { r.Host = "x\x1b[2J" }),
		"not running":     mod(func(r *remote.Record) { r.State = remote.StateDead }),
	}
	for name, in := range tests {
		if rec, err := readRecord(bufio.NewReader(strings.NewReader(in))); err == nil {
			t.Errorf("%s: accepted %+v", name, rec)
		}
	}
}

func FuzzReadRecord(f *testing.F) {
	f.Add(recordLine(f, goodRecord()) + "\n")
	f.Add("chatter\n{\"id\":\"x\"}\n")
	f.Fuzz(func(t *testing.T, in string) {
		rec, err := readRecord(bufio.NewReader(strings.NewReader(in)))
		if err == nil {
			if rec.Validate() != nil {
				t.Errorf("accepted a record that does not validate: %+v", rec)
			}
		}
	})
}

func TestDecodeListing(t *testing.T) {
	a, b := goodRecord(), goodRecord()
	a.State, b.ID, b.Name, b.State = remote.StateRunning, "zzzzzzzz", "", remote.StateRunning
	hostile := goodRecord()
	hostile.ID, hostile.Socket, hostile.State = "hhhhhhhh", "relative", remote.StateRunning
	raw, _ := json.Marshal([]any{a, b, hostile, map[string]any{"id": "deadbeef", "state": "dead"}, "junk", 42})
	recs, err := decodeListing(append([]byte("motd line\n"), raw...))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range recs {
		ids = append(ids, r.ID+":"+r.State)
	}
	if got := strings.Join(ids, ","); got != "abcdefgh:running,zzzzzzzz:running,deadbeef:dead" {
		t.Errorf("got %s", got)
	}
	for _, bad := range []string{"", "no json", "[", `{"a":1}`} {
		if _, err := decodeListing([]byte(bad)); err == nil {
			t.Errorf("for %q: no error", bad)
		}
	}
}

func TestPickSession(t *testing.T) {
	s := &session{host: "gpu-box"}
	mk := func(id, name, state string, age time.Duration) remote.Record {
		r := goodRecord()
		r.ID, r.Name, r.State, r.Started = id, name, state, time.Now().Add(-age)
		return r
	}
	old := mk("aaaaaaaa", "lab", remote.StateRunning, time.Hour)
	newer := mk("abbbbbbb", "", remote.StateRunning, time.Minute)
	exited := mk("cccccccc", "web", remote.StateAppExited, 2*time.Hour)
	all := []remote.Record{old, newer, exited}

	tests := []struct {
		name, target string
		recs         []remote.Record
		want         string // id, or "error: substring"
		note         bool
	}{
		{"none", "", nil, "error: no running tether session on gpu-box", false},
		{"only exited", "", []remote.Record{exited}, "error: cccccccc (web) app-exited", false},
		{"the only one", "", []remote.Record{old, exited}, "aaaaaaaa", false},
		{"newest of several", "", all, "abbbbbbb", true},
		{"by id", "aaaaaaaa", all, "aaaaaaaa", false},
		{"by name", "lab", all, "aaaaaaaa", false},
		{"by unique prefix", "ab", all, "abbbbbbb", false},
		{"ambiguous prefix", "a", all, "error: \"a\" matches 2 sessions on gpu-box", false},
		{"unknown", "zz", all, "error: no session \"zz\" on gpu-box; there are: aaaaaaaa (lab)", false},
		{"exited by name", "web", all, "error: the app of session cccccccc on gpu-box has exited", false},
	}
	for _, tt := range tests {
		r, note, err := pickSession(tt.recs, tt.target, s)
		got := r.ID
		if err != nil {
			got = "error: " + err.Error()
		}
		if !strings.HasPrefix(tt.want, "error: ") && got != tt.want || strings.HasPrefix(tt.want, "error: ") && !strings.Contains(got, strings.TrimPrefix(tt.want, "error: ")) {
			t.Errorf("%s: got %q; want %q", tt.name, got, tt.want)
		}
		if (note != "") != tt.note {
			t.Errorf("%s: note %q", tt.name, note)
		}
		if err != nil && strings.Contains(err.Error(), goodRecord().Token) {
			t.Errorf("%s: the message holds a token", tt.name)
		}
	}
}
