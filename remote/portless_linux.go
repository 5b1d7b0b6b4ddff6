package remote

// findsPorts: Linux says which process holds a listener (see portless.go).
const findsPorts = true
