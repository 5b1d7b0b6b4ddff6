package wire

import (
	"net"
	"strings"

	"github.com/tether-dev/tether/internal/shquote"
)

// A team server (issue 17) serves several apps behind one gate, each under
// {base_url}NAME/, to the people an --access file admits:
//
//	tether serve --listen :8443 --tls-cert C --tls-key K --access team.yml \
//	    --app nb=jupyter --app site=static:~/www --app dash='python3 dash.py --port {port}'
//
// Each --app NAME=SPEC names one app. SPEC is a preset (jupyter), or a preset with its
// argument after a colon (static:DIR, shiny:DIR, streamlit:SCRIPT); anything else is
// a command line, split into words as a POSIX shell would split it but without a
// shell (shquote.Split: quotes group, and what a shell would expand — $VAR, globs, a
// leading ~, ; | & — is refused). The single-app forms (--app jupyter, -- COMMAND)
// are unchanged; several named apps, or one with --access, make a team server.

// TeamApp is one --app NAME=SPEC.
type TeamApp struct {
	Name string
	// Preset and Arg: a preset and its argument (empty: the preset's default).
	Preset, Arg string
	// Command is the command line's words (placeholders unexpanded), for a SPEC that
	// is not a preset.
	Command []string
}

// IsNamedApp reports whether an --app value is NAME=SPEC (a preset's name never holds
// '=').
func IsNamedApp(v string) bool { return strings.Contains(v, "=") }

// ParseTeamApp reads NAME=SPEC. Mistakes are usage errors naming the flag as typed.
func ParseTeamApp(v string) (TeamApp, error) {
	name, spec, _ := strings.Cut(v, "=")
	if err := CheckTeamAppName(name); err != nil {
		return TeamApp{}, Usagef("--app %s: %v", v, err)
	}
	a := TeamApp{Name: name}
	if strings.TrimSpace(spec) == "" {
		return TeamApp{}, Usagef("--app %s: say what %s runs: a preset (--app %s=jupyter), static:DIR, or a command in quotes", v, name, name)
	}
	pre, arg, hasArg := strings.Cut(spec, ":")
	if _, ok := LookupPreset(pre); ok {
		if strings.ContainsRune(arg, 0) {
			return TeamApp{}, Usagef("--app %s: the argument holds a NUL byte", name)
		}
		if hasArg && arg == "" {
			return TeamApp{}, Usagef("--app %s: nothing after %s:; give its argument or drop the colon", v, pre)
		}
		a.Preset, a.Arg = pre, arg
		return a, nil
	}
	words, err := shquote.Split(spec)
	if err != nil {
		return TeamApp{}, Usagef("--app %s: %v", name, err)
	}
	if len(words) == 0 {
		return TeamApp{}, Usagef("--app %s: the command is empty", v)
	}
	for _, w := range words {
		if strings.ContainsRune(w, 0) {
			return TeamApp{}, Usagef("--app %s: the command holds a NUL byte", name)
		}
	}
	a.Command = words
	return a, nil
}

// CheckTeamAppName says whether n may name a team server's app: a session-name-like
// word (1 to 64 letters, digits, '.', '_', '-', starting with a letter or digit), and
// not proxy or absproxy, where the owner's other ports are served.
func CheckTeamAppName(n string) error {
	if !namePattern.MatchString(n) {
		return Usagef("app name %q is not valid: use 1 to %d letters, digits, '.', '_' or '-', starting with a letter or digit", n, MaxNameLen)
	}
	if strings.EqualFold(n, "proxy") || strings.EqualFold(n, "absproxy") {
		return Usagef("app name %q is taken: {base_url}%s/ serves your other ports; pick another", n, n)
	}
	return nil
}

// AddApp adds one --app value: NAME=SPEC to Apps, else the preset (App), which may be
// given once.
func (s *Serve) AddApp(v string) error {
	if IsNamedApp(v) {
		s.Apps = append(s.Apps, v)
		return nil
	}
	if s.App != "" {
		return Usagef("serve: --app %s and --app %s: give one preset, or name each app for a team server (--app nb=jupyter --app site=static:DIR)", s.App, v)
	}
	s.App = v
	return nil
}

// Team reports whether s is a team server: several named apps, or --access.
func (s Serve) Team() bool { return len(s.Apps) > 1 || s.Access != "" }

// TeamApps parses Apps (checked by Check).
func (s Serve) TeamApps() ([]TeamApp, error) {
	var out []TeamApp
	for _, v := range s.Apps {
		a, err := ParseTeamApp(v)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// checkTeam judges a team server's flags: the apps (well formed, names unique in any
// letter case), nothing of the single-app forms besides, and TLS on a listener beyond
// loopback with --access (people's keys and session cookies cross the network).
func (s Serve) checkTeam() error {
	if len(s.Apps) == 0 {
		if s.Access != "" {
			return Usagef("--access needs the apps it governs, each with a name: --app nb=jupyter --app site=static:DIR")
		}
		return nil
	}
	apps, err := s.TeamApps()
	if err != nil {
		return err
	}
	seen := map[string]string{}
	for _, a := range apps {
		if prev, ok := seen[strings.ToLower(a.Name)]; ok {
			return Usagef("--app %s is given twice (as %s and %s); give each app its own name", a.Name, prev, a.Name)
		}
		seen[strings.ToLower(a.Name)] = a.Name
	}
	switch {
	case s.App != "":
		return Usagef("--app %s and named apps do not mix; name it too: --app %s=%s", s.App, s.App, s.App)
	case len(s.Command) > 0:
		return Usagef("a command after -- and named apps do not mix; name it too: --app NAME='%s'", shquote.Join(s.Command))
	case s.AppSecretEnv != "" || len(s.AppHeaders) > 0:
		return Usagef("--app-secret-env and --app-header protect one COMMAND after --; a team server's apps are presets or commands named by --app")
	case s.Reuse || s.BatchSession != "":
		return Usagef("a team server (named apps) runs with tether serve only, not through launch or a batch job")
	}
	if s.Access != "" && s.Listen != "" && !loopbackListen(s.Listen) && !s.TLS && s.TLSCert == "" {
		return Usagef("--access on --listen %s (beyond loopback) needs TLS, or keys and session cookies would cross the network in clear text: add --tls-cert FILE --tls-key FILE (or --tls for a self-signed certificate)", s.Listen)
	}
	return nil
}

// loopbackListen reports whether --listen's host is loopback (localhost, 127.0.0.0/8,
// ::1).
func loopbackListen(addr string) bool {
	host, _, err := SplitListen(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
