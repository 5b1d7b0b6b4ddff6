//go:build !linux && !darwin

package tunnel

import "net"

// sendQueued is unknown here (-1): a probe's verdict then rests on silence alone.
func sendQueued(net.Conn) int { return -1 }
