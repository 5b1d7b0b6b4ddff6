package localpeer

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
)

func sameUser(s Socket) (bool, error) {
	if s.UID < 0 {
		return false, fmt.Errorf("localpeer: no owner known for %s", s)
	}
	if s.Inode == 0 {
		// No process holds it any more: closed (orphaned, or a TIME_WAIT socket, which
		// the kernel reports as uid 0, root's). Whatever it sent, no user of ours sent it
		// and waits for the answer.
		return false, nil
	}
	return s.UID == os.Getuid(), nil
}

// lookup asks the kernel for exactly one socket (sock_diag, no dump: the kernel looks
// the address pair up in its hash tables, so the cost does not grow with the number
// of sockets). Where netlink is refused (a seccomp filter, an old kernel) it reads
// /proc/net/tcp{,6} instead.
func lookup(local, remote netip.AddrPort) (Socket, error) {
	local, remote = unmapPair(local, remote)
	s, err := diagLookup(local, remote)
	if err == nil || errors.Is(err, ErrNotFound) {
		return s, err
	}
	return procLookup(local, remote)
}

const (
	sockDiagByFamily = 20 // SOCK_DIAG_BY_FAMILY
	nlmsgHdrLen      = 16
	diagReqLen       = 56 // struct inet_diag_req_v2
	diagMsgLen       = 72 // struct inet_diag_msg
)

// diagLookup looks up local/remote. An IPv4 pair is tried as AF_INET, then as the
// IPv4-mapped pair of an AF_INET6 socket (a dual-stack listener's accepted socket).
func diagLookup(local, remote netip.AddrPort) (Socket, error) {
	if local.Addr().Is4() && remote.Addr().Is4() {
		s, err := diagLookupFamily(syscall.AF_INET, local, remote)
		if !errors.Is(err, ErrNotFound) {
			return s, err
		}
		mapped := func(a netip.AddrPort) netip.AddrPort {
			return netip.AddrPortFrom(netip.AddrFrom16(a.Addr().As16()), a.Port())
		}
		s, err = diagLookupFamily(syscall.AF_INET6, mapped(local), mapped(remote))
		if err == nil {
			s.Local, s.Remote = unmapPair(s.Local, s.Remote)
		}
		return s, err
	}
	return diagLookupFamily(syscall.AF_INET6, local, remote)
}

func diagLookupFamily(family int, local, remote netip.AddrPort) (Socket, error) {
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, syscall.NETLINK_INET_DIAG)
	if err != nil {
		return Socket{}, fmt.Errorf("localpeer: netlink: %w", err)
	}
	defer syscall.Close(fd)

	req := make([]byte, nlmsgHdrLen+diagReqLen)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], sockDiagByFamily)
	ne.PutUint16(req[6:], syscall.NLM_F_REQUEST)
	ne.PutUint32(req[8:], 1) // sequence
	r := req[nlmsgHdrLen:]
	r[0] = byte(family)
	r[1] = syscall.IPPROTO_TCP
	ne.PutUint32(r[4:], 0xffffffff) // every state
	putSockID(r[8:], local, remote)
	ne.PutUint32(r[8+40:], 0xffffffff) // idiag_cookie: INET_DIAG_NOCOOKIE
	ne.PutUint32(r[8+44:], 0xffffffff)
	if err := syscall.Sendto(fd, req, 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		return Socket{}, fmt.Errorf("localpeer: netlink: %w", err)
	}
	buf := make([]byte, 8192)
	for range 4 {
		n, _, err := syscall.Recvfrom(fd, buf, 0)
		if err != nil {
			if err == syscall.EINTR {
				continue
			}
			return Socket{}, fmt.Errorf("localpeer: netlink: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return Socket{}, fmt.Errorf("localpeer: netlink: %w", err)
		}
		for _, m := range msgs {
			switch m.Header.Type {
			case syscall.NLMSG_ERROR:
				if len(m.Data) < 4 {
					return Socket{}, errors.New("localpeer: netlink: short error")
				}
				errno := -int32(ne.Uint32(m.Data))
				if errno == 0 {
					continue
				}
				if syscall.Errno(errno) == syscall.ENOENT {
					return Socket{}, ErrNotFound
				}
				return Socket{}, fmt.Errorf("localpeer: netlink: %w", syscall.Errno(errno))
			case sockDiagByFamily:
				s, err := parseDiagMsg(m.Data)
				if err != nil {
					return Socket{}, err
				}
				// The kernel falls back to a listener on the local port when no
				// connection matches; only the exact pair counts.
				if s.Local != local || s.Remote != remote {
					return Socket{}, ErrNotFound
				}
				return s, nil
			}
		}
	}
	return Socket{}, errors.New("localpeer: netlink: no answer")
}

// putSockID writes struct inet_diag_sockid's ports and addresses (network order).
func putSockID(b []byte, local, remote netip.AddrPort) {
	binary.BigEndian.PutUint16(b[0:], local.Port())
	binary.BigEndian.PutUint16(b[2:], remote.Port())
	putAddr(b[4:20], local.Addr())
	putAddr(b[20:36], remote.Addr())
}

func putAddr(b []byte, a netip.Addr) {
	if a.Is4() {
		v := a.As4()
		copy(b, v[:])
		return
	}
	v := a.As16()
	copy(b, v[:])
}

func parseDiagMsg(d []byte) (Socket, error) {
	if len(d) < diagMsgLen {
		return Socket{}, errors.New("localpeer: netlink: short answer")
	}
	family := d[0]
	id := d[4:52]
	addr := func(b []byte) netip.Addr {
		if family == syscall.AF_INET {
			return netip.AddrFrom4([4]byte(b[:4]))
		}
		return netip.AddrFrom16([16]byte(b[:16]))
	}
	ne := binary.NativeEndian
	return Socket{
		Local:  netip.AddrPortFrom(addr(id[4:20]), binary.BigEndian.Uint16(id[0:])),
		Remote: netip.AddrPortFrom(addr(id[20:36]), binary.BigEndian.Uint16(id[2:])),
		State:  State(d[1]),
		UID:    int(ne.Uint32(d[64:])),
		Inode:  uint64(ne.Uint32(d[68:])),
	}, nil
}

// procLookup finds local/remote in /proc/net/tcp or tcp6 (an IPv4 pair also as
// IPv4-mapped in tcp6).
func procLookup(local, remote netip.AddrPort) (Socket, error) {
	found := Socket{}
	ok := false
	err := scanProc(func(s Socket) bool {
		l, r := unmapPair(s.Local, s.Remote)
		if l == local && r == remote {
			found, ok = s, true
			found.Local, found.Remote = l, r
			return false
		}
		return true
	})
	if err != nil {
		return Socket{}, err
	}
	if !ok {
		return Socket{}, ErrNotFound
	}
	return found, nil
}

func listening() ([]Socket, error) {
	var out []Socket
	err := scanProc(func(s Socket) bool {
		if s.State == Listen {
			out = append(out, s)
		}
		return true
	})
	return out, err
}

// scanProc calls fn for each socket of /proc/net/tcp and /proc/net/tcp6 until fn
// returns false. A missing tcp6 (IPv6 disabled) is no error.
func scanProc(fn func(Socket) bool) error {
	for _, name := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(name)
		if err != nil {
			if name == "/proc/net/tcp6" && errors.Is(err, os.ErrNotExist) {
				continue
			}
			return fmt.Errorf("localpeer: %w", err)
		}
		more, err := scanProcFile(f, fn)
		f.Close()
		if err != nil {
			return fmt.Errorf("localpeer: %s: %w", name, err)
		}
		if !more {
			return nil
		}
	}
	return nil
}

func scanProcFile(f *os.File, fn func(Socket) bool) (bool, error) {
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<16)
	sc.Scan() // header
	for sc.Scan() {
		s, err := parseProcLine(sc.Text())
		if err != nil {
			return false, err
		}
		if !fn(s) {
			return false, nil
		}
	}
	return true, sc.Err()
}

// parseProcLine parses one line of /proc/net/tcp{,6}:
//
//	sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
func parseProcLine(line string) (Socket, error) {
	f := strings.Fields(line)
	if len(f) < 10 {
		return Socket{}, fmt.Errorf("malformed line %q", line)
	}
	local, err1 := parseProcAddr(f[1])
	remote, err2 := parseProcAddr(f[2])
	st, err3 := strconv.ParseUint(f[3], 16, 8)
	uid, err4 := strconv.Atoi(f[7])
	inode, err5 := strconv.ParseUint(f[9], 10, 64)
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		return Socket{}, fmt.Errorf("malformed line %q: %w", line, err)
	}
	return Socket{Local: local, Remote: remote, State: State(st), UID: uid, Inode: inode}, nil
}

// parseProcAddr parses "0100007F:1F90" (IPv4) or 32 hex digits and a port (IPv6):
// the address is printed as 32-bit words in the kernel's byte order.
func parseProcAddr(s string) (netip.AddrPort, error) {
	h, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", s)
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad port in %q", s)
	}
	raw, err := hex.DecodeString(h)
	if err != nil || len(raw) != 4 && len(raw) != 16 {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", s)
	}
	b := make([]byte, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(b[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	var a netip.Addr
	if len(b) == 4 {
		a = netip.AddrFrom4([4]byte(b))
	} else {
		a = netip.AddrFrom16([16]byte(b))
	}
	return netip.AddrPortFrom(a, uint16(port)), nil
}

// socketInodes reads /proc/PID/fd of each pid: a socket descriptor links to
// "socket:[INODE]".
func socketInodes(pids []int) (map[uint64]int, error) {
	out := map[uint64]int{}
	for _, pid := range pids {
		dir := "/proc/" + strconv.Itoa(pid) + "/fd/"
		f, err := os.Open(dir)
		if err != nil {
			continue // gone, or not ours to read
		}
		names, _ := f.Readdirnames(-1)
		f.Close()
		for _, n := range names {
			link, err := os.Readlink(dir + n)
			if err != nil {
				continue
			}
			s, ok := strings.CutPrefix(link, "socket:[")
			if !ok || !strings.HasSuffix(s, "]") {
				continue
			}
			if ino, err := strconv.ParseUint(s[:len(s)-1], 10, 64); err == nil {
				if _, seen := out[ino]; !seen {
					out[ino] = pid
				}
			}
		}
	}
	return out, nil
}
