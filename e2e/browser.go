//go:build unix

package e2e

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"os"
	"testing"

	"github.com/chromedp/chromedp"
)

// BrowserOption changes how Browser starts Chromium.
type BrowserOption func(*[]chromedp.ExecAllocatorOption)

// TrustCertificate makes Chromium accept TLS certificates bearing cert's public key,
// and no other certificate error: --ignore-certificate-errors-spki-list with the
// base64 SHA-256 of its SubjectPublicKeyInfo (which needs a user data dir; Browser
// gives it one). For a test's own server certificate.
func TrustCertificate(cert *x509.Certificate) BrowserOption {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return func(opts *[]chromedp.ExecAllocatorOption) {
		*opts = append(*opts, chromedp.Flag("ignore-certificate-errors-spki-list", base64.StdEncoding.EncodeToString(sum[:])))
	}
}

// Browser starts a fresh headless Chromium (Debian's /usr/bin/chromium) with an empty
// profile and returns a chromedp context for one tab. Chromium stops when tb ends.
func Browser(tb testing.TB, options ...BrowserOption) context.Context {
	tb.Helper()
	path := Need(tb, "chromium", "chromium")
	profile, err := os.MkdirTemp("", "tether-chromium-")
	if err != nil {
		tb.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(profile),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("no-proxy-server", true),
	}
	for _, o := range options {
		o(&opts)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	// Start the browser now so a broken Chromium fails here, not in the middle of a test.
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		cancelAlloc()
		os.RemoveAll(profile)
		tb.Fatalf("starting chromium: %v", err)
	}
	tb.Cleanup(func() {
		cancel()
		cancelAlloc() // waits for the browser process to exit
		os.RemoveAll(profile)
	})
	return ctx
}
