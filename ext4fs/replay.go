package ext4fs

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/rfsbuild/rfs/ext4fs/jbd2"
)

// Recovery describes the in-memory journal replay of Open.
type Recovery struct {
	Transactions int // committed transactions replayed
	Blocks       int // distinct filesystem blocks whose journal copy is read instead
	Revoked      int // logged copies skipped because a later transaction revoked them
}

// overlay is the replayed journal: a filesystem block it holds is read
// from the journal instead of its place. It holds block numbers, not
// block copies.
type overlay struct {
	blocks map[uint64]jbd2.Copy
	j      *jbd2.Journal // reads the journal from the medium as it is
	bs     int64
}

const compatHasJournal = 0x4

// replay finds the journal (the journal inode of the filesystem as it is
// on the medium) and replays it.
func (fs *FS) replay() (*overlay, Recovery, error) {
	sb := fs.sb
	switch {
	case sb.Compat&compatHasJournal == 0:
		return nil, Recovery{}, errors.New("needs_recovery is set, but the filesystem has no journal")
	case sb.JournalInum == 0:
		return nil, Recovery{}, fmt.Errorf("an external journal (device %#x) is not supported", sb.JournalDev)
	}
	in, err := fs.Inode(sb.JournalInum)
	if err != nil {
		return nil, Recovery{}, fmt.Errorf("journal inode: %w", err)
	}
	if in.Type() != TypeRegular {
		return nil, Recovery{}, fmt.Errorf("journal inode %d: not a regular file", in.Ino)
	}
	f, err := fs.Open(in)
	if err != nil {
		return nil, Recovery{}, fmt.Errorf("journal inode %d: %w", in.Ino, err)
	}
	bs := int64(sb.BlockSize)
	j, err := jbd2.Open(f, f.Size(), int(bs), uint64(fs.size/bs))
	if err != nil {
		return nil, Recovery{}, err
	}
	rep, err := j.Replay()
	if err != nil {
		return nil, Recovery{}, err
	}
	rec := Recovery{Transactions: int(rep.EndTID - rep.FirstTID), Blocks: len(rep.Blocks), Revoked: rep.Revoked}
	return &overlay{blocks: rep.Blocks, j: j, bs: bs}, rec, nil
}

// read fills p from byte off of the replayed partition: the blocks the
// journal holds from their newest copy, runs of the others from the
// medium in one read.
func (ov *overlay) read(fs *FS, p []byte, off int64) error {
	for len(p) > 0 {
		blk, in := off/ov.bs, off%ov.bs
		n := min(ov.bs-in, int64(len(p)))
		if c, ok := ov.blocks[uint64(blk)]; ok {
			// Only the bytes asked for, from the copy: inodes are read
			// one by one from replayed inode tables.
			if err := ov.j.ReadBlockAt(c.Block, p[:n], int(in)); err != nil {
				return fmt.Errorf("journal copy of block %d: %w", blk, err)
			}
			if c.Escaped && in < 4 {
				var m [4]byte
				binary.BigEndian.PutUint32(m[:], jbd2.Magic)
				copy(p[:n], m[in:])
			}
		} else {
			for n < int64(len(p)) {
				if _, ok := ov.blocks[uint64((off+n)/ov.bs)]; ok {
					break
				}
				n = min(n+ov.bs, int64(len(p)))
			}
			if err := fs.readMedium(p[:n], off); err != nil {
				return err
			}
		}
		p, off = p[n:], off+n
	}
	return nil
}
