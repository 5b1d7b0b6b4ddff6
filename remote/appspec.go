package remote

import (
	"net/http"
	"strings"

	"github.com/tether-dev/tether/tokenserver"
	"github.com/tether-dev/tether/wire"
)

// Presets and how apps bind are wire's (see wire/presets.go); these are their names
// here.
type (
	Bind       = wire.Bind
	AppFile    = wire.AppFile
	Preset     = wire.Preset
	PresetKind = wire.PresetKind
	Flavour    = wire.Flavour
)

const (
	BindAuto    = wire.BindAuto
	BindTCP     = wire.BindTCP
	BindSocket  = wire.BindSocket
	KindApp     = wire.KindApp
	KindStatic  = wire.KindStatic
	KindBuiltin = wire.KindBuiltin
)

// AppSpec describes an app as data: how to start it, how it binds, what it gets in its
// environment, what the proxy adds to every request it forwards, and when it is ready.
// Placeholders {port}, {host}, {base_url} and {socket} (and any in Vars) are expanded
// in Command, Env values, Header values and Files.
//
// The app's own secret: when any part of the spec names {app_secret} or
// {app_secret_file}, the session gets a fresh secret (32 bytes from crypto/rand,
// base64url). {app_secret_file} is the path of a 0600 file in the 0700 session
// directory holding it with no trailing newline; {app_secret} is the secret itself and
// may appear only in Env and Header values, never on the command line (which every
// user of the machine can read) nor in Files. {app_secret_basic} is HTTP Basic
// credentials "tether:SECRET" in base64, for Header values. The proxy injects Header
// on every request and makes sure the browser never sees the secret.
type AppSpec struct {
	Command []string
	Bind    Bind
	// Env entries ("NAME=value") are added to the app's environment.
	Env []string
	// Header is set on every request the proxy forwards to the app.
	Header http.Header
	// ReadyPath, when set, is requested (under the base URL) until it answers 200;
	// otherwise the app is ready once it accepts connections.
	ReadyPath string
	// Vars are extra placeholder values, by name without braces.
	Vars map[string]string
	// Files are written into the session directory before the app starts (mode 0600,
	// in directories 0700, content exactly as given after expansion): config files the
	// app reads. {session_dir} names the directory.
	Files []AppFile
	// Host is the Host header the app sees: the browser's (the default) or loopback.
	Host tokenserver.HostPolicy
	// UIPath, when set, is requested (under the base URL) once the app is ready: a 404
	// there ends the start (an app with no page to show, jupyterui.go).
	UIPath string
}

// expand replaces each {name} of vars in s, in one pass: values are never expanded
// again, and braces that name no placeholder stay as they are.
func expand(s string, vars map[string]string) string {
	var pairs []string
	for k, v := range vars {
		pairs = append(pairs, "{"+k+"}", v)
	}
	return strings.NewReplacer(pairs...).Replace(s)
}
