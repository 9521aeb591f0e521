package ext4fs

import (
	"encoding/binary"
	"fmt"
)

// File types of Inode.Mode (S_IFMT bits).
const (
	TypeMask    = 0xf000
	TypeFIFO    = 0x1000
	TypeChar    = 0x2000
	TypeDir     = 0x4000
	TypeBlock   = 0x6000
	TypeRegular = 0x8000
	TypeSymlink = 0xa000
	TypeSocket  = 0xc000
)

// Inode flags used here.
const (
	flagIndex      = 0x1000     // htree directory (read linearly)
	flagExtents    = 0x80000    // i_block holds an extent tree
	flagEAInode    = 0x200000   // the inode holds a large xattr value
	flagInlineData = 0x10000000 // the data is in i_block and system.data
)

// MaxSymlink bounds a symlink's target (PATH_MAX, with its NUL).
const MaxSymlink = 4096

// Inode is a decoded inode.
type Inode struct {
	Ino          uint32
	Mode         uint16 // type and permission bits
	UID, GID     uint32
	Size         uint64
	MTime        int64 // seconds since the epoch
	Links        uint16
	Major, Minor uint32 // device numbers of char and block devices

	flags     uint32
	blocks512 uint32   // i_blocks_lo: 512-byte sectors used (data, tree nodes, xattr block)
	block     [60]byte // i_block: extent root, block map, fast symlink or inline data
	fileACL   uint64   // the xattr block, or 0
	xattrsIn  []byte   // the in-inode xattr area (after i_extra_isize), if any
}

// Type is the file type bits of Mode.
func (in *Inode) Type() uint16 { return in.Mode & TypeMask }

// Perm is the permission bits, with setuid, setgid and sticky.
func (in *Inode) Perm() uint32 { return uint32(in.Mode) & 0o7777 }

// Inode reads and checks inode ino.
func (fs *FS) Inode(ino uint32) (*Inode, error) {
	b, err := fs.rawInode(ino)
	if err != nil {
		return nil, err
	}
	le16 := func(o int) uint32 { return uint32(binary.LittleEndian.Uint16(b[o:])) }
	le32 := func(o int) uint32 { return binary.LittleEndian.Uint32(b[o:]) }
	in := &Inode{
		Ino: ino, Mode: uint16(le16(0x00)),
		UID:   le16(0x02) | le16(0x78)<<16,
		GID:   le16(0x18) | le16(0x7a)<<16,
		Size:  uint64(le32(0x04)) | uint64(le32(0x6c))<<32,
		MTime: int64(int32(le32(0x10))),
		Links: uint16(le16(0x1a)), flags: le32(0x20), blocks512: le32(0x1c),
		fileACL: uint64(le32(0x68)) | uint64(le16(0x76))<<32,
	}
	copy(in.block[:], b[0x28:0x28+60])
	if in.Links == 0 {
		return nil, fmt.Errorf("inode %d: not in use (link count 0)", ino)
	}
	if fs.sb.InodeSize > 128 {
		extra := le16(0x80)
		if extra%4 != 0 || 128+extra > fs.sb.InodeSize {
			return nil, fmt.Errorf("inode %d: extra inode size %d: want a multiple of 4 up to %d", ino, extra, fs.sb.InodeSize-128)
		}
		if extra >= 0x8c-0x80 {
			// The two low bits of mtime_extra extend the seconds past 2038.
			in.MTime += int64(le32(0x88)&3) << 32
		}
		in.xattrsIn = b[128+extra:]
	}
	if in.flags&flagEAInode != 0 {
		return nil, fmt.Errorf("inode %d: holds an xattr value (ea_inode), not a file", ino)
	}
	if err := fs.checkInode(in); err != nil {
		return nil, fmt.Errorf("inode %d: %w", ino, err)
	}
	return in, nil
}

// checkInode checks the type, the size and the device numbers.
func (fs *FS) checkInode(in *Inode) error {
	limit := fs.sb.BlocksCount * uint64(fs.sb.BlockSize)
	switch in.Type() {
	case TypeRegular, TypeDir:
		// A file can only be larger than the partition by being sparse;
		// a file claiming more is refused rather than read as petabytes
		// of zeros.
		if in.Size > limit {
			return fmt.Errorf("size %d is larger than the filesystem (%d bytes)", in.Size, limit)
		}
	case TypeSymlink:
		if in.Size == 0 || in.Size >= MaxSymlink {
			return fmt.Errorf("symlink of %d bytes: want 1 to %d", in.Size, MaxSymlink-1)
		}
	case TypeChar, TypeBlock:
		in.Major, in.Minor = decodeDev(in.block[:])
	case TypeFIFO, TypeSocket:
	default:
		return fmt.Errorf("unknown file type %#o", in.Type())
	}
	if in.flags&flagInlineData != 0 && fs.sb.Incompat&incompatInlineData == 0 {
		return fmt.Errorf("inline data flag without the inline_data feature")
	}
	return nil
}

// decodeDev reads a device number from i_block: the old 8:8 encoding in
// the first word, or else the new 12:20 one in the second.
func decodeDev(b []byte) (major, minor uint32) {
	if v := binary.LittleEndian.Uint32(b[0:]); v != 0 {
		return (v >> 8) & 0xff, v & 0xff
	}
	v := binary.LittleEndian.Uint32(b[4:])
	return (v >> 8) & 0xfff, (v & 0xff) | (v>>12)&0xfff00
}
