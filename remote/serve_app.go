package remote

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/tether-dev/tether/internal/termsafe"
)

var headerName = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")

func validHeaderValue(v string) bool {
	for _, c := range v {
		if c != '\t' && termsafe.IsControl(c) {
			return false
		}
	}
	return len(v) <= 4096
}

// resolveApp turns --app NAME [-- EXTRA] or COMMAND with --app-secret-env/--app-header
// into o.App (or o.static, or neither for the built-in page). It runs in normalize,
// before anything starts: an unknown preset, bad arguments or an app that is not
// installed fail at once.
func (o *ServeOptions) resolveApp() error {
	o.Command = expandHome(o.Command)
	if o.AppName == "" {
		if len(o.Command) == 0 {
			if o.AppSecretEnv != "" || len(o.AppHeaders) > 0 {
				return usagef("--app-secret-env and --app-header protect a COMMAND given after --; the built-in app needs neither")
			}
			return nil
		}
		if o.App == nil {
			spec, err := genericSpec(o.Command, o.AppSecretEnv, o.AppHeaders)
			if err != nil {
				return err
			}
			o.App = spec
		}
		return nil
	}
	if o.AppSecretEnv != "" || len(o.AppHeaders) > 0 {
		return usagef("--app-secret-env and --app-header are for a COMMAND of your own; the %s preset guards its app itself", o.AppName)
	}
	p, err := presetByName(o.AppName)
	if err != nil {
		return err
	}
	r, err := resolvePresetIn(p, o.Command, o.BaseURL, o.lookPath(), o.shellEnv)
	if err != nil {
		var nf errNotFound
		if errors.As(err, &nf) && o.shellEnv != nil {
			nf.path, nf.shell = pathVar(o.shellEnv.env), o.shellEnv.shell
			return nf
		}
		return err // a usage error (exit 2), or errNotFound (exit 1)
	}
	o.preset = r
	o.App = r.spec
	if r.static != "" {
		abs, err := filepath.Abs(r.static)
		if err != nil {
			return usagef("static %q: %v", r.static, err)
		}
		o.staticDir = abs
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = p.IdleTimeout
	}
	return nil
}

// lookPath is how presets find their executables: on the login shell's PATH once it
// is known; before that, with LoginShell, any name passes (the arguments are checked
// now, the executable once the shell has answered); else on serve's own PATH.
func (o *ServeOptions) lookPath() func(string) (string, error) {
	switch {
	case o.shellEnv != nil:
		se := o.shellEnv
		return func(file string) (string, error) { return lookPathIn(file, pathVar(se.env), se.dir) }
	case o.LoginShell:
		return func(file string) (string, error) { return file, nil }
	}
	return lookPathFunc
}

// PortHint is a one-line note for a COMMAND of the user's own (not a preset) that
// shows no sign of listening where tether tells it: no {port} or {socket} placeholder
// and no mention of $PORT. tether waits for the app on 127.0.0.1:$PORT (or {socket});
// an app that picks its own port (http.server's 8000, Jupyter's 8888) is never found.
// Apps that read PORT from their environment without saying so exist, so this is a
// note, not an error. Empty when the command looks fine.
func PortHint(command []string) string {
	if len(command) == 0 {
		return ""
	}
	for _, a := range command {
		if strings.Contains(a, "{port}") || strings.Contains(a, "{socket}") ||
			strings.Contains(a, "$PORT") || strings.Contains(a, "${PORT") {
			return ""
		}
	}
	return "the command has no {port} or {socket}: the app must listen on 127.0.0.1:$PORT (tether sets PORT) or on {socket}; put {port} where it takes its port, e.g. -- python3 -m http.server {port}"
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

// Headers --app-header may not set: the request's framing, its routing and what the
// gate itself manages; Cookie would replace the browser's cookies for the app.
var reservedAppHeaders = map[string]bool{
	"Host": true, "Connection": true, "Content-Length": true, "Transfer-Encoding": true, "Upgrade": true,
	"Te": true, "Trailer": true, "Keep-Alive": true, "Proxy-Connection": true, "Cookie": true,
	"Sec-Websocket-Key": true, "Sec-Websocket-Version": true, "Sec-Websocket-Protocol": true, "Sec-Websocket-Extensions": true,
	"X-Forwarded-For": true, "X-Forwarded-Host": true, "X-Forwarded-Proto": true, "Forwarded": true,
}

// genericSpec is the AppSpec of a COMMAND with --app-secret-env and --app-header.
func genericSpec(command []string, secretEnv string, headers []string) (*AppSpec, error) {
	spec := &AppSpec{Command: command}
	if secretEnv != "" {
		if !envName.MatchString(secretEnv) {
			return nil, usagef("--app-secret-env %q is not an environment variable name", secretEnv)
		}
		if strings.HasPrefix(secretEnv, "TETHER_") {
			return nil, usagef("--app-secret-env %s: names starting with TETHER_ are tether's own; pick another", secretEnv)
		}
		spec.Env = []string{secretEnv + "={app_secret}"}
	}
	if len(headers) > 0 {
		spec.Header = http.Header{}
	}
	usesSecret := false
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || !headerName.MatchString(name) || !validHeaderValue(value) || value == "" {
			return nil, usagef("--app-header %q is not 'Name: value', e.g. 'Authorization: Bearer {app_secret}'", h)
		}
		if reservedAppHeaders[http.CanonicalHeaderKey(name)] {
			return nil, usagef("--app-header cannot set %s", http.CanonicalHeaderKey(name))
		}
		if strings.Contains(value, "{app_secret}") || strings.Contains(value, "{app_secret_basic}") {
			usesSecret = true
		}
		spec.Header.Add(name, value)
	}
	givenToApp := secretEnv != ""
	for _, a := range command {
		if strings.Contains(a, "{app_secret_file}") {
			givenToApp = true
		}
	}
	switch {
	case usesSecret && !givenToApp:
		return nil, usagef("--app-header uses {app_secret} but the app is never given it: add --app-secret-env NAME, or pass {app_secret_file} in the command")
	case givenToApp && !usesSecret:
		return nil, usagef("the app gets a secret but no request carries it: add --app-header 'Name: {app_secret}' saying how the app expects it")
	}
	return spec, nil
}

// describeApp names what a session runs, for progress lines.
func (o *ServeOptions) describeApp() string {
	if o.preset != nil && o.preset.flavour != "" {
		return fmt.Sprintf("%s (%s)", o.AppName, o.preset.flavour)
	}
	return o.AppName
}

// removeAppFiles removes the files written for the app (its secret above all) when
// the session ends, even when the record and logs are kept.
func removeAppFiles(paths []string) {
	for _, p := range paths {
		os.Remove(p)
	}
}
