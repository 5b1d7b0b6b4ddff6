//go:build unix

package remote

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/tether-dev/tether/internal/localpeer"
	"github.com/tether-dev/tether/wire"
)

// A COMMAND that does not say where the app listens: no {port}, {socket} or $PORT
// (PortHint). `python3 -m http.server` takes 8000, `jupyter lab` 8888, a Shiny or Dash
// script whatever its author wrote. tether still sets PORT and waits there, for apps
// that read it without saying so; where the kernel says who holds a socket (Linux) it
// also looks for the app's own listener, and uses it:
//   - a LISTEN socket held by the app's processes (its process group and the
//     supervisor's descendants, matched by socket inode as verifyListener matches the
//     listener on {port}: appListenersIn) and owned by the session's user;
//   - on loopback, or a wildcard (0.0.0.0, ::) reached through loopback, which the
//     check after ready (exposed) refuses unless --allow-exposed, as for any app;
//   - of several ports, the only one that answers HTTP, else the first to listen
//     (in the order the looks saw them; of ports one look saw first, the lowest); a
//     port that does not answer HTTP is taken only after findSettle, a moment for one
//     that does to appear;
//   - before it is used, every listener a connection to the chosen address reaches
//     must be the app's (verifyListener), and every connection to it is judged as a
//     {port} app's are (checkAppConn); the HTTP check among several ports sends a
//     bare HEAD (none of the app's headers) on connections judged the same way.
//
// Listing the sockets costs a read of /proc/net/tcp{,6}; matching them to the app's
// processes (a read of every /proc/PID/stat and the app's descriptors) is done only when
// a listener of ours appears that was not judged before. Elsewhere (macOS, the BSDs)
// nothing tells whose a listener is: the app must listen on $PORT, and serve says so up
// front (portNote).

// findSettle is how long a port that does not answer HTTP waits for a port that does
// before it is taken as the app's.
const findSettle = 2 * time.Second

// findsPort reports whether serve looks for the app's own port for a command: a
// generic COMMAND (BindAuto) that names neither {port} nor {socket} nor $PORT.
func findsPort(spec AppSpec) bool {
	return spec.Bind == BindAuto && PortHint(spec.Command) != ""
}

// portNote is the note serve prints before starting such a command, or "": none
// where it finds the app's port, PortHint's where it cannot.
func portNote(command []string, canFind bool) string {
	if canFind {
		return ""
	}
	if h := PortHint(command); h != "" {
		return h + " (this system does not tell tether which port the app itself listens on)"
	}
	return ""
}

// foundPort is the app's own listener, once chosen.
type foundPort struct {
	addr netip.AddrPort // where to connect: a loopback address
	all  []string       // every port the app listens on, as addresses, in the order seen
	why  string         // how it was picked among several: ", the only one that answers HTTP"
}

// note is the line serve prints: "the app listens on 127.0.0.1:8000; using it".
func (f *foundPort) note() string {
	if len(f.all) <= 1 {
		return fmt.Sprintf("the app listens on %s; using it", f.addr)
	}
	return fmt.Sprintf("the app listens on %s; using %s%s", joinAddrs(f.all), f.addr, f.why)
}

// portFinder looks for the app's own listener during one wait.
type portFinder struct {
	app    *appProc
	skip   uint16                // $PORT's port: the prober watches it itself
	judged map[uint64]bool       // listeners of ours already matched against the app's processes
	mine   map[uint64]bool       // of those, the app's
	seen   map[uint16]int        // each port of the app's, by the look that first saw it
	http   map[uint16]httpAnswer // what each port answered
	tried  map[uint16]time.Time  // when each port was last probed for HTTP
	looks  int
	began  time.Time // when the wait began
	first  time.Time // when the app's first port was seen
	next   time.Time // the next look, no sooner
	off    bool      // the system cannot tell (not Linux)
}

func newPortFinder(app *appProc, skip uint16) *portFinder {
	return &portFinder{app: app, skip: skip, began: time.Now(), judged: map[uint64]bool{}, mine: map[uint64]bool{},
		seen: map[uint16]int{}, http: map[uint16]httpAnswer{}, tried: map[uint16]time.Time{}}
}

// lookEvery is the pause between looks after waiting so long: a look reads the
// kernel's whole TCP table, which on a busy login node holds thousands of sockets.
func lookEvery(waited time.Duration) time.Duration {
	if waited < 5*time.Second {
		return 50 * time.Millisecond
	}
	return 250 * time.Millisecond
}

// look returns the app's own listener once one can be chosen, else nil. Its error is
// a *portTakenError (a listener of another user gets the connections made to the
// chosen address) or the sockets could not be read.
func (f *portFinder) look(ctx context.Context) (*foundPort, error) {
	now := time.Now()
	if f.off || now.Before(f.next) {
		return nil, nil
	}
	f.next = now.Add(lookEvery(now.Sub(f.began)))
	ls, err := f.listeners()
	switch {
	case errors.Is(err, localpeer.ErrUnsupported):
		f.off = true
		return nil, nil
	case err != nil:
		return nil, err
	}
	byPort := map[uint16][]localpeer.Socket{}
	for _, s := range ls {
		p := s.Local.Port()
		if p == f.skip {
			continue
		}
		byPort[p] = append(byPort[p], s)
	}
	if len(byPort) == 0 {
		return nil, nil
	}
	f.looks++
	var ports []uint16
	for p := range byPort {
		if _, ok := f.seen[p]; !ok {
			f.seen[p] = f.looks
		}
		ports = append(ports, p)
	}
	if f.first.IsZero() {
		f.first = now
	}
	// The order they came in, then the lowest port.
	slices.SortFunc(ports, func(a, b uint16) int {
		if f.seen[a] != f.seen[b] {
			return f.seen[a] - f.seen[b]
		}
		return int(a) - int(b)
	})
	var web []uint16
	for _, p := range ports {
		if f.http[p] == httpUnknown && now.Sub(f.tried[p]) >= 250*time.Millisecond {
			f.tried[p] = now
			f.http[p] = answersHTTP(ctx, dialAddr(byPort[p]))
		}
		if f.http[p] == httpYes {
			web = append(web, p)
		}
	}
	pick, why := uint16(0), ""
	switch {
	case len(web) == 1:
		pick, why = web[0], ", the only one that answers HTTP"
	case len(web) > 1:
		pick, why = web[0], f.firstWhy(web)
	case time.Since(f.first) >= findSettle:
		pick, why = ports[0], f.firstWhy(ports)
	default:
		return nil, nil // none answers HTTP yet: a moment for one that does
	}
	found := &foundPort{addr: dialAddr(byPort[pick]), why: why}
	for _, p := range ports {
		found.all = append(found.all, dialAddr(byPort[p]).String())
	}
	// Every listener a connection to the address reaches must be the app's (a more
	// specific one of another user would take them from the app's wildcard).
	ok, err := verifyListener(found.addr, f.app)
	if err != nil || !ok {
		return nil, err
	}
	return found, nil
}

// firstWhy says how ports[0] was picked among ports (in the order sorted by look):
// it listened first, or they appeared together and it has the lowest number.
func (f *portFinder) firstWhy(ports []uint16) string {
	if len(ports) > 1 && f.seen[ports[0]] == f.seen[ports[1]] {
		return ", the lowest port (they began to listen together)"
	}
	return ", the first to listen"
}

// listeners are the app's LISTEN sockets of our user; the app's processes are looked
// at only when a listener of ours appeared that was not judged before.
func (f *portFinder) listeners() ([]localpeer.Socket, error) {
	all, err := localpeer.Listening()
	if err != nil {
		return nil, err
	}
	me := os.Getuid()
	var ours []localpeer.Socket
	fresh := false
	for _, s := range all {
		if s.UID != me || s.Inode == 0 {
			continue
		}
		ours = append(ours, s)
		fresh = fresh || !f.judged[s.Inode]
	}
	if fresh {
		held, err := appListenersIn(ours, f.app)
		if err != nil {
			return nil, err
		}
		for _, s := range held {
			f.mine[s.Inode] = true
		}
		for _, s := range ours {
			f.judged[s.Inode] = true
		}
	}
	var out []localpeer.Socket
	for _, s := range ours {
		if f.mine[s.Inode] {
			out = append(out, s)
		}
	}
	return out, nil
}

// dialAddr is where to connect to reach the listeners ls (one port): 127.0.0.1 or
// another loopback address it is bound to, else ::1, else a wildcard's own loopback
// (0.0.0.0 by 127.0.0.1, :: by ::1), else the address itself.
func dialAddr(ls []localpeer.Socket) netip.AddrPort {
	port := ls[0].Local.Port()
	rank := func(a netip.Addr) int {
		switch {
		case a == netip.AddrFrom4([4]byte{127, 0, 0, 1}):
			return 0
		case a.Is4() && a.IsLoopback():
			return 1
		case a.IsLoopback():
			return 2
		case a.Is4() && a.IsUnspecified():
			return 3
		case a.IsUnspecified():
			return 4
		}
		return 5
	}
	best := ls[0].Local.Addr().Unmap()
	for _, s := range ls[1:] {
		if a := s.Local.Addr().Unmap(); rank(a) < rank(best) {
			best = a
		}
	}
	switch {
	case best.Is4() && best.IsUnspecified():
		best = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	case best.IsUnspecified():
		best = netip.IPv6Loopback()
	}
	return netip.AddrPortFrom(best, port)
}

// httpAnswer is what a port said to an HTTP request.
type httpAnswer int

const (
	httpUnknown httpAnswer = iota // no answer (yet): asked again later
	httpYes                       // an HTTP response, any status
	httpNo                        // something else: another protocol
)

// answersHTTP sends an HTTP request to addr, on a connection judged first as the
// app's are, and says whether an HTTP response (any status) comes within half a second.
// No answer in time, or a connection that fails or is refused, is httpUnknown: a
// server that listens before it serves answers later.
func answersHTTP(ctx context.Context, addr netip.AddrPort) httpAnswer {
	d := net.Dialer{Timeout: 500 * time.Millisecond}
	c, err := d.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return httpUnknown
	}
	defer c.Close()
	if checkAppConn(c) != nil {
		return httpUnknown
	}
	c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := fmt.Fprintf(c, "HEAD / HTTP/1.0\r\nHost: %s\r\n\r\n", addr); err != nil {
		return httpUnknown
	}
	line, err := bufio.NewReaderSize(c, 256).ReadSlice('\n')
	switch {
	case strings.HasPrefix(string(line), "HTTP/1."):
		return httpYes
	case len(line) > 0 || errors.Is(err, io.EOF):
		return httpNo // it spoke, or closed, without HTTP
	}
	return httpUnknown
}

// find asks the finder (if any) for the app's own port; once it is found, the plan
// points there and the listener counts as verified.
func (pr *prober) find(ctx context.Context) (bool, error) {
	if pr.finder == nil {
		return false, nil
	}
	found, err := pr.finder.look(ctx)
	if err != nil || found == nil {
		return false, err
	}
	pr.p.addrPort, pr.p.address, pr.p.found = found.addr, found.addr.String(), found
	pr.verified, pr.last = true, nil
	return pr.p.readyPath == "", nil
}

// foundTail ends the note on a found port as runApp's note on any TCP app does: who
// else can reach it.
func foundTail(secret bool) wire.Text {
	if secret {
		return wire.Textf("; other users of %v can connect to it there, but it demands its own per-session secret, which only the proxy sends", wire.ThisMachine)
	}
	return wire.Textf("; other users of %v can reach it there without the token (apps that can listen on {socket} are private)", wire.ThisMachine)
}
