package ext4fs

import (
	"encoding/binary"
	"fmt"
)

// run maps n logical blocks of a file from logical to phys. Logical
// blocks no run covers are holes (zeros); so are unwritten extents.
type run struct {
	logical, phys, n uint64
	unwritten        bool
}

const (
	extentMagic    = 0xf30a
	maxExtentDepth = 5
)

// claims records which blocks some inode's map has used: a block used
// twice (files sharing blocks, an extent tree node referenced twice) is
// an error, which also bounds everything read to the partition's size.
// One bit per block, in chunks of 64Ki blocks allocated when first used.
type claims map[uint64]*[1024]uint64

func (c claims) claim(start, n uint64) error {
	for b := start; b < start+n; b++ {
		chunk := c[b>>16]
		if chunk == nil {
			chunk = new([1024]uint64)
			c[b>>16] = chunk
		}
		w, bit := (b&0xffff)>>6, uint64(1)<<(b&63)
		if chunk[w]&bit != 0 {
			return fmt.Errorf("block %d is used twice (by two files, or twice in one)", b)
		}
		chunk[w] |= bit
	}
	return nil
}

// blockMap returns the runs of in's data, read (and checked) once per
// inode.
func (fs *FS) blockMap(in *Inode) ([]run, error) {
	if rs, ok := fs.maps[in.Ino]; ok {
		return rs, nil
	}
	var rs []run
	var err error
	if in.flags&flagExtents != 0 {
		w := extentWalk{fs: fs}
		err = w.node(in.block[:], -1)
		rs = w.runs
	} else {
		rs, err = fs.indirectMap(in)
	}
	if err != nil {
		return nil, err
	}
	fs.maps[in.Ino] = rs
	return rs, nil
}

type extentWalk struct {
	fs   *FS
	runs []run
	next uint64 // the first logical block the next extent may map
}

// node reads one extent tree node (the root in i_block, or a block);
// depth is what its header must say (-1: the root, any depth up to 5).
// Depth falls by one per level, so the walk ends; claims keep any node
// from being visited twice.
func (w *extentWalk) node(b []byte, depth int) error {
	le16 := func(o int) uint64 { return uint64(binary.LittleEndian.Uint16(b[o:])) }
	le32 := func(o int) uint64 { return uint64(binary.LittleEndian.Uint32(b[o:])) }
	if m := le16(0); m != extentMagic {
		return fmt.Errorf("extent tree: bad magic %#04x", m)
	}
	entries, max, d := le16(2), le16(4), int(le16(6))
	switch {
	case d > maxExtentDepth:
		return fmt.Errorf("extent tree: depth %d, at most %d", d, maxExtentDepth)
	case depth >= 0 && d != depth:
		return fmt.Errorf("extent tree: a node of depth %d where %d belongs", d, depth)
	case max > uint64(len(b)-12)/12 || entries > max:
		return fmt.Errorf("extent tree: %d entries, at most %d of %d fit", entries, max, (len(b)-12)/12)
	}
	for i := uint64(0); i < entries; i++ {
		e := 12 + 12*int(i)
		logical := le32(e)
		if logical < w.next {
			return fmt.Errorf("extent tree: logical block %d out of order (next free %d)", logical, w.next)
		}
		if d > 0 {
			child := le32(e+4) | le16(e+8)<<32
			if err := w.fs.checkBlocks(child, 1); err != nil {
				return fmt.Errorf("extent tree node: %w", err)
			}
			if err := w.fs.claimed.claim(child, 1); err != nil {
				return fmt.Errorf("extent tree node: %w", err)
			}
			cb, err := w.fs.readBlock(child)
			if err != nil {
				return fmt.Errorf("extent tree node: %w", err)
			}
			if err := w.node(cb, d-1); err != nil {
				return err
			}
			continue
		}
		n, unwritten := le16(e+4), false
		if n > 32768 { // the high bit marks an unwritten (preallocated) extent
			n, unwritten = n-32768, true
		}
		phys := le32(e+8) | le16(e+6)<<32
		if n == 0 {
			return fmt.Errorf("extent at logical block %d: empty", logical)
		}
		if err := w.fs.checkBlocks(phys, n); err != nil {
			return fmt.Errorf("extent at logical block %d: %w", logical, err)
		}
		if err := w.fs.claimed.claim(phys, n); err != nil {
			return fmt.Errorf("extent at logical block %d: %w", logical, err)
		}
		w.runs = append(w.runs, run{logical: logical, phys: phys, n: n, unwritten: unwritten})
		w.next = logical + n
	}
	return nil
}

// indirectMap reads the old ext2/3 block map: 12 direct pointers, then
// an indirect, a double and a triple indirect block, as far as the size
// reaches.
func (fs *FS) indirectMap(in *Inode) ([]run, error) {
	bs := uint64(fs.sb.BlockSize)
	nblocks := (in.Size + bs - 1) / bs
	m := indirectWalk{fs: fs, ptrs: bs / 4, nblocks: nblocks}
	for i := uint64(0); i < 12 && i < nblocks; i++ {
		if err := m.add(i, uint64(binary.LittleEndian.Uint32(in.block[4*i:]))); err != nil {
			return nil, err
		}
	}
	logical, span := uint64(12), m.ptrs
	for level := 1; level <= 3 && logical < nblocks; level++ {
		if p := uint64(binary.LittleEndian.Uint32(in.block[4*(11+level):])); p != 0 {
			if err := m.indirect(p, level, logical); err != nil {
				return nil, err
			}
		}
		logical += span
		span *= m.ptrs
	}
	return m.runs, nil
}

type indirectWalk struct {
	fs            *FS
	ptrs, nblocks uint64
	runs          []run
}

// indirect reads a block of pointers at the given level (1: to data
// blocks) whose first pointer maps logical block first.
func (m *indirectWalk) indirect(blk uint64, level int, first uint64) error {
	if err := m.fs.checkBlocks(blk, 1); err != nil {
		return fmt.Errorf("indirect block: %w", err)
	}
	if err := m.fs.claimed.claim(blk, 1); err != nil {
		return fmt.Errorf("indirect block: %w", err)
	}
	b, err := m.fs.readBlock(blk)
	if err != nil {
		return fmt.Errorf("indirect block: %w", err)
	}
	span := uint64(1)
	for i := 1; i < level; i++ {
		span *= m.ptrs
	}
	for i := uint64(0); i < m.ptrs && first+i*span < m.nblocks; i++ {
		p := uint64(binary.LittleEndian.Uint32(b[4*i:]))
		switch {
		case p == 0: // a hole
		case level == 1:
			err = m.add(first+i, p)
		default:
			err = m.indirect(p, level-1, first+i*span)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// add maps logical block l to phys (0: a hole), merging with the last run.
func (m *indirectWalk) add(l, phys uint64) error {
	if phys == 0 {
		return nil
	}
	if err := m.fs.checkBlocks(phys, 1); err != nil {
		return fmt.Errorf("logical block %d: %w", l, err)
	}
	if err := m.fs.claimed.claim(phys, 1); err != nil {
		return fmt.Errorf("logical block %d: %w", l, err)
	}
	if k := len(m.runs) - 1; k >= 0 && m.runs[k].logical+m.runs[k].n == l && m.runs[k].phys+m.runs[k].n == phys {
		m.runs[k].n++
		return nil
	}
	m.runs = append(m.runs, run{logical: l, phys: phys, n: 1})
	return nil
}
