package remote

import (
	"net/http"
	"strings"
)

// Bind says how an app is reached.
type Bind int

const (
	// BindAuto binds by socket when the command mentions {socket}, else by TCP port.
	BindAuto Bind = iota
	// BindTCP gives the app a free port on 127.0.0.1 ({port}, $PORT).
	BindTCP
	// BindSocket gives the app a Unix socket path in the session's private directory
	// ({socket}): other users of the machine cannot reach it.
	BindSocket
)

// AppSpec describes an app as data: how to start it, how it binds, what it gets in its
// environment, what the proxy adds to every request it forwards, and when it is ready.
// Placeholders {port}, {host}, {base_url} and {socket} (and any in Vars) are expanded
// in Command, Env values and Header values.
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
