package profile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/tether-dev/tether/internal/termsafe"
)

// The config file is config.yaml in tether's config directory:
//
//   - $XDG_CONFIG_HOME/tether when XDG_CONFIG_HOME is set (an absolute path, as the XDG
//     spec asks), on every platform, as gh and git do;
//   - otherwise ~/.config/tether on Linux, the BSDs and macOS: on macOS command-line
//     tools people keep in dotfiles (git, gh, ssh's neighbours, fish, starship) live
//     in ~/.config, not in ~/Library/Application Support, where people look for GUI
//     apps' state and seldom edit by hand;
//   - %AppData%\tether on Windows (the roaming profile, where Windows users and tools
//     such as gh keep such settings).
const fileName = "config.yaml"

// Path is where the user's config file is (it need not exist).
func Path() (string, error) {
	return pathFor(runtime.GOOS, os.Getenv, os.UserHomeDir)
}

func pathFor(goos string, getenv func(string) string, home func() (string, error)) (string, error) {
	if d := getenv("XDG_CONFIG_HOME"); d != "" && isAbs(goos, d) {
		return join(goos, d, "tether", fileName), nil
	}
	if goos == "windows" {
		if d := getenv("AppData"); d != "" {
			return join(goos, d, "tether", fileName), nil
		}
		return "", errors.New("%AppData% is not set, so tether cannot find its config file")
	}
	h, err := home()
	if err != nil || h == "" {
		return "", errors.New("$HOME is not set, so tether cannot find its config file")
	}
	return join(goos, h, ".config", "tether", fileName), nil
}

func isAbs(goos, p string) bool {
	if goos == "windows" {
		return len(p) >= 3 && p[1] == ':' && (p[2] == '\\' || p[2] == '/') || strings.HasPrefix(p, `\\`)
	}
	return strings.HasPrefix(p, "/")
}

func join(goos string, parts ...string) string {
	if goos == "windows" {
		return strings.Join(parts, `\`)
	}
	return strings.Join(parts, "/")
}

// DisplayPath is path as messages show it: the home directory as ~.
func DisplayPath(path string) string {
	home, err := os.UserHomeDir()
	if err != nil || home == "" || home == "/" {
		return path
	}
	if rest, ok := strings.CutPrefix(path, home); ok && (rest == "" || rest[0] == filepath.Separator) {
		return "~" + rest
	}
	return path
}

// Load reads the config file at path; a missing file is an empty config (nil). The
// file is refused, as ssh refuses its own, when someone else could have written it:
// owned by another user, or writable by group or others (a setup: or ssh-config:
// from it runs as you).
func Load(path string, check Checker) (*Config, error) {
	shown := DisplayPath(path)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		if alt := strings.TrimSuffix(path, ".yaml") + ".yml"; alt != path {
			if _, err := os.Stat(alt); err == nil {
				return nil, &Error{File: DisplayPath(alt), Msg: "tether reads " + fileName + ", not config.yml: rename it"}
			}
		}
		return nil, nil
	}
	if err != nil {
		return nil, &Error{File: shown, Msg: "cannot read it: " + termsafe.OneLine(errText(err))}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, &Error{File: shown, Msg: "cannot read it: " + termsafe.OneLine(errText(err))}
	}
	if !fi.Mode().IsRegular() {
		return nil, &Error{File: shown, Msg: "not a regular file"}
	}
	if why := unsafeOwner(fi); why != "" {
		return nil, &Error{File: shown, Msg: why}
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxConfigSize+1))
	if err != nil {
		return nil, &Error{File: shown, Msg: "cannot read it: " + termsafe.OneLine(errText(err))}
	}
	if len(data) > MaxConfigSize {
		return nil, &Error{File: shown, Msg: fmt.Sprintf("larger than %d MiB; is it the right file?", MaxConfigSize>>20)}
	}
	return Parse(shown, data, check)
}

func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
