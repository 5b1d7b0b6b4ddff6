//go:build unix && !linux

package remote

// findsPorts: nothing here says which process holds a listener (see portless.go).
const findsPorts = false
