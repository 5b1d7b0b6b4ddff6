package localpeer

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Windows' TCP tables, as iphlpapi's GetExtendedTcpTable fills them for the
// TCP_TABLE_OWNER_PID_* classes. The parsing is plain Go (built everywhere, so its
// tests run on any system); localpeer_windows.go makes the calls.
//
//	MIB_TCPTABLE_OWNER_PID   { DWORD dwNumEntries; MIB_TCPROW_OWNER_PID table[]; }
//	MIB_TCPROW_OWNER_PID     { DWORD dwState, dwLocalAddr, dwLocalPort, dwRemoteAddr,
//	                           dwRemotePort, dwOwningPid; }                     24 bytes
//	MIB_TCP6TABLE_OWNER_PID  { DWORD dwNumEntries; MIB_TCP6ROW_OWNER_PID table[]; }
//	MIB_TCP6ROW_OWNER_PID    { UCHAR ucLocalAddr[16]; DWORD dwLocalScopeId, dwLocalPort;
//	                           UCHAR ucRemoteAddr[16]; DWORD dwRemoteScopeId,
//	                           dwRemotePort, dwState, dwOwningPid; }            56 bytes
//
// DWORDs are little-endian (every Windows architecture). Addresses are in network
// byte order; a port is in network byte order in the low 16 bits of its DWORD (the
// first two bytes in memory; the upper bytes may hold garbage).

const (
	tcpRow4Len = 24
	tcpRow6Len = 56
)

// Windows' MIB_TCP_STATE values, and the Linux numbers State uses for them.
var winTCPStates = map[uint32]State{
	1:  7,           // CLOSED
	2:  Listen,      // LISTEN
	3:  2,           // SYN_SENT
	4:  3,           // SYN_RCVD
	5:  Established, // ESTAB
	6:  4,           // FIN_WAIT1
	7:  5,           // FIN_WAIT2
	8:  8,           // CLOSE_WAIT
	9:  11,          // CLOSING
	10: 9,           // LAST_ACK
	11: TimeWait,    // TIME_WAIT
	12: 7,           // DELETE_TCB
}

// parseTCPTable parses a MIB_TCPTABLE_OWNER_PID (ipv6 false) or
// MIB_TCP6TABLE_OWNER_PID (ipv6 true).
func parseTCPTable(b []byte, ipv6 bool) ([]Socket, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("localpeer: TCP table of %d bytes", len(b))
	}
	n := int(binary.LittleEndian.Uint32(b))
	rowLen := tcpRow4Len
	if ipv6 {
		rowLen = tcpRow6Len
	}
	if n < 0 || n > (len(b)-4)/rowLen {
		return nil, fmt.Errorf("localpeer: TCP table says %d rows but holds %d bytes", n, len(b))
	}
	out := make([]Socket, 0, n)
	for i := range n {
		r := b[4+i*rowLen : 4+(i+1)*rowLen]
		if ipv6 {
			out = append(out, parseTCPRow6(r))
		} else {
			out = append(out, parseTCPRow4(r))
		}
	}
	return out, nil
}

func parseTCPRow4(r []byte) Socket {
	le := binary.LittleEndian
	return Socket{
		State:  winState(le.Uint32(r[0:])),
		Local:  netip.AddrPortFrom(netip.AddrFrom4([4]byte(r[4:8])), binary.BigEndian.Uint16(r[8:])),
		Remote: netip.AddrPortFrom(netip.AddrFrom4([4]byte(r[12:16])), binary.BigEndian.Uint16(r[16:])),
		PID:    int(le.Uint32(r[20:])),
		UID:    -1,
	}
}

func parseTCPRow6(r []byte) Socket {
	le := binary.LittleEndian
	return Socket{
		Local:  netip.AddrPortFrom(netip.AddrFrom16([16]byte(r[0:16])), binary.BigEndian.Uint16(r[20:])),
		Remote: netip.AddrPortFrom(netip.AddrFrom16([16]byte(r[24:40])), binary.BigEndian.Uint16(r[44:])),
		State:  winState(le.Uint32(r[48:])),
		PID:    int(le.Uint32(r[52:])),
		UID:    -1,
	}
}

func winState(s uint32) State {
	if st, ok := winTCPStates[s]; ok {
		return st
	}
	return 0
}

// findPair returns the row of rows whose local and remote addresses are local and
// remote (IPv4-mapped IPv6 rows compared as IPv4).
func findPair(rows []Socket, local, remote netip.AddrPort) (Socket, bool) {
	for _, s := range rows {
		l, r := unmapPair(s.Local, s.Remote)
		if l == local && r == remote {
			s.Local, s.Remote = l, r
			return s, true
		}
	}
	return Socket{}, false
}
