//go:build tether_release

package launcher

import "embed"

// embeddedFS holds the release's compressed Linux builds, which internal/release
// writes into builds/ before it builds a launcher with -tags tether_release. A release
// build without them does not compile.
//
//go:embed builds/SHA256SUMS builds/*.gz
var embeddedFS embed.FS
