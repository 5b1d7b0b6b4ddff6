package access

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// writeFile writes an access file (mode 0644: an access file may be public) into a
// fresh directory and returns its path.
func writeFile(t testing.TB, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "team.yml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeSecret writes a client secret file next to the access file at path.
func writeSecret(t testing.TB, dir, secret string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, "oidc-secret")
	if err := os.WriteFile(p, []byte(secret), mode); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, mode)
	return p
}

// oidcFile is a good oidc-mode file, its keys hashing testKey; the secret file
// (oidc-secret, next to it) is written by loadOIDC.
var oidcFile = `# a lab's team server
access_control: oidc
oidc:
  issuer: https://login.example.org
  client_id: tether-lab
  client_secret_file: oidc-secret
  redirect_url: https://lab.example.org:8443/_tether/oidc/callback
user_groups:
  lab:
    emails: ["*@umich.edu", Bob@Gmail.com]
    apps: [nb, site]
    paths:
      read: [/data/shared, ~/www/../www]
      write: [~/www]
      load_default: /data/shared/in
  everyone:
    emails: ["*@*"]
    apps: site
  admins:
    emails: [boss@umich.edu]
    apps: ["*"]
    paths: {read: [/srv], load_default: /srv}
keys:
  nightly-job:
    hash: ` + testHash + `
    apps: [nb]
    paths: {write: [/data/out]}
`

func loadOIDC(t testing.TB, text string) *Policy {
	t.Helper()
	p := writeFile(t, text)
	writeSecret(t, filepath.Dir(p), "s3cret-value\n", 0o600)
	pol, err := Load(p)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return pol
}

func TestLoadOIDC(t *testing.T) {
	t.Setenv("HOME", "/home/lab")
	p := loadOIDC(t, oidcFile)
	if p.Mode() != ModeOIDC {
		t.Errorf("Mode = %q", p.Mode())
	}
	want := OIDCConfig{Issuer: "https://login.example.org", ClientID: "tether-lab", ClientSecret: "s3cret-value", RedirectURL: "https://lab.example.org:8443/_tether/oidc/callback"}
	if c := p.OIDC(); c == nil || *c != want {
		t.Errorf("OIDC = %#v; want %#v", c, want)
	}
	for _, s := range []string{fmt.Sprint(*p.OIDC()), fmt.Sprintf("%+v", p.OIDC()), fmt.Sprintf("%#v", *p.OIDC())} {
		if strings.Contains(s, "s3cret") {
			t.Errorf("the client secret is printed: %s", s)
		}
	}
	tests := []struct {
		user  string
		apps  []string
		paths Paths
	}{
		{"eve@umich.edu", []string{"nb", "site"}, Paths{Read: []string{"/data/shared", "/home/lab/www"}, Write: []string{"/home/lab/www"}, LoadDefault: "/data/shared/in"}},
		{"BOB@gmail.com", []string{"nb", "site"}, Paths{Read: []string{"/data/shared", "/home/lab/www"}, Write: []string{"/home/lab/www"}, LoadDefault: "/data/shared/in"}},
		{"eve@gmail.com", []string{"site"}, Paths{}},
		{"boss@umich.edu", []string{"*"}, Paths{Read: []string{"/data/shared", "/home/lab/www", "/srv"}, Write: []string{"/home/lab/www"}, LoadDefault: "/data/shared/in"}},
		{"nightly-job", []string{"nb"}, Paths{Write: []string{"/data/out"}}},
		{"eve@umich.edu.evil.com", []string{"site"}, Paths{}}, // only through *@*
		{"removed-key", nil, Paths{}},
		{"owner", nil, Paths{}},
		{"not an address@", nil, Paths{}},
	}
	for _, tt := range tests {
		if got := p.Apps(tt.user); !reflect.DeepEqual(got, tt.apps) {
			t.Errorf("Apps(%q) = %q; want %q", tt.user, got, tt.apps)
		}
		if got := p.Paths(tt.user); !reflect.DeepEqual(got, tt.paths) {
			t.Errorf("Paths(%q) = %#v; want %#v", tt.user, got, tt.paths)
		}
	}
	may := []struct {
		user, app string
		want      bool
	}{
		{"eve@umich.edu", "nb", true},
		{"eve@umich.edu", "site", true},
		{"eve@umich.edu", "other", false},
		{"eve@umich.edu", "", false},
		{"eve@gmail.com", "nb", false},
		{"eve@gmail.com", "site", true},
		{"boss@umich.edu", "anything", true},
		{"nightly-job", "nb", true},
		{"nightly-job", "site", false},
		{"removed-key", "nb", false},
		{"owner", "nb", false},
	}
	for _, tt := range may {
		if got := p.MayOpen(tt.user, tt.app); got != tt.want {
			t.Errorf("MayOpen(%q, %q) = %v; want %v", tt.user, tt.app, got, tt.want)
		}
	}
	for email, want := range map[string]bool{"eve@umich.edu": true, "x@y": true, "@y": false, "x@y@z": false, "": false} {
		if got := p.Member(email); got != want {
			t.Errorf("Member(%q) = %v; want %v", email, got, want)
		}
	}
}

func TestLoadKeys(t *testing.T) {
	p, err := Load(writeFile(t, "access_control: keys\nkeys:\n  alice:\n    hash: "+testHash+"\n    apps: \"*\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p.OIDC() != nil || p.Mode() != ModeKeys {
		t.Errorf("OIDC = %v, Mode = %q; want nil, keys", p.OIDC(), p.Mode())
	}
	if !p.MayOpen("alice", "nb") || !reflect.DeepEqual(p.Apps("alice"), []string{"*"}) {
		t.Errorf("alice with apps \"*\": MayOpen nb = %v, Apps = %q", p.MayOpen("alice", "nb"), p.Apps("alice"))
	}
	if p.Member("eve@umich.edu") || p.MayOpen("eve@umich.edu", "nb") {
		t.Error("an e-mail is a member in keys mode")
	}
}

// TestLoadErrors: each kind of mistake is named with FILE:LINE and what to do.
func TestLoadErrors(t *testing.T) {
	t.Setenv("HOME", "/home/lab")
	h := testHash
	keyed := func(body string) string { return "access_control: keys\nkeys:\n  alice:\n" + body }
	tests := []struct {
		name, text string
		line       int
		want       string
	}{
		{"empty", "", 0, "is empty"},
		{"comments only", "# nothing\n", 0, "is empty"},
		{"not a mapping", "- keys\n", 1, "the file must be a mapping"},
		{"bad YAML", "access_control: keys\nkeys:\n  alice: [\n", 3, "not valid YAML"},
		{"tab indent", "access_control: keys\nkeys:\n\talice: {}\n", 3, "not valid YAML"},
		{"unquoted star", "access_control: keys\nkeys:\n  alice:\n    hash: " + h + "\n    apps: [*]\n", 5, `quote values that start with '*'`},
		{"unquoted star e-mail", "access_control: oidc\nuser_groups:\n  lab:\n    emails: [*@umich.edu]\n", 4, `quote values that start with '*'`},
		{"two documents", "access_control: keys\n---\naccess_control: oidc\n", 2, "second YAML document"},
		{"unknown top key", "access_control: keys\nkey:\n  alice: {}\n", 2, `unknown key "key" in the file; did you mean "keys"?`},
		{"unknown far key", "access_control: keys\nfrobnicate: 1\n", 2, `unknown key "frobnicate" in the file; it may have access_control, keys, user_groups, oidc`},
		{"MDI's paths", "access_control: keys\nuser_group:\n  x: {}\n", 2, `did you mean "user_groups"?`},
		{"duplicate top key", "access_control: keys\naccess_control: oidc\n", 2, `"access_control" appears twice in the file (first at line 1)`},
		{"no access_control", "keys:\n  alice:\n    hash: " + h + "\n    apps: [nb]\n", 1, "access_control is missing"},
		{"oauth2", "access_control: oauth2\n", 1, "is called oidc here"},
		{"null mode", "access_control: null\n", 1, "must be keys or oidc"},
		{"typo mode", "access_control: key\n", 1, `did you mean keys?`},
		{"no keys", "access_control: keys\n", 1, "lists no keys"},
		{"empty keys", "access_control: keys\nkeys:\n", 1, "lists no keys"},
		{"keys not a mapping", "access_control: keys\nkeys: [alice]\n", 2, "keys must be a mapping of NAME"},
		{"duplicate key name", keyed("    hash: " + h + "\n    apps: [nb]\n  alice:\n    hash: " + h + "\n    apps: [nb]\n"), 6, `"alice" appears twice in keys (first at line 3)`},
		{"unknown key field", keyed("    hash: " + h + "\n    app: [nb]\n"), 5, `unknown key "app" in key "alice"; did you mean "apps"?`},
		{"no hash", keyed("    apps: [nb]\n"), 3, `key "alice" has no hash`},
		{"empty hash", keyed("    hash:\n    apps: [nb]\n"), 4, `key "alice"'s hash is empty`},
		{"hash is the key", keyed("    hash: " + testKey + "\n    apps: [nb]\n"), 4, `key "alice"'s hash: not a PHC string`},
		{"truncated hash", keyed("    hash: " + h[:len(h)-3] + "\n    apps: [nb]\n"), 4, `the hash is not 32 bytes of unpadded base64 (was the line cut short?)`},
		{"bcrypt hash", keyed("    hash: $2y$10$abcdefghijklmnopqrstuv\n    apps: [nb]\n"), 4, `not a PHC string`},
		{"absurd memory", keyed("    hash: " + strings.Replace(h, "m=19456", "m=4194304", 1) + "\n    apps: [nb]\n"), 4, `above the 65536 KiB`},
		{"same hash twice", keyed("    hash: " + h + "\n    apps: [nb]\n  bob:\n    hash: " + h + "\n    apps: [nb]\n"), 7, `key "bob" has the same hash as key "alice"`},
		{"bad key name", "access_control: keys\nkeys:\n  bob@lab:\n    hash: " + h + "\n    apps: [nb]\n", 3, `key name "bob@lab" is not valid`},
		{"key named owner", "access_control: keys\nkeys:\n  Owner:\n    hash: " + h + "\n    apps: [nb]\n", 3, `may not be named "Owner"`},
		{"no apps", keyed("    hash: " + h + "\n"), 3, `key "alice" has no apps`},
		{"empty apps", keyed("    hash: " + h + "\n    apps: []\n"), 5, `key "alice"'s apps is empty`},
		{"bad app", keyed("    hash: " + h + "\n    apps: [nb, \"a b\"]\n"), 5, `"a b" is not an app name`},
		{"apps a mapping", keyed("    hash: " + h + "\n    apps: {nb: 1}\n"), 5, `apps must be a list`},
		{"relative path", keyed("    hash: " + h + "\n    apps: [nb]\n    paths: {read: [data]}\n"), 6, `data is not an absolute path`},
		{"~user path", keyed("    hash: " + h + "\n    apps: [nb]\n    paths: {read: [~bob/data]}\n"), 6, `only ~/ (your own home)`},
		{"unknown paths key", keyed("    hash: " + h + "\n    apps: [nb]\n    paths:\n      reads: [/data]\n"), 7, `unknown key "reads" in key "alice"'s paths; did you mean "read"?`},
		{"load_default outside", keyed("    hash: " + h + "\n    apps: [nb]\n    paths:\n      read: [/data]\n      load_default: /etc\n"), 8, `load_default /etc is not within its read or write paths`},
		{"load_default sibling", keyed("    hash: " + h + "\n    apps: [nb]\n    paths:\n      read: [/data]\n      load_default: /data2\n"), 8, `not within`},
		{"alias", "access_control: keys\nkeys:\n  alice: &a\n    hash: " + h + "\n    apps: [nb]\n  bob: *a\n", 3, `anchors (&a) are not allowed`},
		{"merge", "access_control: keys\nkeys:\n  alice:\n    <<: {apps: [nb]}\n    hash: " + h + "\n", 4, `aliases and merges`},
		{"groups in keys mode", keyed("    hash: " + h + "\n    apps: [nb]\nuser_groups:\n  lab: {emails: [\"*@*\"], apps: [nb]}\n"), 6, "user_groups need access_control: oidc"},
		{"oidc in keys mode", keyed("    hash: " + h + "\n    apps: [nb]\noidc:\n  issuer: https://x\n"), 6, "an oidc section needs access_control: oidc"},
		{"oidc without section", "access_control: oidc\nuser_groups:\n  lab: {emails: [\"*@*\"], apps: [nb]}\n", 1, "needs an oidc section"},
	}
	for _, tt := range tests {
		p := writeFile(t, tt.text)
		_, err := Load(p)
		var fe *FileError
		if err == nil || !errors.As(err, &fe) {
			t.Errorf("%s: Load = %v; want a FileError", tt.name, err)
			continue
		}
		prefix := p + ":"
		if tt.line > 0 {
			prefix = fmt.Sprintf("%s:%d: ", p, tt.line)
		}
		if fe.Line != tt.line || !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Load = %q; want line %d and %q", tt.name, err, tt.line, tt.want)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: the error is more than one line: %q", tt.name, err)
		}
	}
}

// TestLoadOIDCErrors: the oidc section and the groups, one mistake at a time in the
// good file.
func TestLoadOIDCErrors(t *testing.T) {
	t.Setenv("HOME", "/home/lab")
	tests := []struct {
		name, old, new string
		line           int
		want           string
	}{
		{"no issuer", "  issuer: https://login.example.org\n", "", 3, "oidc has no issuer"},
		{"http issuer", "https://login.example.org", "http://login.example.org", 4, "must use https (http only on this machine's loopback)"},
		{"not a URL", "https://login.example.org", "login.example.org", 4, "is not a URL"},
		{"redirect without path", "https://lab.example.org:8443/_tether/oidc/callback", "https://lab.example.org:8443/", 7, "needs a path of its own"},
		{"unknown oidc key", "  client_id:", "  clientid:", 5, `unknown key "clientid" in oidc; did you mean "client_id"?`},
		{"no secret file", "  client_secret_file: oidc-secret\n", "", 3, "oidc has no client_secret_file"},
		{"missing secret file", "client_secret_file: oidc-secret", "client_secret_file: nope", 6, "nope: no such file or directory"},
		{"no groups", "user_groups:\n  lab:\n    emails: [\"*@umich.edu\", Bob@Gmail.com]\n    apps: [nb, site]\n    paths:\n      read: [/data/shared, ~/www/../www]\n      write: [~/www]\n      load_default: /data/shared/in\n  everyone:\n    emails: [\"*@*\"]\n    apps: site\n  admins:\n    emails: [boss@umich.edu]\n    apps: [\"*\"]\n    paths: {read: [/srv], load_default: /srv}\n", "", 2, "lists no user_groups"},
		{"bad wildcard", `"*@*"`, `"alice@*"`, 17, `user group "everyone": "alice@*" allows that name at any domain`},
		{"domain suffix wildcard", `"*@*"`, `"*@*.umich.edu"`, 17, `is not a domain name`},
		{"empty emails", `emails: ["*@*"]`, `emails: []`, 17, `user group "everyone"'s emails is empty`},
		{"no emails", "    emails: [\"*@*\"]\n", "", 16, `user group "everyone" has no emails`},
		{"unknown group key", "    apps: site\n", "    apps: site\n    email: [x@y]\n", 19, `unknown key "email" in user group "everyone"; did you mean "emails"?`},
		{"group name", "  everyone:", "  every one:", 16, `group name "every one" is not valid`},
	}
	for _, tt := range tests {
		if !strings.Contains(oidcFile, tt.old) {
			t.Fatalf("%s: %q is not in the file", tt.name, tt.old)
		}
		p := writeFile(t, strings.Replace(oidcFile, tt.old, tt.new, 1))
		writeSecret(t, filepath.Dir(p), "s3cret-value\n", 0o600)
		_, err := Load(p)
		var fe *FileError
		if err == nil || !errors.As(err, &fe) || fe.Line != tt.line || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Load = %v; want line %d and %q", tt.name, err, tt.line, tt.want)
		}
	}
}

func TestClientSecretFile(t *testing.T) {
	text := oidcFile
	t.Run("group-readable", func(t *testing.T) {
		p := writeFile(t, text)
		sp := writeSecret(t, filepath.Dir(p), "s3cret-value\n", 0o640)
		_, err := Load(p)
		want := fmt.Sprintf("%s:6: oidc's client_secret_file %s can be read or changed by other users (mode 0640); chmod 600 %s", p, sp, sp)
		if err == nil || err.Error() != want {
			t.Errorf("Load = %v; want %q", err, want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("the error shows the secret: %v", err)
		}
	})
	t.Run("world-readable", func(t *testing.T) {
		p := writeFile(t, text)
		writeSecret(t, filepath.Dir(p), "s3cret-value\n", 0o604)
		if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("Load = %v; want chmod 600", err)
		}
	})
	t.Run("empty", func(t *testing.T) {
		p := writeFile(t, text)
		writeSecret(t, filepath.Dir(p), "\n", 0o600)
		if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "is empty; put the client secret in it") {
			t.Errorf("Load = %v; want empty", err)
		}
	})
	t.Run("two lines", func(t *testing.T) {
		p := writeFile(t, text)
		writeSecret(t, filepath.Dir(p), "s3cret-value\nmore-s3cret\n", 0o600)
		_, err := Load(p)
		if err == nil || !strings.Contains(err.Error(), "more than one line") || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Load = %v; want more than one line, without the secret", err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		p := writeFile(t, text)
		_, err := Load(p)
		want := fmt.Sprintf("%s:6: oidc's client_secret_file %s: no such file or directory", p, filepath.Join(filepath.Dir(p), "oidc-secret"))
		if err == nil || err.Error() != want {
			t.Errorf("Load = %v; want %q", err, want)
		}
	})
	t.Run("under home", func(t *testing.T) {
		home := t.TempDir()
		t.Setenv("HOME", home)
		writeSecret(t, home, "home-s3cret", 0o600)
		pol, err := Load(writeFile(t, strings.Replace(text, "client_secret_file: oidc-secret", "client_secret_file: ~/oidc-secret", 1)))
		if err != nil || subtle.ConstantTimeCompare([]byte(pol.OIDC().ClientSecret), []byte("home-s3cret")) != 1 {
			t.Errorf("Load = %v, %v; want the secret from ~/oidc-secret", pol, err)
		}
	})
}

func TestAccessFileWritableByOthers(t *testing.T) {
	p := writeFile(t, "access_control: keys\nkeys:\n  alice:\n    hash: "+testHash+"\n    apps: [nb]\n")
	os.Chmod(p, 0o664)
	_, err := Load(p)
	want := fmt.Sprintf("%s: can be changed by other users (mode 0664), who could give themselves a key or a group; chmod go-w %s", p, p)
	if err == nil || err.Error() != want {
		t.Errorf("Load = %v; want %q", err, want)
	}
	_, err = Load(p + ".missing")
	if err == nil || !strings.Contains(err.Error(), "cannot read it: no such file or directory") {
		t.Errorf("Load of a missing file = %v", err)
	}
}
