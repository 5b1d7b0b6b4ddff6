//go:build !unix

package tokenserver

func fdLimit() uint64 { return 1 << 20 }
