//go:build unix

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// argvApp is the app of the tests below, given as python3 -c PROGRAM PORT FILE WORDS…:
// it writes WORDS to FILE as JSON (the new file renamed into place), then serves HTTP.
// The program itself is a hard word too: lines, quotes, a !.
const argvApp = `import sys, os, json, http.server
if len(sys.argv) < 3 or not sys.argv[1].isdigit():
    print("hi!", file=sys.stderr); sys.exit(2)
p = sys.argv[2]
with open(p + ".new", "w") as f:
    json.dump(sys.argv[3:], f)
os.rename(p + ".new", p)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), http.server.SimpleHTTPRequestHandler).serve_forever()
`

// argvWords are what every login shell used to mangle or choke on (tcsh: history on !,
// a newline "Unmatched '"; fish: \\ and \' inside single quotes), and the rest of
// what a shell might touch. (Not a bare ~ or ~/…: serve makes those the remote home,
// as the README says.)
var argvWords = []string{
	`print("hi!")`, "!!", "a!b c", "!$", `\`, `\\`, `a\\b`, `\'`, "'", `"`, "it's",
	"$HOME", "${x}", "$(id)", "`id`", "*", "?", "[x]", "[!0-9]", "{a,b}", "~root", "a~", "#c", "a #b",
	"line1\nline2", "t\tab", "", " ", "-n", "--", "é ü 漢字 🙂", "%s %b", `\0134`, "0", "a=b", ";&|<>()",
}

// A launch whose app command holds such words, by a user whose login shell is tcsh,
// and one whose shell is fish (sshd runs SHELL -c LINE): the app gets every word as
// typed. Real sshd; one launch per user (the first, which also installs tether in
// place through the same line).
func TestLaunchArgvUnderLoginShells(t *testing.T) {
	python := "/usr/bin/python3"
	NeedPython(t)
	shells := []string{"tcsh", "fish"}
	var users []User
	for _, sh := range shells {
		users = append(users, OtherUserWithShell(t, sh))
	}
	s, cfgs := sshdForUsers(t, SSHDOptions{}, users...)
	Binary(t)
	for i, sh := range shells {
		t.Run(sh, func(t *testing.T) {
			start := time.Now()
			file := filepath.Join(users[i].Home, "argv.json")
			args := append([]string{"launch", "-F", cfgs[i], s.Alias, "--no-browser", "--json", "--", python, "-c", argvApp, "{port}", file}, argvWords...)
			l := StartLauncher(t, args, true)
			defer l.Interrupt(t)
			t.Logf("%s: URL ready %s after the launch", sh, FmtDur(time.Since(start)))
			checkArgv(t, sh, file, l)
		})
	}
}

// The same words through a Slurm job (the batch script runs them with /bin/sh).
func TestSlurmLaunchArgv(t *testing.T) {
	NeedPython(t)
	site := StartSlurmSite(t, SlurmOptions{})
	Binary(t)
	dir := t.TempDir()
	os.Chmod(dir, 0o777) // whoever the job runs as
	file := filepath.Join(dir, "argv.json")
	l := site.Launch(t, "-t 5", append([]string{"--no-browser", "--", "/usr/bin/python3", "-c", argvApp, "{port}", file}, argvWords...)...)
	defer func() {
		l.Interrupt(t)
		if _, errOut, code := RunTether(t, site.Args("stop", l.Line.Session.ID)...); code != 0 {
			t.Errorf("stop: exit %d: %s", code, errOut)
		}
	}()
	checkArgv(t, "a Slurm job", file, l)
}

// checkArgv compares the words argvApp wrote to file with argvWords.
func checkArgv(t *testing.T, where, file string, l *Launched) {
	t.Helper()
	var got []string
	data, err := os.ReadFile(file)
	if err != nil || json.Unmarshal(data, &got) != nil {
		t.Fatalf("the app wrote no argv (%v): %q\nlauncher: %s", err, data, l.Stderr.String())
	}
	if slices.Equal(got, argvWords) {
		return
	}
	for j := range max(len(got), len(argvWords)) {
		var g, w string
		if j < len(got) {
			g = got[j]
		}
		if j < len(argvWords) {
			w = argvWords[j]
		}
		if g != w {
			t.Errorf("word %d: the app got %q, want %q", j, g, w)
		}
	}
	t.Fatalf("under %s the app got %d words, want %d:\n%q", where, len(got), len(argvWords), strings.Join(got, "|"))
}
