//go:build tether_release

package launcher

import "embed"

// embeddedFS holds the release's compressed Linux builds, which internal/release
// supplies as builds/ through go build -overlay (with -tags tether_release). A release
// build without them does not compile.
//
//go:embed builds/SHA256SUMS builds/*.gz
var embeddedFS embed.FS
