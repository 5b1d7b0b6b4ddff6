package launcher

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/tether-dev/tether/internal/shquote"
	"github.com/tether-dev/tether/internal/termsafe"
	"github.com/tether-dev/tether/wire"
)

// `tether apps HOST`: which presets HOST has, found over one SSH exec by a small
// /bin/sh script (tether need not be installed there). It looks up each preset's
// executables with `command -v` on the PATH of the user's login shell, started as a
// terminal starts it (interactive and login), which is where `tether launch HOST APP`
// looks (serve --login-shell), so what it finds is what launch would run.
//
// That shell runs the user's startup files, which may print anything, wait for input
// or hang. Its stdin is /dev/null (csh and tcsh read the two commands from a pipe
// that then ends), its stderr is dropped, and what it prints before a marker holding
// a random nonce (a startup file cannot print it by chance) is skipped; the line after
// the marker is the PATH. Where `timeout` exists (coreutils, busybox) the shell and
// what it started get 15 s, then SIGKILL (an interactive shell ignores SIGTERM);
// Apps' own deadline bounds the rest. A shell that gives no PATH (no answer in time,
// `exit` in a startup file, or a shell tether does not speak, such as fish) leaves the
// script on its own PATH, and `tether apps` says so.

const (
	appTag     = "tether-app v1 "
	appDoneTag = "tether-apps-done v1"
	appEnvTag  = "tether-apps-env v1 "
)

// loginShellWait bounds the login shell in the detection script (seconds).
var loginShellWait = 15

// loginPathScript sets PATH (and PYTHONPATH, for uiScript's Python) to those of the
// user's login shell ($SHELL) and prints "tether-apps-env v1 login", or prints
// "tether-apps-env v1 plain" and leaves them alone. POSIX shells take -i -l -c; csh
// and tcsh take -l only alone, so they read the commands on stdin. The marker starts a
// line of its own (a startup file's prompt may have left one open); the shell prints
// PATH, the marker again and PYTHONPATH (an empty line when unset), and L returns as
// soon as it has them: a process a startup file left running with the pipe open does
// not hold it up. L joins the two with the marker, which no path holds.
func loginPathScript(nonce string) string {
	marker := "tether-login-path-" + nonce
	return `L() { while IFS= read -r l; do if [ "$l" = ` + marker + ` ]; then IFS= read -r l && printf '%s' "$l" && IFS= read -r m && [ "$m" = ` + marker + ` ] && IFS= read -r m && printf '%s%s' ` + marker + ` "$m"; return; fi; done; }; ` +
		`X=; P=; PP=; T=; command -v timeout >/dev/null 2>&1 && T='timeout -s KILL ` + strconv.Itoa(loginShellWait) + `'; case "${SHELL##*/}" in ` +
		`csh|tcsh) X=$(echo 'echo; echo ` + marker + `; printenv PATH; echo ` + marker + `; printenv PYTHONPATH || echo' | $T "$SHELL" -l 2>/dev/null | L);; ` +
		`sh|bash|dash|zsh|ksh|ksh93|mksh|pdksh|ash|yash) X=$($T "$SHELL" -i -l -c 'echo; echo ` + marker + `; printenv PATH; echo ` + marker + `; printenv PYTHONPATH || echo' </dev/null 2>/dev/null | L);; esac; ` +
		`P=${X%%` + marker + `*}; case "$X" in *` + marker + `*) PP=${X#*` + marker + `};; esac; ` +
		`case "$P" in /*) PATH=$P; if [ -n "$PP" ]; then PYTHONPATH=$PP; export PYTHONPATH; else unset PYTHONPATH; fi; echo '` + appEnvTag + `login';; *) echo '` + appEnvTag + `plain';; esac; `
}

// detectScript is the detection script for the given executable names: the login
// shell's PATH first (loginPathScript, with nonce), then one line "tether-app v1 N
// PATH" for each name found (N its 1-based index, so that no name, whatever it holds,
// is ever parsed back), then a closing line. Each name is quoted with shquote.Quote and
// only ever used as "$e"; for the presets' own names the script holds no backslashes
// and no newlines, like the probe script, so any login shell passes it through
// unchanged.
func detectScript(execs []string, nonce string) string {
	var quoted []string
	for _, e := range execs {
		quoted = append(quoted, shquote.Quote(e))
	}
	return loginPathScript(nonce) + `i=0; for e in ` + strings.Join(quoted, " ") + `; do i=$((i+1)); if p=$(command -v "$e" 2>/dev/null); then printf '` + appTag + `%s %s' "$i" "$p"; echo; fi; done; ` + uiScript(execs) + `echo '` + appDoneTag + `'`
}

// detectCommand is the exec command line running detectScript with /bin/sh.
func detectCommand(execs []string, nonce string) string {
	return shquote.Join([]string{"/bin/sh", "-c", detectScript(execs, nonce)})
}

// newNonce is 16 random hex digits.
func newNonce() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// presetExecs lists every executable the presets look for, once each, in order.
func presetExecs() []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range wire.Presets() {
		for _, e := range p.Execs() {
			if !seen[e] {
				seen[e] = true
				out = append(out, e)
			}
		}
	}
	return out
}

// detection is what the script found: name → path, and whether it looked on the
// login shell's PATH.
type detection struct {
	found map[string]string
	login bool
	// ui is the UI the Python of the Jupyter Server found can import (uiScript), "" for
	// none; uiKnown says whether it answered.
	ui      string
	uiKnown bool
}

// parseDetection reads the script's output: name → path for the names we asked about
// (by index) whose path is a clean absolute path. Anything else (a chatty login shell, a hostile
// remote) is ignored; a missing closing line is an error.
func parseDetection(r io.Reader, asked []string) (map[string]string, error) {
	d, err := parseDetectionEnv(r, asked)
	if err != nil {
		return nil, err
	}
	return d.found, nil
}

// parseDetectionEnv is parseDetection with the environment line.
func parseDetectionEnv(r io.Reader, asked []string) (*detection, error) {
	found := map[string]string{}
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	d := &detection{found: found}
	for i := 0; i < 1000; i++ {
		line, err := readLine(br, maxLine)
		if err == errLineTooLong {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("the detection script did not finish")
		}
		if line == appDoneTag {
			return d, nil
		}
		if line == appEnvTag+"login" {
			d.login = true
			continue
		}
		if d.parseUI(line) {
			continue
		}
		rest, ok := strings.CutPrefix(line, appTag)
		if !ok {
			continue
		}
		num, p, ok := strings.Cut(rest, " ")
		n, err := strconv.Atoi(num)
		if !ok || err != nil || n < 1 || n > len(asked) || !cleanAbs(p) {
			continue
		}
		name := asked[n-1]
		if _, dup := found[name]; !dup {
			found[name] = p
		}
	}
	return nil, fmt.Errorf("the detection script's output is too long")
}

// AppFound is one preset as `tether apps HOST --json` prints it.
type AppFound struct {
	App     string `json:"app"`
	Found   bool   `json:"found"`
	Flavour string `json:"flavour,omitempty"`
	Path    string `json:"path,omitempty"`
	// LooksFor lists the executables looked for, when none was found.
	LooksFor []string `json:"looks_for,omitempty"`
	BuiltIn  bool     `json:"built_in,omitempty"`
	// Problem says why an executable found does not count (a Jupyter Server without a UI).
	Problem string `json:"problem,omitempty"`
}

// matchPresets says, for each preset, which flavour the found executables give: the
// first in the preset's order, as serve picks it.
func matchPresets(found map[string]string) []AppFound {
	var out []AppFound
	for _, p := range wire.Presets() {
		a := AppFound{App: p.Name}
		if p.Kind != wire.KindApp {
			a.Found, a.BuiltIn = true, true
			out = append(out, a)
			continue
		}
		for _, f := range p.Flavours {
			if path, ok := found[f.Exec]; ok {
				a.Found, a.Flavour, a.Path = true, f.Name, path
				break
			}
		}
		if !a.Found {
			a.LooksFor = p.Execs()
		}
		out = append(out, a)
	}
	return out
}

// Apps is `tether apps HOST [--json]`.
func Apps(ctx context.Context, o AppsOptions) error {
	s, err := open(ctx, o.Options, oneCommand)
	if err != nil {
		return err
	}
	defer s.close()
	execs := presetExecs()
	nonce, err := newNonce()
	if err != nil {
		return err
	}
	var det *detection
	var site SiteProfiles
	var serr error
	why, perr := s.runReading(ctx, withSiteProfiles(detectCommand(execs, nonce), o.Profiles != nil), func(br *bufio.Reader) (err error) {
		if det, err = parseDetectionEnv(br, execs); err == nil && o.Profiles != nil {
			site, serr = readSite(br)
		}
		return err
	})
	if perr != nil {
		return errorf("check that /bin/sh works on "+s.host, "could not look for apps on %s: %s", s.host, why)
	}
	list := matchPresetsUI(det)
	if o.JSON {
		b, err := json.Marshal(list)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(s.o.Stdout, "%s\n", b)
		return err
	}
	tw := tabwriter.NewWriter(s.o.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "APP\tON %s\n", strings.ToUpper(termsafe.OneLine(s.host)))
	for _, a := range list {
		switch {
		case a.BuiltIn:
			fmt.Fprintf(tw, "%s\tbuilt in\n", a.App)
		case a.Found:
			fmt.Fprintf(tw, "%s\t%s: %s\n", a.App, a.Flavour, termsafe.OneLine(a.Path))
		case a.Problem != "":
			fmt.Fprintf(tw, "%s\tnot usable: %s\n", a.App, termsafe.OneLine(a.Problem))
		default:
			fmt.Fprintf(tw, "%s\tnot found (looked for %s)\n", a.App, lookedFor(a.LooksFor))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if !det.login {
		// launch falls back the same way, with a note.
		if _, err := fmt.Fprintf(s.o.Stdout, "\n(your login shell on %s did not answer (or is one tether does not speak, such as fish), so this is the PATH of a plain `ssh %s COMMAND`)\n", termsafe.OneLine(s.host), termsafe.OneLine(s.host)); err != nil {
			return err
		}
	}
	if o.Profiles == nil {
		return nil
	}
	if serr != nil {
		// The apps stand; the user's own profiles are still listed.
		fmt.Fprintf(s.o.Stderr, "tether: could not read the site profiles on %s: %s\n", s.host, termsafe.OneLine(serr.Error()))
	}
	return o.Profiles(s.o.Stdout, site)
}

// lookedFor names the executables looked for: a name on PATH as it is, a fixed path
// whole ("rserver on PATH and /usr/lib/rstudio-server/bin/rserver", not "rserver,
// rserver").
func lookedFor(execs []string) string {
	var onPath, fixed []string
	for _, e := range execs {
		if path.IsAbs(e) {
			fixed = append(fixed, e)
		} else {
			onPath = append(onPath, e)
		}
	}
	var parts []string
	if len(onPath) > 0 {
		parts = append(parts, strings.Join(onPath, ", "))
		if len(fixed) > 0 {
			parts[0] += " on PATH"
		}
	}
	parts = append(parts, fixed...)
	if len(parts) <= 1 {
		return strings.Join(parts, "")
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}
