package localpeer

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"
)

// Windows names the process that owns each TCP socket (iphlpapi's GetExtendedTcpTable,
// as netstat -ano shows it), not a user: SameUser opens that process and compares the
// user of its token with ours.

var (
	iphlpapi                = windows.NewLazySystemDLL("iphlpapi.dll")
	procGetExtendedTcpTable = iphlpapi.NewProc("GetExtendedTcpTable")
)

// TCP_TABLE_CLASS values.
const (
	tcpTableOwnerPIDListener    = 3
	tcpTableOwnerPIDConnections = 4
)

// tcpTable returns the rows of one table class for family (AF_INET or AF_INET6).
func tcpTable(family uint32, class uint32) ([]Socket, error) {
	if err := procGetExtendedTcpTable.Find(); err != nil {
		return nil, fmt.Errorf("localpeer: %w", err)
	}
	size := uint32(16 << 10)
	for range 8 {
		buf := make([]byte, size)
		r, _, _ := procGetExtendedTcpTable.Call(uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&size)), 0,
			uintptr(family), uintptr(class), 0)
		switch syscall.Errno(r) {
		case 0:
			return parseTCPTable(buf[:min(int(size), len(buf))], family == windows.AF_INET6)
		case windows.ERROR_INSUFFICIENT_BUFFER:
			size += 4 << 10 // connections come and go between the calls
			continue
		default:
			return nil, fmt.Errorf("localpeer: GetExtendedTcpTable: %w", syscall.Errno(r))
		}
	}
	return nil, errors.New("localpeer: GetExtendedTcpTable: the table kept growing")
}

// lookup finds local/remote among the connections: an IPv4 pair in the IPv4 table
// and, failing that, IPv4-mapped in the IPv6 one (a dual-stack socket's).
func lookup(local, remote netip.AddrPort) (Socket, error) {
	local, remote = unmapPair(local, remote)
	families := []uint32{windows.AF_INET6}
	if local.Addr().Is4() && remote.Addr().Is4() {
		families = []uint32{windows.AF_INET, windows.AF_INET6}
	}
	for _, f := range families {
		rows, err := tcpTable(f, tcpTableOwnerPIDConnections)
		if err != nil {
			return Socket{}, err
		}
		if s, ok := findPair(rows, local, remote); ok {
			return s, nil
		}
	}
	return Socket{}, ErrNotFound
}

func listening() ([]Socket, error) {
	var out []Socket
	for _, f := range []uint32{windows.AF_INET, windows.AF_INET6} {
		rows, err := tcpTable(f, tcpTableOwnerPIDListener)
		if err != nil {
			return nil, err
		}
		out = append(out, rows...)
	}
	return out, nil
}

var me struct {
	once sync.Once
	sid  *windows.SID
	err  error
}

// mySID is the user of this process's token.
func mySID() (*windows.SID, error) {
	me.once.Do(func() {
		tu, err := windows.GetCurrentProcessToken().GetTokenUser()
		if err != nil {
			me.err = fmt.Errorf("localpeer: our own token: %w", err)
			return
		}
		me.sid, me.err = tu.User.Sid.Copy()
	})
	return me.sid, me.err
}

func sameUser(s Socket) (bool, error) {
	if s.PID == os.Getpid() {
		return true, nil
	}
	if s.PID <= 0 || s.State == TimeWait {
		return false, nil // the System Idle Process "owns" closed connections
	}
	mine, err := mySID()
	if err != nil {
		return false, err
	}
	theirs, err := processSID(uint32(s.PID))
	if err != nil {
		return false, nil // a process we may not open is not ours
	}
	return windows.EqualSid(theirs, mine), nil
}

// processSID is the user of process pid's token.
func processSID(pid uint32) (*windows.SID, error) {
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, pid)
	if err != nil {
		return nil, err
	}
	defer windows.CloseHandle(h)
	var tok windows.Token
	if err := windows.OpenProcessToken(h, windows.TOKEN_QUERY, &tok); err != nil {
		return nil, err
	}
	defer tok.Close()
	tu, err := tok.GetTokenUser()
	if err != nil {
		return nil, err
	}
	return tu.User.Sid.Copy()
}

// socketInodes: Windows sockets have no inodes (the remote side is Linux-only).
func socketInodes([]int) (map[uint64]int, error) { return nil, ErrUnsupported }
