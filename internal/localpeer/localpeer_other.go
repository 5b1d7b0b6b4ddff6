//go:build !linux && !windows

package localpeer

import "net/netip"

func lookup(local, remote netip.AddrPort) (Socket, error) { return Socket{}, ErrUnsupported }

func listening() ([]Socket, error) { return nil, ErrUnsupported }

func sameUser(Socket) (bool, error) { return false, ErrUnsupported }

func socketInodes([]int) (map[uint64]int, error) { return nil, ErrUnsupported }
