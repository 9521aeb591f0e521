package ext4fs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// RootIno is the root directory's inode number.
const RootIno = 2

// FS is an opened filesystem. It is not safe for concurrent use while
// directories or block maps are being read; file contents (File) may be
// read concurrently.
type FS struct {
	r    io.ReaderAt
	size int64 // the partition's length
	sb   *Superblock

	itables map[uint32]uint64 // group -> first block of its inode table
	maps    map[uint32][]run  // inode -> its block map, read once
	claimed claims            // blocks owned by an inode or tree node

	journal  *overlay // the replayed journal (nil: nothing to replay)
	recovery Recovery
}

// Open reads and checks the superblock of the filesystem held by the
// first size bytes of r. A filesystem whose journal needs recovery (not
// unmounted cleanly) is seen as the kernel would mount it: the journal
// is replayed in memory (see replay.go), r is never written.
func Open(r io.ReaderAt, size int64) (*FS, error) {
	if size < SuperblockOffset+SuperblockSize {
		return nil, fmt.Errorf("%d bytes: too small for an ext4 filesystem", size)
	}
	fs := newFS(r, size)
	sb, err := fs.superblock()
	if err != nil {
		return nil, err
	}
	fs.sb = sb
	if !sb.NeedsRecovery {
		return fs, nil
	}
	// The journal is found through the filesystem as it is on the
	// medium (as the kernel does), then every read, the superblock's
	// and the group descriptors' first, goes through the replayed view.
	ov, rec, err := fs.replay()
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	rfs := newFS(r, size)
	rfs.journal, rfs.recovery = ov, rec
	if rfs.sb, err = rfs.superblock(); err != nil {
		return nil, fmt.Errorf("the superblock after the journal replay: %w", err)
	}
	rfs.sb.NeedsRecovery = true // the medium still does
	return rfs, nil
}

func newFS(r io.ReaderAt, size int64) *FS {
	return &FS{r: r, size: size, itables: map[uint32]uint64{}, maps: map[uint32][]run{}, claimed: claims{}}
}

// superblock reads and checks the superblock.
func (fs *FS) superblock() (*Superblock, error) {
	b := make([]byte, SuperblockSize)
	if err := fs.read(b, SuperblockOffset); err != nil {
		return nil, fmt.Errorf("read superblock: %w", err)
	}
	return ParseSuperblock(b, fs.size)
}

// Superblock returns the checked superblock (after the journal replay).
func (fs *FS) Superblock() *Superblock { return fs.sb }

// Recovery says what Open replayed from the journal.
func (fs *FS) Recovery() Recovery { return fs.recovery }

// read fills p from byte off of the partition, as the journal replay
// leaves it. Every read of the medium goes through here, bounds-checked.
func (fs *FS) read(p []byte, off int64) error {
	if off < 0 || off > fs.size || int64(len(p)) > fs.size-off {
		return fmt.Errorf("read of %d bytes at %d: beyond the %d-byte partition", len(p), off, fs.size)
	}
	if fs.journal != nil {
		return fs.journal.read(fs, p, off)
	}
	return fs.readMedium(p, off)
}

// readMedium reads the medium itself (off and len(p) are checked).
func (fs *FS) readMedium(p []byte, off int64) error {
	n, err := fs.r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("read %d bytes at %d: %w", len(p), off, err)
}

// readBlock reads block n (which must be inside the filesystem).
func (fs *FS) readBlock(n uint64) ([]byte, error) {
	if err := fs.checkBlocks(n, 1); err != nil {
		return nil, err
	}
	b := make([]byte, fs.sb.BlockSize)
	return b, fs.read(b, int64(n)*int64(fs.sb.BlockSize))
}

// checkBlocks checks that blocks [n, n+count) are inside the filesystem
// and not its boot block or superblock.
func (fs *FS) checkBlocks(n, count uint64) error {
	if n <= uint64(fs.sb.FirstDataBlock) || n >= fs.sb.BlocksCount || count > fs.sb.BlocksCount-n {
		return fmt.Errorf("blocks %d-%d: outside the filesystem's blocks %d-%d", n, n+count-1, fs.sb.FirstDataBlock+1, fs.sb.BlocksCount-1)
	}
	return nil
}

// inodeTable returns the first block of group g's inode table.
func (fs *FS) inodeTable(g uint32) (uint64, error) {
	if b, ok := fs.itables[g]; ok {
		return b, nil
	}
	sb := fs.sb
	perBlock := sb.BlockSize / sb.DescSize
	var blk uint64
	if sb.Incompat&incompatMetaBG != 0 && g/perBlock >= sb.FirstMetaBG {
		// meta_bg: a meta group's descriptors are in its first group,
		// after the superblock backup if that group has one.
		first := g / perBlock * perBlock
		blk = uint64(sb.FirstDataBlock) + uint64(first)*uint64(sb.BlocksPerGroup)
		if sb.hasSuper(first) {
			blk++
		}
	} else {
		blk = uint64(sb.FirstDataBlock) + 1 + uint64(g/perBlock)
	}
	b, err := fs.readBlock(blk)
	if err != nil {
		return 0, fmt.Errorf("group %d descriptor: %w", g, err)
	}
	d := b[(g%perBlock)*sb.DescSize:]
	itab := uint64(binary.LittleEndian.Uint32(d[0x08:]))
	if sb.DescSize >= 64 {
		itab |= uint64(binary.LittleEndian.Uint32(d[0x28:])) << 32
	}
	tableBlocks := (uint64(sb.InodesPerGroup)*uint64(sb.InodeSize) + uint64(sb.BlockSize) - 1) / uint64(sb.BlockSize)
	if err := fs.checkBlocks(itab, tableBlocks); err != nil {
		return 0, fmt.Errorf("group %d inode table: %w", g, err)
	}
	fs.itables[g] = itab
	return itab, nil
}

// rawInode reads inode ino's bytes.
func (fs *FS) rawInode(ino uint32) ([]byte, error) {
	sb := fs.sb
	if ino == 0 || ino > sb.InodesCount {
		return nil, fmt.Errorf("inode %d: outside the filesystem's inodes 1-%d", ino, sb.InodesCount)
	}
	g, i := (ino-1)/sb.InodesPerGroup, (ino-1)%sb.InodesPerGroup
	itab, err := fs.inodeTable(g)
	if err != nil {
		return nil, fmt.Errorf("inode %d: %w", ino, err)
	}
	b := make([]byte, sb.InodeSize)
	if err := fs.read(b, int64(itab)*int64(sb.BlockSize)+int64(i)*int64(sb.InodeSize)); err != nil {
		return nil, fmt.Errorf("inode %d: %w", ino, err)
	}
	return b, nil
}
