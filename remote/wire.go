package remote

import (
	"github.com/tether-dev/tether/wire"
)

// The ready record, the session states and the batch job's status are package wire's:
// the vocabulary shared with the launcher. These are their names here.
type (
	Record    = wire.Record
	JobStatus = wire.JobStatus
)

const (
	StateStarting  = wire.StateStarting
	StateRunning   = wire.StateRunning
	StateAppExited = wire.StateAppExited
	StateDead      = wire.StateDead
	StatePending   = wire.StatePending
	StateEnded     = wire.StateEnded
)

// DefaultReadyTimeout is how long serve waits for a slow app.
const DefaultReadyTimeout = wire.DefaultReadyTimeout
