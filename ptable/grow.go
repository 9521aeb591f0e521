package ptable

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// MinGrowth is the least free space after the data partition worth growing
// into (smaller gaps are alignment slack).
const MinGrowth = 1 << 20

// Disk is what the growth needs of a whole-disk device: an *os.File in
// the init, a file in tests.
type Disk interface {
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
	Sync() error
}

// GrowPlan is the result of GrowPartition.
type GrowPlan struct {
	Table    string // TableGPT or TableMBR
	Start    int64  // partition start, bytes
	OldSize  int64  // partition size before, bytes
	NewSize  int64  // partition size after, bytes (== OldSize: nothing to do)
	Repaired bool   // the GPT was rewritten (moved backup, repaired primary) even without growth
}

// GrowPartition grows partition partN of the disk (size bytes, logical
// sector size ss) to the end of the disk if it is the last partition and
// there is at least MinGrowth free after it. It is safe against power
// loss at any point; every step leaves a table that boots:
//
// GPT: (1) write the new backup entries and header at the end of the disk
// and flush — the primary is still valid and wins, so the disk reads as
// before; (2) write the primary entries + header and flush — if this is
// torn, the primary's CRC fails and Linux (and ReadTable) use the new
// backup, i.e. the grown table; the next boot rewrites the primary;
// (3) fix the protective MBR's size. An image whose backup GPT is not at
// the end of the disk (written to a larger medium) gets it moved even if
// the data partition is not the last one.
//
// MBR: one sector write of the entry's size (sector writes are atomic).
//
// step, if not nil, is called after every durable write with its name
// ("grow:gpt-backup", ...): power-cut tests stop there.
func GrowPartition(d Disk, size int64, ss int, partN int, step func(name string)) (*GrowPlan, error) {
	if step == nil {
		step = func(string) {}
	}
	if ss == 0 {
		ss = 512
	}
	t, err := ReadTable(d, size, ss)
	if err != nil {
		return nil, err
	}
	if t.Kind == TableMBR {
		return growMBR(d, size, ss, partN, t, step)
	}
	return growGPT(d, size, ss, partN, step)
}

func isLast(t *Table, p Partition) bool {
	for _, q := range t.Partitions {
		if q.Number != p.Number && q.Start+q.Size > p.Start {
			return false
		}
	}
	return true
}

func growMBR(d Disk, size int64, ss int, partN int, t *Table, step func(string)) (*GrowPlan, error) {
	var p *Partition
	for i := range t.Partitions {
		if t.Partitions[i].Number == partN {
			p = &t.Partitions[i]
		}
	}
	if p == nil {
		return nil, fmt.Errorf("no partition %d in the MBR", partN)
	}
	plan := &GrowPlan{Table: TableMBR, Start: p.Start, OldSize: p.Size, NewSize: p.Size}
	if partN > 4 || !isLast(t, *p) {
		return plan, nil
	}
	startLBA := p.Start / int64(ss)
	newSectors := size/int64(ss) - startLBA
	if newSectors > 0xffffffff {
		newSectors = 0xffffffff
	}
	if newSectors*int64(ss)-p.Size < MinGrowth {
		return plan, nil
	}
	mbr := make([]byte, 512)
	if _, err := d.ReadAt(mbr, 0); err != nil {
		return nil, err
	}
	e := mbr[446+16*(partN-1):]
	binary.LittleEndian.PutUint32(e[12:16], uint32(newSectors))
	e[5], e[6], e[7] = 0xfe, 0xff, 0xff // end CHS: beyond CHS range
	if _, err := d.WriteAt(mbr, 0); err != nil {
		return nil, err
	}
	if err := d.Sync(); err != nil {
		return nil, err
	}
	step("grow:mbr")
	plan.NewSize = newSectors * int64(ss)
	return plan, nil
}

// gptHeader is a parsed GPT header with its raw bytes and entry array.
type gptHeader struct {
	raw  []byte // header sector
	ents []byte
}

func (h *gptHeader) u64(off int) int64    { return int64(binary.LittleEndian.Uint64(h.raw[off:])) }
func (h *gptHeader) put(off int, v int64) { binary.LittleEndian.PutUint64(h.raw[off:], uint64(v)) }

func readGPTRaw(d Disk, lba int64, ss int) (*gptHeader, error) {
	if _, err := readGPTHeader(d, lba, ss); err != nil { // validates CRCs and MyLBA
		return nil, err
	}
	h := &gptHeader{raw: make([]byte, ss)}
	if _, err := d.ReadAt(h.raw, lba*int64(ss)); err != nil {
		return nil, err
	}
	n, esize := binary.LittleEndian.Uint32(h.raw[80:]), binary.LittleEndian.Uint32(h.raw[84:])
	h.ents = make([]byte, int(n)*int(esize))
	if _, err := d.ReadAt(h.ents, h.u64(72)*int64(ss)); err != nil {
		return nil, err
	}
	return h, nil
}

// seal recomputes the entry array CRC and the header CRC.
func (h *gptHeader) seal() {
	le := binary.LittleEndian
	le.PutUint32(h.raw[88:], crc32.ChecksumIEEE(h.ents))
	hsize := le.Uint32(h.raw[12:])
	le.PutUint32(h.raw[16:], 0)
	le.PutUint32(h.raw[16:], crc32.ChecksumIEEE(h.raw[:hsize]))
}

// writeGPT writes entries then header, and flushes, unless the disk
// already holds exactly that.
func writeGPT(d Disk, h *gptHeader, ss int) (bool, error) {
	lba, entLBA := h.u64(24), h.u64(72)
	cur := make([]byte, len(h.ents))
	curH := make([]byte, ss)
	d.ReadAt(cur, entLBA*int64(ss))
	d.ReadAt(curH, lba*int64(ss))
	if bytes.Equal(cur, h.ents) && bytes.Equal(curH, h.raw) {
		return false, nil
	}
	if entLBA == lba+1 { // primary: one write, header and entries together
		buf := append(append([]byte(nil), h.raw...), h.ents...)
		if _, err := d.WriteAt(buf, lba*int64(ss)); err != nil {
			return false, err
		}
	} else {
		if _, err := d.WriteAt(h.ents, entLBA*int64(ss)); err != nil {
			return false, err
		}
		if _, err := d.WriteAt(h.raw, lba*int64(ss)); err != nil {
			return false, err
		}
	}
	return true, d.Sync()
}

func growGPT(d Disk, size int64, ss int, partN int, step func(string)) (*GrowPlan, error) {
	last := size/int64(ss) - 1
	src, err := readGPTRaw(d, 1, ss)
	if err != nil {
		// Primary torn (power cut during step 2): the backup at the end
		// of the disk is the truth.
		if src, err = readGPTRaw(d, last, ss); err != nil {
			return nil, errors.New("no valid GPT header (primary or at the end of the disk)")
		}
	}
	le := binary.LittleEndian
	esize := int(le.Uint32(src.raw[84:]))
	entSectors := (int64(len(src.ents)) + int64(ss) - 1) / int64(ss)
	newLastUsable := last - entSectors - 1
	ents := append([]byte(nil), src.ents...)
	var tbl Table
	for i := 0; i*esize < len(ents); i++ {
		e := ents[i*esize : (i+1)*esize]
		if bytes.Equal(e[:16], make([]byte, 16)) {
			continue
		}
		f, l := int64(le.Uint64(e[32:])), int64(le.Uint64(e[40:]))
		if l > newLastUsable {
			return nil, fmt.Errorf("partition %d ends at LBA %d, beyond the disk's last usable LBA %d: the disk is smaller than the image", i+1, l, newLastUsable)
		}
		tbl.Partitions = append(tbl.Partitions, Partition{Number: i + 1, Start: f * int64(ss), Size: (l - f + 1) * int64(ss)})
	}
	var p *Partition
	for i := range tbl.Partitions {
		if tbl.Partitions[i].Number == partN {
			p = &tbl.Partitions[i]
		}
	}
	if p == nil {
		return nil, fmt.Errorf("no partition %d in the GPT", partN)
	}
	plan := &GrowPlan{Table: TableGPT, Start: p.Start, OldSize: p.Size, NewSize: p.Size}
	if isLast(&tbl, *p) {
		first := p.Start / int64(ss)
		if gain := (newLastUsable-first+1)*int64(ss) - p.Size; gain >= MinGrowth {
			le.PutUint64(ents[(partN-1)*esize+40:], uint64(newLastUsable))
			plan.NewSize = (newLastUsable - first + 1) * int64(ss)
		}
	}
	primary := &gptHeader{raw: append([]byte(nil), src.raw...), ents: ents}
	if src.u64(24) != 1 { // built from the backup: primary's own fields
		primary.put(24, 1)
		primary.put(72, 2)
	}
	primary.put(32, last)
	primary.put(48, newLastUsable)
	primary.seal()
	backup := &gptHeader{raw: append([]byte(nil), primary.raw...), ents: ents}
	backup.put(24, last)
	backup.put(32, 1)
	backup.put(72, last-entSectors)
	backup.seal()

	wrote, err := writeGPT(d, backup, ss)
	if err != nil {
		return nil, fmt.Errorf("write backup GPT: %v", err)
	}
	if wrote {
		step("grow:gpt-backup")
	}
	w2, err := writeGPT(d, primary, ss)
	if err != nil {
		return nil, fmt.Errorf("write primary GPT: %v", err)
	}
	if w2 {
		step("grow:gpt-primary")
	}
	plan.Repaired = wrote || w2
	// Protective MBR: one partition of type 0xee covering the disk.
	mbr := make([]byte, 512)
	if _, err := d.ReadAt(mbr, 0); err == nil && mbr[510] == 0x55 && mbr[511] == 0xaa {
		for i := 0; i < 4; i++ {
			e := mbr[446+16*i:]
			if e[4] != 0xee {
				continue
			}
			want := uint32(min(last, 0xffffffff))
			if le.Uint32(e[12:]) != want {
				le.PutUint32(e[12:], want)
				e[5], e[6], e[7] = 0xfe, 0xff, 0xff
				if _, err := d.WriteAt(mbr, 0); err != nil {
					return nil, err
				}
				if err := d.Sync(); err != nil {
					return nil, err
				}
				step("grow:pmbr")
			}
		}
	}
	return plan, nil
}
