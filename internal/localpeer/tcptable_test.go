package localpeer

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// row4 lays out a MIB_TCPROW_OWNER_PID as Windows documents it: DWORDs little-endian,
// the address in network order, the port in network order in the DWORD's low 16 bits
// (the high bytes set to junk, which Windows does not promise to clear).
func row4(state uint32, local, remote string, pid uint32) []byte {
	l, r := netip.MustParseAddrPort(local), netip.MustParseAddrPort(remote)
	b := make([]byte, tcpRow4Len)
	binary.LittleEndian.PutUint32(b[0:], state)
	la, ra := l.Addr().As4(), r.Addr().As4()
	copy(b[4:], la[:])
	binary.BigEndian.PutUint16(b[8:], l.Port())
	b[10], b[11] = 0xde, 0xad
	copy(b[12:], ra[:])
	binary.BigEndian.PutUint16(b[16:], r.Port())
	b[18], b[19] = 0xbe, 0xef
	binary.LittleEndian.PutUint32(b[20:], pid)
	return b
}

// row6 lays out a MIB_TCP6ROW_OWNER_PID.
func row6(state uint32, local, remote string, pid uint32) []byte {
	l, r := netip.MustParseAddrPort(local), netip.MustParseAddrPort(remote)
	b := make([]byte, tcpRow6Len)
	la, ra := l.Addr().As16(), r.Addr().As16()
	copy(b[0:], la[:])
	binary.LittleEndian.PutUint32(b[16:], 0) // scope id
	binary.BigEndian.PutUint16(b[20:], l.Port())
	copy(b[24:], ra[:])
	binary.LittleEndian.PutUint32(b[40:], 0)
	binary.BigEndian.PutUint16(b[44:], r.Port())
	binary.LittleEndian.PutUint32(b[48:], state)
	binary.LittleEndian.PutUint32(b[52:], pid)
	return b
}

func table(rows ...[]byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(rows)))
	for _, r := range rows {
		b = append(b, r...)
	}
	return b
}

func TestParseTCPTable(t *testing.T) {
	v4 := table(
		row4(2, "127.0.0.1:8080", "0.0.0.0:0", 100),
		row4(5, "127.0.0.1:50000", "127.0.0.1:8080", 4242),
		row4(5, "127.0.0.1:8080", "127.0.0.1:50000", 100),
		row4(11, "127.0.0.1:50001", "127.0.0.1:8080", 0),
	)
	rows, err := parseTCPTable(v4, false)
	if err != nil {
		t.Fatal(err)
	}
	want := []Socket{
		{Local: netip.MustParseAddrPort("127.0.0.1:8080"), Remote: netip.MustParseAddrPort("0.0.0.0:0"), State: Listen, PID: 100, UID: -1},
		{Local: netip.MustParseAddrPort("127.0.0.1:50000"), Remote: netip.MustParseAddrPort("127.0.0.1:8080"), State: Established, PID: 4242, UID: -1},
		{Local: netip.MustParseAddrPort("127.0.0.1:8080"), Remote: netip.MustParseAddrPort("127.0.0.1:50000"), State: Established, PID: 100, UID: -1},
		{Local: netip.MustParseAddrPort("127.0.0.1:50001"), Remote: netip.MustParseAddrPort("127.0.0.1:8080"), State: TimeWait, PID: 0, UID: -1},
	}
	if len(rows) != len(want) {
		t.Fatalf("got %d rows; want %d: %v", len(rows), len(want), rows)
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Errorf("row %d: got %v pid %d; want %v pid %d", i, rows[i], rows[i].PID, want[i], want[i].PID)
		}
	}
	// The browser's end of the connection the launcher accepted on 8080 from 50000.
	s, ok := findPair(rows, netip.MustParseAddrPort("127.0.0.1:50000"), netip.MustParseAddrPort("127.0.0.1:8080"))
	if !ok || s.PID != 4242 {
		t.Errorf("findPair: %v pid %d, %v; want pid 4242", s, s.PID, ok)
	}
	if _, ok := findPair(rows, netip.MustParseAddrPort("127.0.0.1:50002"), netip.MustParseAddrPort("127.0.0.1:8080")); ok {
		t.Error("findPair found a pair that is not there")
	}

	v6 := table(
		row6(5, "[::1]:50000", "[::1]:8080", 7),
		row6(5, "[::ffff:127.0.0.1]:50003", "[::ffff:127.0.0.1]:8080", 8),
		row6(2, "[::]:8080", "[::]:0", 9),
	)
	rows, err = parseTCPTable(v6, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows[0].Local != netip.MustParseAddrPort("[::1]:50000") || rows[0].Remote != netip.MustParseAddrPort("[::1]:8080") ||
		rows[0].State != Established || rows[0].PID != 7 || rows[2].State != Listen || rows[2].PID != 9 {
		t.Errorf("IPv6 rows: %v", rows)
	}
	// A dual-stack socket's IPv4 connection is found by its IPv4 pair, written as IPv4.
	s, ok = findPair(rows, netip.MustParseAddrPort("127.0.0.1:50003"), netip.MustParseAddrPort("127.0.0.1:8080"))
	if !ok || s.PID != 8 || !s.Local.Addr().Is4() {
		t.Errorf("mapped pair: %v pid %d, %v", s, s.PID, ok)
	}
}

func TestParseTCPTableMalformed(t *testing.T) {
	good := table(row4(5, "127.0.0.1:1", "127.0.0.1:2", 3))
	for name, b := range map[string][]byte{
		"empty":          nil,
		"short count":    {1, 0},
		"missing row":    good[:len(good)-1],
		"count too high": append(binary.LittleEndian.AppendUint32(nil, 1<<31), good[4:]...),
	} {
		if rows, err := parseTCPTable(b, false); err == nil {
			t.Errorf("%s: got %v, no error", name, rows)
		}
	}
	if rows, err := parseTCPTable(table(), true); err != nil || len(rows) != 0 {
		t.Errorf("an empty table: %v, %v", rows, err)
	}
}

func TestWinStates(t *testing.T) {
	for win, want := range map[uint32]State{2: Listen, 5: Established, 11: TimeWait, 99: 0} {
		if got := winState(win); got != want {
			t.Errorf("for MIB_TCP_STATE %d, got %d; want %d", win, got, want)
		}
	}
}
