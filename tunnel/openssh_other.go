//go:build !unix

package tunnel

import (
	"context"
	"io"
	"net"
	"time"
)

// The OpenSSH transport is built on ControlMaster (a Unix socket and descriptor
// passing), which Windows' OpenSSH does not have: there the native transport is used.

// DefaultControlPersist is how long tether's own master stays after its last use.
const DefaultControlPersist = 10 * time.Minute

// OpenSSHOptions tunes DialOpenSSH.
type OpenSSHOptions struct {
	ConfigFile    string
	Program       string
	Persist       time.Duration
	OnEvent       func(Event)
	Warn          io.Writer
	ReconnectWait time.Duration
	Terminal      func() (done func())
	LoginOutput   io.Writer
	NoDelayExec   bool
	JumpThrough   *OpenSSHClient
	DefaultUser   string
}

// OpenSSHClient is not available here.
type OpenSSHClient struct{}

// DialOpenSSH fails: see ErrOpenSSHUnsupported.
func DialOpenSSH(context.Context, string, OpenSSHOptions) (*OpenSSHClient, error) {
	return nil, ErrOpenSSHUnsupported
}

func (*OpenSSHClient) Run(context.Context, string, io.Reader, io.Writer, io.Writer) (int, error) {
	return -1, ErrOpenSSHUnsupported
}

func (*OpenSSHClient) Upload(context.Context, io.Reader, int64, string, func(int64)) error {
	return ErrOpenSSHUnsupported
}

func (*OpenSSHClient) DialContext(context.Context, string, string) (net.Conn, error) {
	return nil, ErrOpenSSHUnsupported
}

func (*OpenSSHClient) DialForward(context.Context, string, string) (net.Conn, error) {
	return nil, ErrOpenSSHUnsupported
}

func (*OpenSSHClient) Close() error { return nil }

func (*OpenSSHClient) Config() *Config { return nil }

func (*OpenSSHClient) UsesOwnMaster() bool { return false }

func (*OpenSSHClient) ControlPath() string { return "" }
