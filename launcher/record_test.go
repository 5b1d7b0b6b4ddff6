package launcher

import (
	"bufio"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/wire"
)

func goodRecord() wire.Record {
	return wire.Record{ID: "abcdefgh", Name: "lab", PID: 4242, Host: "gpu-box", Socket: "/run/user/1000/tether/abcdefgh/server.sock",
		Token: "0123456789abcdefghijABCDEFGHIJ_-0123456789a", BaseURL: "/", Command: []string{"jupyter", "lab"},
		Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Version: "v1"}
}

func recordLine(t testing.TB, r wire.Record) string {
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// eqSecret compares secrets in constant time (tokenserver's lint wants it everywhere).
func eqSecret(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// readRecord is readAnswer for a record: a failure is an error here.
func readRecord(br *bufio.Reader) (wire.Record, error) {
	r, f, err := readAnswer(br)
	if f != nil {
		return r, errors.New("a failure: " + f.Error())
	}
	return r, err
}

// serve's answer may be its failure, as data; a hostile one is refused whole.
func TestReadAnswerFailure(t *testing.T) {
	f := wire.Fail(wire.FailNameTaken, wire.Textf("a session named %q is already running (abcd2345)", "nb"),
		wire.Textf("stop it with %v or pick another --name", wire.Tether("stop", "nb")))
	_, got, err := readAnswer(bufio.NewReader(strings.NewReader("chatter\n" + string(f.Line()))))
	if err != nil || got == nil || got.Kind != wire.FailNameTaken || got.Advice.String() != "stop it with `tether stop nb` or pick another --name" {
		t.Fatalf("got %+v, %v", got, err)
	}
	for name, line := range map[string]string{
		"app output escape": `{"error":"x","hint":"","app_output":["\u001b]52;c;ZXZpbA==\u0007"]}`,
		"too many lines":    `{"error":"x","hint":"","app_output":[` + strings.Repeat(`"a",`, 30) + `"a"]}`,
		"bad session":       `{"error":"x","hint":"","app_output":[],"session":"../../x"}`,
		"two kinds in part": `{"error":"x","hint":"","app_output":[],"said":[{"text":"a","machine":"b"}]}`,
	} {
		if _, f, err := readAnswer(bufio.NewReader(strings.NewReader(line + "\n"))); err == nil {
			t.Errorf("%s: accepted %+v", name, f)
		}
	}
}

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
	mod := func(f func(*wire.Record)) string {
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
		"relative socket": mod(func(r *wire.Record) { r.Socket = "server.sock" }),
		"socket escapes":  mod(func(r *wire.Record) { r.Socket = "/tmp/../etc/x" }),
		"bad token":       mod(func(r *wire.Record) { r.Token = "short" }),
		"token with nl":   mod(func(r *wire.Record) { r.Token = "0123456789abcdef\nSet-Cookie: x" }),
		"base url":        mod(func(r *wire.Record) { r.BaseURL = "//evil.example/" }),
		"remote url":      mod(func(r *wire.Record) { r.URL = "http://evil.example:80/" }),
		"tls no pin":      mod(func(r *wire.Record) { r.TLS = true }),
		"pid":             mod(func(r *wire.Record) { r.PID = -1 }),
		"host escapes":    mod(func(r *wire.Record) { r.Host = "x\x1b[2J" }),
		"not running":     mod(func(r *wire.Record) { r.State = wire.StateDead }),
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
	a.State, b.ID, b.Name, b.State = wire.StateRunning, "zzzzzzzz", "", wire.StateRunning
	hostile := goodRecord()
	hostile.ID, hostile.Socket, hostile.State = "hhhhhhhh", "relative", wire.StateRunning
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
	mk := func(id, name, state string, age time.Duration) wire.Record {
		r := goodRecord()
		r.ID, r.Name, r.State, r.Started = id, name, state, time.Now().Add(-age)
		return r
	}
	old := mk("aaaaaaaa", "lab", wire.StateRunning, time.Hour)
	newer := mk("abbbbbbb", "", wire.StateRunning, time.Minute)
	exited := mk("cccccccc", "web", wire.StateAppExited, 2*time.Hour)
	all := []wire.Record{old, newer, exited}

	tests := []struct {
		name, target string
		recs         []wire.Record
		want         string // id, or "error: substring"
		note         bool
	}{
		{"none", "", nil, "error: no running tether session on gpu-box", false},
		{"only exited", "", []wire.Record{exited}, "error: cccccccc (web) app-exited", false},
		{"the only one", "", []wire.Record{old, exited}, "aaaaaaaa", false},
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
