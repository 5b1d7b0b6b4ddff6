//go:build unix && !linux

package remote

import "errors"

// swapNames exchanges two paths atomically; only Linux has renameat2.
func swapNames(a, b string) error { return errors.New("not on this system") }
