package remote

import (
	"fmt"
	"net/netip"
	"os"
	"slices"

	"github.com/tether-dev/tether/internal/localpeer"
)

// verifyListener reports whether the app's own processes hold every LISTEN socket that
// a connection to addr reaches, so that requests (and the app's secret) may go there.
// False with no error is "not yet": nothing listens, or the listener is not found among
// the app's processes. A listener of another user, or of another process of ours, is a
// *portTakenError.
func verifyListener(addr netip.AddrPort, app *appProc) (bool, error) {
	all, err := localpeer.Listening()
	if err != nil {
		return false, fmt.Errorf("cannot list the listening sockets: %w", err)
	}
	var cands []localpeer.Socket
	for _, s := range all {
		if reaches(s.Local, addr) {
			if s.UID != os.Getuid() {
				return false, &portTakenError{addr: addr, uid: s.UID}
			}
			cands = append(cands, s)
		}
	}
	if len(cands) == 0 {
		return false, nil
	}
	procs := liveProcs()
	members := appProcsIn(procs, app.pid, app.sid)
	held, err := localpeer.SocketInodes(members)
	if err != nil {
		return false, err
	}
	var missing []uint64
	for _, s := range cands {
		if _, ok := held[s.Inode]; !ok {
			missing = append(missing, s.Inode)
		}
	}
	if len(missing) == 0 {
		return true, nil
	}
	// Which process of ours holds it, then? One outside the app has the port; none
	// found is "not yet" (a descriptor being handed over).
	others := make([]int, 0, len(procs))
	for pid := range procs {
		others = append(others, pid)
	}
	all2, _ := localpeer.SocketInodes(others)
	for _, ino := range missing {
		if pid, ok := all2[ino]; ok && !slices.Contains(members, pid) {
			return false, &portTakenError{addr: addr, uid: os.Getuid(), pid: pid}
		}
	}
	return false, nil
}

// appListeners are the LISTEN sockets the app's processes hold.
func appListeners(app *appProc) ([]localpeer.Socket, error) {
	all, err := localpeer.Listening()
	if err != nil {
		return nil, err
	}
	return appListenersIn(all, app)
}

// appListenersIn are the sockets of all (LISTEN sockets, as localpeer.Listening
// gives them) that the app's processes hold.
func appListenersIn(all []localpeer.Socket, app *appProc) ([]localpeer.Socket, error) {
	held, err := localpeer.SocketInodes(appProcsIn(liveProcs(), app.pid, app.sid))
	if err != nil {
		return nil, err
	}
	var out []localpeer.Socket
	for _, s := range all {
		if _, ok := held[s.Inode]; ok && s.Inode != 0 {
			out = append(out, s)
		}
	}
	return out, nil
}

// appProcsIn are the app's processes: its supervisor (pid), the members of its process
// group in its session, and every descendant of the supervisor (which, a subreaper,
// keeps even those that left the group below it).
func appProcsIn(procs map[int]procStat, pid, sid int) []int {
	out := []int{pid}
	for _, p := range groupMembersIn(procs, pid, sid) {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	for _, p := range descendantsIn(procs, pid) {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}
