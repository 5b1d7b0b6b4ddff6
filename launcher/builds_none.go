//go:build !tether_release

package launcher

import "io/fs"

// embeddedFS holds no builds outside a release (see builds_release.go).
var embeddedFS fs.FS
