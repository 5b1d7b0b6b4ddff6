package launcher

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"time"

	"github.com/tether-dev/tether/internal/termsafe"
	"github.com/tether-dev/tether/wire"
)

// Stable local ports. Each attach used to listen on a new free port, so open tabs and
// bookmarks died with the launcher. This laptop now remembers the local port each
// session was last served on, by host (as typed) and session id, and attach (or a
// launch reusing the session) listens there again when the port is free; when it is
// not, one line says so and which port is used instead (the remembered one stays, for
// next time). --port N wins, and is remembered.
//
// The file is ports.json in tether's state directory on this laptop (localStateDir),
// 0600 in a 0700 directory; it holds host names as typed, session ids and port numbers,
// nothing secret. It keeps the maxRememberedPorts most recently used. Two launchers
// writing at once: the last one's view wins (each write is atomic).

const (
	portsFile          = "ports.json"
	maxRememberedPorts = 256
)

// localStateDir is tether's state directory on this laptop: $XDG_STATE_HOME/tether
// when XDG_STATE_HOME is set (an absolute path), on any system; otherwise
// ~/.local/state/tether, ~/Library/Application Support/tether on macOS,
// %LocalAppData%\tether on Windows.
func localStateDir(goos string, getenv func(string) string) (string, error) {
	if d := getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "tether"), nil
	}
	switch goos {
	case "windows":
		if d := getenv("LocalAppData"); d != "" {
			return filepath.Join(d, "tether"), nil
		}
		return "", errors.New("%LocalAppData% is not defined")
	case "darwin", "ios":
		if h := getenv("HOME"); h != "" {
			return filepath.Join(h, "Library", "Application Support", "tether"), nil
		}
	default:
		if h := getenv("HOME"); h != "" {
			return filepath.Join(h, ".local", "state", "tether"), nil
		}
	}
	return "", errors.New("$HOME is not defined")
}

// portEntry is one session's remembered port.
type portEntry struct {
	Host string    `json:"host"`
	ID   string    `json:"id"`
	Port int       `json:"port"`
	Used time.Time `json:"used"`
}

type portFileContent struct {
	Ports []portEntry `json:"ports"`
}

// portBook is the file of remembered ports.
type portBook struct{ dir string }

// openPortBook makes (0700) or checks tether's state directory on this laptop.
func openPortBook() (*portBook, error) {
	dir, err := localStateDir(runtime.GOOS, os.Getenv)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := checkOwnDir(dir); err != nil {
		return nil, err
	}
	return &portBook{dir: dir}, nil
}

func (b *portBook) path() string { return filepath.Join(b.dir, portsFile) }

// entries reads the file; a missing or unreadable one is empty (ports are a comfort,
// never a reason to fail).
func (b *portBook) entries() []portEntry {
	f, err := os.Open(b.path())
	if err != nil {
		return nil
	}
	defer f.Close()
	var c portFileContent
	if json.NewDecoder(io.LimitReader(f, 1<<20)).Decode(&c) != nil {
		return nil
	}
	out := c.Ports[:0]
	for _, e := range c.Ports {
		if e.Port > 0 && e.Port <= 65535 && wire.ValidID(e.ID) && e.Host != "" {
			out = append(out, e)
		}
	}
	return out
}

// lookup is the port remembered for session id on host.
func (b *portBook) lookup(host, id string) (int, bool) {
	for _, e := range b.entries() {
		if e.Host == host && e.ID == id {
			return e.Port, true
		}
	}
	return 0, false
}

// forHost are the ports remembered for host's sessions, by id.
func (b *portBook) forHost(host string) map[string]int {
	m := map[string]int{}
	for _, e := range b.entries() {
		if e.Host == host {
			m[e.ID] = e.Port
		}
	}
	return m
}

// remember records port for session id on host, keeping the most recently used.
func (b *portBook) remember(host, id string, port int, now time.Time) error {
	es := []portEntry{{Host: host, ID: id, Port: port, Used: now.UTC().Round(time.Second)}}
	for _, e := range b.entries() {
		if e.Host != host || e.ID != id {
			es = append(es, e)
		}
	}
	sort.SliceStable(es, func(i, j int) bool { return es[i].Used.After(es[j].Used) })
	if len(es) > maxRememberedPorts {
		es = es[:maxRememberedPorts]
	}
	data, err := json.MarshalIndent(portFileContent{Ports: es}, "", "  ")
	if err != nil {
		return err
	}
	return writePrivateFile(b.dir, portsFile, append(data, '\n'))
}

// writePrivateFile replaces dir/name with data atomically: a fresh 0600 temp file
// (CreateTemp makes it so, and never reuses a name), synced, renamed over name.
func writePrivateFile(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, "."+name+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// stablePort is the listener to serve session rec on: ln (the --port given, or a free
// port) unless this laptop remembers another port for the session that is free now,
// which is then used instead (and ln closed). The port used is remembered; a
// remembered port that is taken is said so and kept for next time.
func (s *session) stablePort(ln net.Listener, rec wire.Record, fo ForwardOptions) net.Listener {
	if s.demo || !wire.ValidID(rec.ID) {
		return ln
	}
	book, err := openPortBook()
	if err != nil {
		s.status.line("tether: warning: cannot remember this session's local port: %s", termsafe.Clip(termsafe.OneLine(err.Error()), 200))
		return ln
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if prev, ok := book.lookup(s.host, rec.ID); ok && fo.Port == 0 && prev != port {
		again, err := listenLocal(prev)
		if err != nil {
			s.status.line("tether: local port %d, session %s's last time, is in use here; using %d this time", prev, rec.ID, port)
			return ln
		}
		ln.Close()
		ln, port = again, prev
	}
	if err := book.remember(s.host, rec.ID, port, time.Now()); err != nil {
		s.status.line("tether: warning: cannot remember this session's local port: %s", termsafe.Clip(termsafe.OneLine(err.Error()), 200))
	}
	return ln
}

// rememberedPorts are the local ports this laptop remembers for host's sessions (nil
// when it has none or cannot tell).
func rememberedPorts(host string) map[string]int {
	book, err := openPortBook()
	if err != nil {
		return nil
	}
	return book.forHost(host)
}

// errNotPrivate: tether's state directory is not a private directory of this user.
var errNotPrivate = errors.New("not private")

func notPrivate(dir, why string) error {
	return fmt.Errorf("%s is %s: %w; run `chmod 700 %s`, or set XDG_STATE_HOME to a private directory", dir, why, errNotPrivate, dir)
}
