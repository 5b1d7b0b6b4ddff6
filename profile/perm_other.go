//go:build !unix

package profile

import "io/fs"

// unsafeOwner: Windows' ACLs keep %AppData% the user's own; there is no mode to check.
func unsafeOwner(fs.FileInfo) string { return "" }
