package ptable

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// FuzzReadTable: the init reads the partition table of every disk it
// scans, whatever is on it; a malformed one must give an error or a table,
// never a panic (in PID 1, a kernel panic) or a runaway loop.
func FuzzReadTable(f *testing.F) {
	le := binary.LittleEndian
	// An MBR with two primaries, an extended partition and a chain of two
	// EBRs, the last linking back to the first (a loop).
	disk := make([]byte, 64*512)
	entry := func(b []byte, typ byte, start, n uint32) {
		b[4] = typ
		le.PutUint32(b[8:], start)
		le.PutUint32(b[12:], n)
	}
	entry(disk[446:], 0x0c, 1, 4)
	entry(disk[462:], 0x83, 5, 4)
	entry(disk[478:], 0x0f, 16, 32)
	disk[510], disk[511] = 0x55, 0xaa
	ebr := func(at int, next uint32) {
		b := disk[at*512:]
		entry(b[446:], 0x83, 1, 2)
		entry(b[462:], 0x05, next, 8)
		b[510], b[511] = 0x55, 0xaa
	}
	ebr(16, 8)
	ebr(24, 0)
	f.Add(bytes.Clone(disk), int64(len(disk)), uint16(512))
	// A protective MBR in front of nothing.
	pm := make([]byte, 4096)
	entry(pm[446:], 0xee, 1, 7)
	pm[510], pm[511] = 0x55, 0xaa
	copy(pm[512:], "EFI PART")
	f.Add(pm, int64(len(pm)), uint16(0))
	f.Fuzz(func(t *testing.T, disk []byte, size int64, ss uint16) {
		sectorSize := []int{0, 512, 4096}[int(ss)%3]
		tbl, err := ReadTable(bytes.NewReader(disk), size, sectorSize)
		if err != nil {
			return
		}
		if len(tbl.Partitions) > 4+256*4 && tbl.Kind == TableMBR {
			t.Fatalf("%d MBR partitions from %d bytes", len(tbl.Partitions), len(disk))
		}
		for _, p := range tbl.Partitions {
			if _, ok := tbl.Find(p.PARTUUID); !ok {
				t.Errorf("partition %d: Find(%q) fails", p.Number, p.PARTUUID)
			}
		}
	})
}
