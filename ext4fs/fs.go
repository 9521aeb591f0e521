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
}

// Open reads and checks the superblock of the filesystem held by the
// first size bytes of r. A filesystem whose journal needs recovery is
// refused with ErrNeedsRecovery.
func Open(r io.ReaderAt, size int64) (*FS, error) {
	b := make([]byte, SuperblockSize)
	if size < SuperblockOffset+SuperblockSize {
		return nil, fmt.Errorf("%d bytes: too small for an ext4 filesystem", size)
	}
	if _, err := r.ReadAt(b, SuperblockOffset); err != nil {
		return nil, fmt.Errorf("read superblock: %w", err)
	}
	sb, err := ParseSuperblock(b, size)
	if err != nil {
		return nil, err
	}
	if sb.NeedsRecovery {
		return nil, ErrNeedsRecovery
	}
	return &FS{r: r, size: size, sb: sb, itables: map[uint32]uint64{}, maps: map[uint32][]run{}, claimed: claims{}}, nil
}

// Superblock returns the checked superblock.
func (fs *FS) Superblock() *Superblock { return fs.sb }

// read fills p from byte off of the partition. Every read of the medium
// goes through here, bounds-checked: a journal replay would overlay the
// replayed blocks in this one place.
func (fs *FS) read(p []byte, off int64) error {
	if off < 0 || off > fs.size || int64(len(p)) > fs.size-off {
		return fmt.Errorf("read of %d bytes at %d: beyond the %d-byte partition", len(p), off, fs.size)
	}
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
