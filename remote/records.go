//go:build unix

package remote

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/tether-dev/tether/internal/termsafe"
	"github.com/tether-dev/tether/wire"
)

// Phases a session's record goes through, written by its server.
const (
	phaseStarting  = wire.StateStarting // the server is waiting for the app
	phaseRunning   = "running"          // ready: the server answers on its socket
	phaseAppExited = "app-exited"       // the app ended; the server is gone, the record and log stay
)

// sessionFile is what a session's directory holds in session.json: the ready record
// and what ls, stop and logs need to judge and end the session.
type sessionFile struct {
	wire.Record
	Phase string `json:"phase"`
	// ServerStart identifies the server process beyond its pid: the boot id and the
	// process's start time, so a reused pid (or a reboot) never passes for the server.
	ServerStart string `json:"server_start,omitempty"`
	// AppPID leads the app's process group; AppStart identifies it like ServerStart,
	// and AppSID is the session id the group lives in.
	AppPID   int    `json:"app_pid,omitempty"`
	AppStart string `json:"app_start,omitempty"`
	AppSID   int    `json:"app_sid,omitempty"`
	// TeamApps are a team server's app processes, one per --app that runs one (not
	// the static ones), each identified like AppPID: what stop (and ls --prune) end
	// when the server could not.
	TeamApps []appGroup `json:"team_apps,omitempty"`
	// SocketDir is where the sockets are when not in the session directory.
	SocketDir string `json:"socket_dir,omitempty"`
	// Slurm marks a Slurm session (launch --slurm), from its submit on: it lives in the
	// Slurm root and is judged by squeue, not by its server's pid.
	Slurm bool `json:"slurm,omitempty"`
	// Request is what the session was asked to run, for launch to find it again
	// (reuse.go); nil in records of earlier versions.
	Request *appRequest `json:"request,omitempty"`
	// Exit says how the app ended, once it has.
	Exit string `json:"exit,omitempty"`
	// Why is why a batch session's server ended when it did not stop on request (the
	// app exited, the setup failed, the idle timeout): what `batch watch` reports.
	Why   *wire.Failure `json:"why,omitempty"`
	Ended time.Time     `json:"ended,omitzero"`
}

// appGroup is an app process recorded for stop: the leader of its process group
// (PID), identified beyond its pid (Start, like ServerStart), and the session id its
// group lives in (SID).
type appGroup struct {
	Name  string `json:"name,omitempty"`
	PID   int    `json:"pid"`
	Start string `json:"start,omitempty"`
	SID   int    `json:"sid,omitempty"`
}

// appGroups are every app process group of the session: the one app's, or each of
// a team server's.
func (sf *sessionFile) appGroups() []appGroup {
	var gs []appGroup
	if sf.AppPID > 1 {
		gs = append(gs, appGroup{PID: sf.AppPID, Start: sf.AppStart, SID: sf.AppSID})
	}
	for _, g := range sf.TeamApps {
		if g.PID > 1 {
			gs = append(gs, g)
		}
	}
	return gs
}

// startedApp records an app process: the one app's (name empty) in AppPID, a team
// app's in TeamApps under its name (replacing the one it restarts).
func (sf *sessionFile) startedApp(name string, p *appProc) {
	if name == "" {
		sf.AppPID, sf.AppStart, sf.AppSID = p.pid, p.ident, p.sid
		return
	}
	g := appGroup{Name: name, PID: p.pid, Start: p.ident, SID: p.sid}
	for i := range sf.TeamApps {
		if sf.TeamApps[i].Name == name {
			sf.TeamApps[i] = g
			return
		}
	}
	sf.TeamApps = append(sf.TeamApps, g)
}

// writeFileAtomic writes data to dir/name so that readers see the old content or the
// new, never a mix: a fresh temp file (O_EXCL|O_NOFOLLOW, 0600 whatever the umask),
// synced, its mode and owner checked, then renamed over name.
func writeFileAtomic(dir, name string, data []byte) (err error) {
	suffix, err := newID()
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "."+name+"."+suffix+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("writing %s: %w", filepath.Join(dir, name), err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// The create mode went through the umask, which can only clear bits; set it
	// explicitly anyway so nothing depends on that.
	if err = f.Chmod(0o600); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = checkPrivateFile(f, tmp); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return err
	}
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// checkPrivateFile refuses a file that is not a regular file of ours with mode 0600.
func checkPrivateFile(f *os.File, name string) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", name)
	}
	if fi.Mode().Perm() != 0o600 {
		return fmt.Errorf("%s has mode %04o, not 0600: another user may have read it; remove the session with `tether stop` and start it again", name, fi.Mode().Perm())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%s is not owned by you", name)
	}
	return nil
}

// writeRecord stores sf in the session's directory, atomically.
func writeRecord(s *session, sf *sessionFile) error {
	b, err := json.MarshalIndent(sf, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(s.Dir, recordFile, append(b, '\n'))
}

// readRecord reads a session's record without following symlinks and refuses one that
// is not a 0600 regular file of ours.
func readRecord(path string) (*sessionFile, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := checkPrivateFile(f, path); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, wire.MaxRecordLength+1))
	if err != nil {
		return nil, err
	}
	if len(b) > wire.MaxRecordLength {
		return nil, fmt.Errorf("%s is too large", path)
	}
	var sf sessionFile
	if err := json.Unmarshal(b, &sf); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &sf, nil
}

// entry is one session found under the root.
type entry struct {
	s   *session
	rec *sessionFile // nil when the directory holds no readable record
	err error        // why rec is nil
}

// scan lists the session directories under root. Entries that are not private
// directories of ours are skipped; a directory without a readable record is returned
// with err set (a server killed while starting leaves one).
func scan(root string) ([]entry, error) {
	des, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", root, err)
	}
	var out []entry
	for _, de := range des {
		if !wire.ValidID(de.Name()) {
			continue
		}
		dir := filepath.Join(root, de.Name())
		if err := checkPrivateDir(dir); err != nil {
			continue
		}
		s := &session{ID: de.Name(), Root: root, Dir: dir, SockDir: dir}
		rec, err := readRecord(s.recordPath())
		if err == nil && rec.ID != s.ID {
			rec, err = nil, fmt.Errorf("%s names session %q", s.recordPath(), termsafe.Clip(rec.ID, 64))
		}
		if rec != nil && rec.SocketDir != "" && isShortSocketDir(rec.SocketDir, s.ID) {
			s.SockDir = rec.SocketDir
		}
		out = append(out, entry{s: s, rec: rec, err: err})
	}
	sortEntries(out)
	return out, nil
}
