package launcher

import (
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/tether-dev/tether/wire"
)

// How the browser is opened without the token in anyone's argv: the launcher mints a
// one-time login code (valid codeTTL, single use) from the token it read over SSH and
// opens http://127.0.0.1:PORT{base}?code=…; the server trades it for the cookie and
// redirects to the clean URL. With --open-file even the code stays out of argv: the
// opener gets the path of a 0600 file, in a 0700 directory, that redirects to it.

// codeTTL is how long the browser has to use the code.
const codeTTL = 60 * time.Second

// openFileLife is how long the redirect file stays (the code is dead after codeTTL).
var openFileLife = codeTTL + 5*time.Second

// The opener, in order: $TETHER_BROWSER (a command; the URL or file path is appended as
// its last argument — tests use it to capture what would be opened), $BROWSER (a
// colon-separated list of commands, %s replaced by the URL or appended), then the
// platform's opener.
const browserEnv = "TETHER_BROWSER"

// openBrowser opens the session in the browser; cleanup removes the redirect file.
func (s *session) openBrowser(fo ForwardOptions, local string, rec wire.Record) (cleanup func(), err error) {
	code, err := loginCode(rec, codeTTL)
	if err != nil {
		return nil, err
	}
	target := local + "?code=" + code
	if fo.OpenFile {
		p, rm, err := writeRedirectFile(target)
		if err != nil {
			return nil, err
		}
		target, cleanup = p, rm
	}
	open := fo.Open
	if open == nil {
		open = OpenURL
	}
	if err := open(target); err != nil {
		if cleanup != nil {
			cleanup()
		}
		return nil, err
	}
	return cleanup, nil
}

// writeRedirectFile writes a page that sends the browser to target into a new 0700
// directory as a 0600 file, and returns its path and a func removing both (also called
// by itself after openFileLife).
func writeRedirectFile(target string) (string, func(), error) {
	dir, err := os.MkdirTemp("", "tether-open-")
	if err != nil {
		return "", nil, err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	p := filepath.Join(dir, "open.html")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	js, _ := json.Marshal(target) // escapes <, > and & too
	attr := html.EscapeString(target)
	page := "<!doctype html>\n<html><head><meta charset=\"utf-8\"><meta name=\"referrer\" content=\"no-referrer\">" +
		"<meta http-equiv=\"refresh\" content=\"0;url=" + attr + "\"><title>tether</title>" +
		"<script>location.replace(" + string(js) + ");</script></head>" +
		"<body><p><a href=\"" + attr + "\">Open the session</a></p></body></html>\n"
	_, werr := f.WriteString(page)
	cerr := f.Close()
	if werr != nil || cerr != nil {
		os.RemoveAll(dir)
		return "", nil, errors.Join(werr, cerr)
	}
	var once sync.Once
	rm := func() { once.Do(func() { os.RemoveAll(dir) }) }
	t := time.AfterFunc(openFileLife, rm)
	return p, func() { t.Stop(); rm() }, nil
}

// openerCheck is how long OpenURL waits for an opener to fail: xdg-open and open exit
// at once (non-zero when they could not open anything); a browser started directly
// from $BROWSER keeps running, which counts as success.
var openerCheck = 2 * time.Second

// OpenURL opens target (a URL or a file path) with $TETHER_BROWSER, $BROWSER or the
// platform's opener, without waiting for the browser to exit. An opener that cannot
// start or exits non-zero is a failure (the next one is tried); the error says why
// none worked, never with the target in it.
func OpenURL(target string) error {
	list := openers(target, os.Getenv, runtime.GOOS)
	if len(list) == 0 {
		return errors.New("no graphical display (DISPLAY and WAYLAND_DISPLAY are unset) and no BROWSER set")
	}
	var why []string
	for _, argv := range list {
		cmd := exec.Command(argv[0], argv[1:]...)
		if err := cmd.Start(); err != nil {
			why = append(why, "cannot run "+argv[0])
			continue
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }() // reaps it whenever it exits; browsers may run long
		select {
		case err := <-done:
			if err == nil {
				return nil
			}
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				why = append(why, fmt.Sprintf("%s exited with status %d", filepath.Base(argv[0]), ee.ExitCode()))
			} else {
				why = append(why, filepath.Base(argv[0])+" failed")
			}
		case <-time.After(openerCheck):
			return nil
		}
	}
	return errors.New(strings.Join(why, "; "))
}

// openers lists the command lines to try, in order. Without a graphical display
// (DISPLAY and WAYLAND_DISPLAY unset: an SSH login, a console, a container) xdg-open
// is not tried: it would fail, or start a text browser in the user's terminal.
func openers(target string, getenv func(string) string, goos string) [][]string {
	if v := strings.Fields(getenv(browserEnv)); len(v) > 0 {
		return [][]string{append(v, target)}
	}
	var out [][]string
	if v := getenv("BROWSER"); v != "" {
		for _, entry := range strings.Split(v, ":") {
			f := strings.Fields(entry)
			if len(f) == 0 {
				continue
			}
			replaced := false
			for i, a := range f {
				if strings.Contains(a, "%s") {
					f[i] = strings.ReplaceAll(a, "%s", target)
					replaced = true
				}
			}
			if !replaced {
				f = append(f, target)
			}
			out = append(out, f)
		}
	}
	switch goos {
	case "darwin":
		out = append(out, []string{"open", target})
	case "windows":
		out = append(out, []string{"rundll32", "url.dll,FileProtocolHandler", target})
	default:
		if getenv("DISPLAY") != "" || getenv("WAYLAND_DISPLAY") != "" {
			out = append(out, []string{"xdg-open", target})
		}
	}
	return out
}
