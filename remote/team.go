package remote

import (
	"log/slog"
	"sync/atomic"

	"github.com/tether-dev/tether/access"
	"github.com/tether-dev/tether/wire"
)

// teamServe is a team server's apps and policy, judged in normalize.
type teamServe struct {
	apps  []*teamApp
	live  *access.Live // nil without --access: the owner alone
	notes []wire.Note  // said once the start is reported
	// logger is the server log, once it is open (SIGHUP may come before).
	logger atomic.Pointer[slog.Logger]
}

// teamApp is one --app NAME=SPEC: the options a single-app serve of it would have.
type teamApp struct {
	name string
	o    *ServeOptions
}
