package wire

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/tether-dev/tether/tokenserver"
)

// DefaultReadyTimeout is how long serve waits for a slow app (MATLAB takes minutes).
const DefaultReadyTimeout = 5 * time.Minute

// Serve is `tether serve`'s command line as data (see DESIGN.md's command-line
// contract): the launcher fills it in and sends Args over SSH, a detaching serve
// passes it on to its background server, `tether batch submit` reads the job's with
// ParseServe and writes it into the job script. One grammar, here; Check judges what
// can be judged before anything starts, on either side.
type Serve struct {
	Listen, Socket, TokenFile, BaseURL string
	TLS                                bool
	TLSCert, TLSKey                    string
	AllowHosts                         []string
	IdleTimeout                        time.Duration
	Name                               string
	// JSON: the ready record, or the failure, as one JSON line on stdout. JSONNotes:
	// progress and notes on stderr as JSON lines (Note), for a launcher.
	JSON, JSONNotes bool
	Detach          bool
	ReadyTimeout    time.Duration
	// ReadyFD, CancelOnEOF, BatchSession and SetupStdin are internal: the pipe a
	// detached server reports on, a start abandoned when stdin ends, a batch job's
	// session directory, the setup script framed on stdin.
	ReadyFD     int
	CancelOnEOF bool
	// Reuse answers with a running session of the same app instead of starting one.
	Reuse        bool
	BatchSession string
	SetupStdin   bool
	SetupFile    string
	LoginShell   bool
	// App is the preset (--app); Command then holds its extra arguments.
	App string
	// Apps are a team server's apps, each "NAME=SPEC" as --app gives it (TeamApp);
	// Access is its --access file. Several Apps, or Access, make a team server.
	Apps         []string
	Access       string
	AppSecretEnv string
	AppHeaders   []string
	AllowExposed bool
	NoPortProxy  bool
	// Command is the app's command line after --, placeholders unexpanded.
	Command []string
}

// serveFlag is one flag of serve's grammar: how it reads and writes a Serve.
type serveFlag struct {
	name  string
	boolf func(*Serve) *bool
	strf  func(*Serve) *string
	durf  func(*Serve) *time.Duration
	listf func(*Serve) *[]string
	intf  func(*Serve) *int
	appf  bool // --app: a preset (App) or NAME=SPEC (Apps); see AddApp
}

// serveFlags is the grammar, in the order Args writes it.
var serveFlags = []serveFlag{
	{name: "detach", boolf: func(s *Serve) *bool { return &s.Detach }},
	{name: "json", boolf: func(s *Serve) *bool { return &s.JSON }},
	{name: "json-notes", boolf: func(s *Serve) *bool { return &s.JSONNotes }},
	{name: "cancel-on-eof", boolf: func(s *Serve) *bool { return &s.CancelOnEOF }},
	{name: "reuse", boolf: func(s *Serve) *bool { return &s.Reuse }},
	{name: "ready-fd", intf: func(s *Serve) *int { return &s.ReadyFD }},
	{name: "batch-session", strf: func(s *Serve) *string { return &s.BatchSession }},
	{name: "setup-stdin", boolf: func(s *Serve) *bool { return &s.SetupStdin }},
	{name: "setup-file", strf: func(s *Serve) *string { return &s.SetupFile }},
	{name: "login-shell", boolf: func(s *Serve) *bool { return &s.LoginShell }},
	{name: "listen", strf: func(s *Serve) *string { return &s.Listen }},
	{name: "socket", strf: func(s *Serve) *string { return &s.Socket }},
	{name: "token-file", strf: func(s *Serve) *string { return &s.TokenFile }},
	{name: "base-url", strf: func(s *Serve) *string { return &s.BaseURL }},
	{name: "tls", boolf: func(s *Serve) *bool { return &s.TLS }},
	{name: "tls-cert", strf: func(s *Serve) *string { return &s.TLSCert }},
	{name: "tls-key", strf: func(s *Serve) *string { return &s.TLSKey }},
	{name: "allow-host", listf: func(s *Serve) *[]string { return &s.AllowHosts }},
	{name: "name", strf: func(s *Serve) *string { return &s.Name }},
	{name: "ready-timeout", durf: func(s *Serve) *time.Duration { return &s.ReadyTimeout }},
	{name: "idle-timeout", durf: func(s *Serve) *time.Duration { return &s.IdleTimeout }},
	{name: "app", appf: true},
	{name: "access", strf: func(s *Serve) *string { return &s.Access }},
	{name: "app-secret-env", strf: func(s *Serve) *string { return &s.AppSecretEnv }},
	{name: "app-header", listf: func(s *Serve) *[]string { return &s.AppHeaders }},
	{name: "allow-exposed", boolf: func(s *Serve) *bool { return &s.AllowExposed }},
	{name: "no-port-proxy", boolf: func(s *Serve) *bool { return &s.NoPortProxy }},
}

// Args is serve's arguments (after "serve") for s: each flag that is set as
// --name=value (so no value is ever read as a flag), then -- and the command. The
// base URL "/" and zero durations are left out: they are the defaults.
func (s Serve) Args() []string {
	var args []string
	for _, f := range serveFlags {
		switch {
		case f.boolf != nil:
			if *f.boolf(&s) {
				args = append(args, "--"+f.name)
			}
		case f.strf != nil:
			if v := *f.strf(&s); v != "" && !(f.name == "base-url" && v == "/") {
				args = append(args, "--"+f.name+"="+v)
			}
		case f.durf != nil:
			if v := *f.durf(&s); v > 0 {
				args = append(args, "--"+f.name+"="+v.String())
			}
		case f.intf != nil:
			if v := *f.intf(&s); v != 0 {
				args = append(args, "--"+f.name+"="+strconv.Itoa(v))
			}
		case f.listf != nil:
			for _, v := range *f.listf(&s) {
				args = append(args, "--"+f.name+"="+v)
			}
		case f.appf:
			for _, v := range append([]string{s.App}, s.Apps...) {
				if v != "" {
					args = append(args, "--app="+v)
				}
			}
		}
	}
	if len(s.Command) > 0 {
		args = append(append(args, "--"), s.Command...)
	}
	return args
}

// ParseServe reads serve's arguments (after "serve") as Args writes them, and as a
// person types them: --name=value or --name value, a boolean as --name (or
// --name=true|false), the command after -- (or from the first word that is not a
// flag). An unknown flag or a bad value is a usage error.
func ParseServe(args []string) (Serve, error) {
	var s Serve
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			s.Command = append([]string{}, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "--") {
			s.Command = append([]string{}, args[i:]...)
			break
		}
		name, value, hasValue := strings.Cut(a[2:], "=")
		var f *serveFlag
		for k := range serveFlags {
			if serveFlags[k].name == name {
				f = &serveFlags[k]
			}
		}
		if f == nil {
			return Serve{}, Usagef("serve: unknown flag --%s", name)
		}
		if f.boolf != nil {
			b := true
			if hasValue {
				var err error
				if b, err = strconv.ParseBool(value); err != nil {
					return Serve{}, Usagef("serve: --%s=%q is not true or false", name, value)
				}
			}
			*f.boolf(&s) = b
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				return Serve{}, Usagef("serve: --%s needs a value", name)
			}
			i++
			value = args[i]
		}
		switch {
		case f.appf:
			if err := s.AddApp(value); err != nil {
				return Serve{}, err
			}
		case f.strf != nil:
			*f.strf(&s) = value
		case f.listf != nil:
			*f.listf(&s) = append(*f.listf(&s), value)
		case f.durf != nil:
			d, err := time.ParseDuration(value)
			if err != nil {
				return Serve{}, Usagef("serve: --%s=%q is not a duration such as 90s or 1h", name, value)
			}
			*f.durf(&s) = d
		case f.intf != nil:
			n, err := strconv.Atoi(value)
			if err != nil {
				return Serve{}, Usagef("serve: --%s=%q is not a number", name, value)
			}
			*f.intf(&s) = n
		}
	}
	return s, nil
}

// BaseURL is --base-url made canonical by the gate's rule: "/" for none, a leading and
// a trailing "/" added ("lab" is "/lab/"); one the gate could not serve under is a
// usage error.
func BaseURL(b string) (string, error) {
	if b != "" && !strings.HasPrefix(b, "/") {
		b = "/" + b
	}
	n, err := tokenserver.NormalizeBaseURL(b)
	var be *tokenserver.BaseURLError
	if errors.As(err, &be) {
		return "", Usagef("--base-url %q %s; use a path such as /lab/", be.URL, be.Why)
	}
	return n, err
}

// SplitListen splits --listen's HOST:PORT; an empty host (every interface) is refused.
func SplitListen(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return "", 0, errors.New("bad port")
	}
	if host == "" {
		return "", 0, errors.New("give a host (an empty host would listen on every interface)")
	}
	return host, n, nil
}

// Check judges the flags that mean the same on every machine, before anything starts
// (on the laptop before it connects, in batch submit before the job is queued, in
// serve before the app starts): the name, the base URL (the gate's rule), the Host
// names, the listen address, the timeouts, the TLS files' pairing, the preset's name,
// a team server's apps and its TLS.
// What depends on the machine (a socket path's length, the app being installed) is
// serve's to judge there. Mistakes are usage errors.
func (s Serve) Check() error {
	if s.Name != "" {
		if err := CheckName(s.Name); err != nil {
			return Usagef("%v", err)
		}
	}
	if _, err := BaseURL(s.BaseURL); err != nil {
		return err
	}
	if s.IdleTimeout < 0 {
		return Usagef("--idle-timeout must not be negative")
	}
	if s.ReadyTimeout < 0 {
		return Usagef("--ready-timeout must not be negative")
	}
	if s.TLSKey != "" && s.TLSCert == "" {
		return Usagef("--tls-key needs --tls-cert")
	}
	if s.Listen != "" {
		if _, _, err := SplitListen(s.Listen); err != nil {
			return Usagef("--listen %q: %v; use HOST:PORT such as 127.0.0.1:0", s.Listen, err)
		}
	}
	for _, h := range s.AllowHosts {
		_, err := tokenserver.NormalizeAllowHost(h)
		var ae *tokenserver.AllowHostError
		if errors.As(err, &ae) {
			return Usagef("--allow-host %q %s", ae.Host, ae.Why)
		}
	}
	if s.App != "" && !ValidAppName(s.App) {
		return Usagef("--app %q is not a preset's name (`tether apps` lists them)", s.App)
	}
	for _, a := range s.Command {
		if strings.ContainsRune(a, 0) {
			return Usagef("an argument of the app's command holds a NUL byte")
		}
	}
	return s.checkTeam()
}
