// Package ptable reads GPT and MBR partition tables from untrusted disks
// (bounded: a hostile header cannot make it allocate or loop much), checks
// that a table fits its disk, and grows the last partition of a GPT or MBR
// to the end of the disk, power-cut safe. The init uses it to find its
// partitions and grow the data partition; the host tools to read images
// and cards. Standard library only, so every host OS and the init build it.
package ptable

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"strconv"
	"strings"
)

// Partition table kinds.
const (
	TableGPT = "gpt"
	TableMBR = "mbr"
)

// Partition is one entry of a partition table.
type Partition struct {
	Number   int    // Linux partition number (1-based; MBR logicals start at 5)
	PARTUUID string // as Linux prints it: GPT unique GUID or MBR "xxxxxxxx-NN"
	Start    int64  // byte offset on the disk
	Size     int64  // bytes
	Type     string // GPT type GUID, or MBR type as "0x83"
	Name     string // GPT partition name (PARTLABEL), empty on MBR
	// Bootable is the MBR active flag (0x80) of a primary partition.
	Bootable bool
}

// Extended says whether p is an MBR extended partition (types 0x05, 0x0f,
// 0x85): the container of the logical partitions, holding no filesystem.
func (p Partition) Extended() bool {
	if len(p.Type) != 4 || p.Type[:2] != "0x" {
		return false
	}
	v, err := strconv.ParseUint(p.Type[2:], 16, 8)
	return err == nil && isExtended(byte(v))
}

// Table is a parsed partition table.
type Table struct {
	Kind       string // TableGPT or TableMBR
	DiskID     string // GPT disk GUID, or MBR signature as 8 hex digits
	SectorSize int    // logical sector size the table was found with
	// Backup is true when the primary GPT header was damaged and the
	// backup header at the end of the disk was used.
	Backup     bool
	Partitions []Partition
	// FirstUsable and LastUsable bound where partitions may lie, in bytes
	// (end exclusive): a GPT's usable LBAs, or an MBR's sectors after the
	// first. LastUsable is 0 when the table does not say (MBR).
	FirstUsable, LastUsable int64
}

// ErrNoTable means neither a GPT nor an MBR partition table was found.
var ErrNoTable = errors.New("no partition table")

// Find returns the partition with the given PARTUUID (any case).
func (t *Table) Find(partuuid string) (Partition, bool) {
	id, err := NormalizePARTUUID(partuuid)
	if err != nil {
		return Partition{}, false
	}
	for _, p := range t.Partitions {
		if p.PARTUUID == id {
			return p, true
		}
	}
	return Partition{}, false
}

// FindPartition reads the partition table of the disk r (size bytes,
// sectorSize 0 = probe 512 and 4096) and returns the partition with the
// given PARTUUID.
func FindPartition(r io.ReaderAt, size int64, sectorSize int, partuuid string) (Partition, *Table, error) {
	id, err := NormalizePARTUUID(partuuid)
	if err != nil {
		return Partition{}, nil, err
	}
	t, err := ReadTable(r, size, sectorSize)
	if err != nil {
		return Partition{}, nil, err
	}
	if p, ok := t.Find(id); ok {
		return p, t, nil
	}
	return Partition{}, t, errors.New("no partition with PARTUUID " + id + " in " + t.Kind + " table " + t.DiskID)
}

// NormalizePARTUUID validates a PARTUUID (GPT GUID 8-4-4-4-12 or MBR
// xxxxxxxx-NN) and returns it in lower case.
func NormalizePARTUUID(s string) (string, error) {
	l := strings.ToLower(s)
	isHex := func(s string) bool {
		for i := 0; i < len(s); i++ {
			c := s[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
		return true
	}
	parts := strings.Split(l, "-")
	switch len(parts) {
	case 5:
		if len(parts[0]) == 8 && len(parts[1]) == 4 && len(parts[2]) == 4 && len(parts[3]) == 4 && len(parts[4]) == 12 &&
			isHex(strings.ReplaceAll(l, "-", "")) {
			return l, nil
		}
	case 2:
		if len(parts[0]) == 8 && len(parts[1]) == 2 && isHex(parts[0]) && isHex(parts[1]) && parts[1] != "00" {
			return l, nil
		}
	}
	return "", errors.New("invalid PARTUUID " + strconv.Quote(s) + ": expected a GPT GUID (8-4-4-4-12 hex) or an MBR id xxxxxxxx-NN")
}

// GUIDString formats a 16-byte on-disk GPT GUID (first three fields
// little-endian) in canonical lower-case form.
func GUIDString(b []byte) string {
	const hexd = "0123456789abcdef"
	order := [16]int{3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15}
	out := make([]byte, 0, 36)
	for i, idx := range order {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hexd[b[idx]>>4], hexd[b[idx]&15])
	}
	return string(out)
}

// ReadTable reads the partition table of a disk. size is the disk size in
// bytes (used for the backup GPT header; 0 if unknown). sectorSize is the
// logical sector size; 0 probes 512 then 4096 for a GPT. A GPT (primary, or
// backup if the primary is damaged) wins over the protective MBR.
func ReadTable(r io.ReaderAt, size int64, sectorSize int) (*Table, error) {
	sizes := []int{512, 4096}
	if sectorSize != 0 {
		sizes = []int{sectorSize}
	}
	var mbr [512]byte
	if _, err := r.ReadAt(mbr[:], 0); err != nil {
		return nil, errors.New("read MBR: " + err.Error())
	}
	var gptErr error
	for _, ss := range sizes {
		t, err := readGPT(r, size, ss)
		if err == nil {
			return t, nil
		}
		if !errors.Is(err, ErrNoTable) && gptErr == nil {
			gptErr = err
		}
	}
	if mbr[510] != 0x55 || mbr[511] != 0xaa {
		if gptErr != nil {
			return nil, gptErr
		}
		return nil, ErrNoTable
	}
	if hasProtectiveMBR(mbr[:]) {
		if gptErr != nil {
			return nil, gptErr
		}
		return nil, errors.New("protective MBR but no valid GPT header")
	}
	ss := 512
	if sectorSize != 0 {
		ss = sectorSize
	}
	return readMBR(r, mbr[:], ss)
}

func hasProtectiveMBR(mbr []byte) bool {
	for i := 0; i < 4; i++ {
		if mbr[446+16*i+4] == 0xee {
			return true
		}
	}
	return false
}

func readGPT(r io.ReaderAt, size int64, ss int) (*Table, error) {
	t, err := readGPTHeader(r, 1, ss)
	if err == nil || size <= 0 {
		return t, err
	}
	// Primary header missing or damaged: try the backup in the last sector.
	last := size/int64(ss) - 1
	if last <= 1 {
		return nil, err
	}
	t, berr := readGPTHeader(r, last, ss)
	if berr != nil {
		return nil, err
	}
	t.Backup = true
	return t, nil
}

func readGPTHeader(r io.ReaderAt, lba int64, ss int) (*Table, error) {
	hdr := make([]byte, ss)
	if _, err := r.ReadAt(hdr, lba*int64(ss)); err != nil {
		return nil, ErrNoTable
	}
	if !bytes.Equal(hdr[:8], []byte("EFI PART")) {
		return nil, ErrNoTable
	}
	le := binary.LittleEndian
	hsize := le.Uint32(hdr[12:16])
	if hsize < 92 || int(hsize) > ss {
		return nil, errors.New("GPT header: bad size " + strconv.Itoa(int(hsize)))
	}
	h := append([]byte(nil), hdr[:hsize]...)
	want := le.Uint32(h[16:20])
	h[16], h[17], h[18], h[19] = 0, 0, 0, 0
	if crc32.ChecksumIEEE(h) != want {
		return nil, errors.New("GPT header at LBA " + strconv.FormatInt(lba, 10) + ": CRC mismatch")
	}
	if got := int64(le.Uint64(hdr[24:32])); got != lba {
		return nil, errors.New("GPT header at LBA " + strconv.FormatInt(lba, 10) + ": says it is at LBA " + strconv.FormatInt(got, 10))
	}
	entLBA := int64(le.Uint64(hdr[72:80]))
	n := le.Uint32(hdr[80:84])
	esize := le.Uint32(hdr[84:88])
	if esize < 128 || esize%8 != 0 || esize > 4096 || n > 4096 {
		return nil, errors.New("GPT header: bad entry array (" + strconv.Itoa(int(n)) + " x " + strconv.Itoa(int(esize)) + ")")
	}
	ents := make([]byte, int(n)*int(esize))
	if _, err := r.ReadAt(ents, entLBA*int64(ss)); err != nil {
		return nil, errors.New("GPT entries: " + err.Error())
	}
	if crc32.ChecksumIEEE(ents) != le.Uint32(hdr[88:92]) {
		return nil, errors.New("GPT entries at LBA " + strconv.FormatInt(entLBA, 10) + ": CRC mismatch")
	}
	t := &Table{Kind: TableGPT, DiskID: GUIDString(hdr[56:72]), SectorSize: ss}
	// LBAs beyond maxLBA would overflow byte offsets: no disk is that big.
	maxLBA := uint64(1)<<62/uint64(ss) - 1
	firstU, lastU := le.Uint64(hdr[40:48]), le.Uint64(hdr[48:56])
	if firstU > maxLBA || lastU > maxLBA || firstU > lastU+1 {
		return nil, errors.New("GPT header: bad usable range")
	}
	t.FirstUsable, t.LastUsable = int64(firstU)*int64(ss), (int64(lastU)+1)*int64(ss)
	var zero [16]byte
	for i := 0; i < int(n); i++ {
		e := ents[i*int(esize) : (i+1)*int(esize)]
		if bytes.Equal(e[:16], zero[:]) {
			continue
		}
		if le.Uint64(e[32:40]) > maxLBA || le.Uint64(e[40:48]) > maxLBA {
			return nil, errors.New("GPT entry " + strconv.Itoa(i+1) + ": LBA out of range")
		}
		first, last := int64(le.Uint64(e[32:40])), int64(le.Uint64(e[40:48]))
		t.Partitions = append(t.Partitions, Partition{
			Number:   i + 1,
			PARTUUID: GUIDString(e[16:32]),
			Start:    first * int64(ss),
			Size:     (last - first + 1) * int64(ss),
			Type:     GUIDString(e[0:16]),
			Name:     utf16Name(e[56:128]),
		})
	}
	return t, nil
}

func utf16Name(b []byte) string {
	var sb strings.Builder
	for i := 0; i+1 < len(b); i += 2 {
		c := rune(binary.LittleEndian.Uint16(b[i:]))
		if c == 0 {
			break
		}
		if c >= 0xd800 && c < 0xe000 { // surrogates: not worth decoding here
			c = '?'
		}
		sb.WriteRune(c)
	}
	return sb.String()
}

func isExtended(t byte) bool { return t == 0x05 || t == 0x0f || t == 0x85 }

func readMBR(r io.ReaderAt, mbr []byte, ss int) (*Table, error) {
	le := binary.LittleEndian
	sig := le.Uint32(mbr[440:444])
	disk := hex8(sig)
	t := &Table{Kind: TableMBR, DiskID: disk, SectorSize: ss, FirstUsable: int64(ss)}
	mk := func(num int, typ byte, startLBA, sectors int64) Partition {
		return Partition{
			Number:   num,
			PARTUUID: disk + "-" + hex2(num),
			Start:    startLBA * int64(ss),
			Size:     sectors * int64(ss),
			Type:     "0x" + hex2(int(typ)),
		}
	}
	var extStart int64 = -1
	for i := 0; i < 4; i++ {
		e := mbr[446+16*i : 446+16*(i+1)]
		typ := e[4]
		start, n := int64(le.Uint32(e[8:12])), int64(le.Uint32(e[12:16]))
		if typ == 0 || n == 0 {
			continue
		}
		p := mk(i+1, typ, start, n)
		p.Bootable = e[0] == 0x80
		t.Partitions = append(t.Partitions, p)
		if isExtended(typ) && extStart < 0 {
			extStart = start
		}
	}
	if extStart < 0 {
		return t, nil
	}
	// Logical partitions: a chain of EBRs, each relative to the extended
	// partition's start for the link, and to its own EBR for the data.
	ebr := make([]byte, 512)
	cur, num := extStart, 5
	seen := map[int64]bool{}
	for len(seen) < 256 {
		if seen[cur] {
			break
		}
		seen[cur] = true
		if _, err := r.ReadAt(ebr, cur*int64(ss)); err != nil || ebr[510] != 0x55 || ebr[511] != 0xaa {
			break
		}
		// Like Linux (block/partitions/msdos.c): every non-extended entry
		// with sectors is a logical partition, the first extended entry
		// links to the next EBR.
		next := int64(-1)
		for i := 0; i < 4; i++ {
			e := ebr[446+16*i : 446+16*(i+1)]
			start, n := int64(le.Uint32(e[8:12])), int64(le.Uint32(e[12:16]))
			if n == 0 {
				continue
			}
			if isExtended(e[4]) {
				if next < 0 {
					next = extStart + start
				}
				continue
			}
			if e[4] == 0 {
				continue
			}
			t.Partitions = append(t.Partitions, mk(num, e[4], cur+start, n))
			num++
		}
		if next < 0 {
			break
		}
		cur = next
	}
	return t, nil
}

func hex8(v uint32) string {
	s := strconv.FormatUint(uint64(v), 16)
	return strings.Repeat("0", 8-len(s)) + s
}

func hex2(v int) string {
	s := strconv.FormatInt(int64(v), 16)
	if len(s) < 2 {
		s = "0" + s
	}
	return s
}
