// Package ext4sb decodes the superblock of an ext2/3/4 filesystem: the one
// place its fields are read, for the init (growing the data partition),
// the host tools (finding the data partition by label, `rfs inspect`'s
// usage) and package ext4fs, which adds its stricter checks on top.
// Parse checks what every user relies on (magic, block size 1–64 KiB);
// the rest is as found, and VerifyChecksum checks the metadata checksum. Standard library only.
package ext4sb

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
)

// Offset is where the superblock starts, from the partition start.
const Offset = 1024

// Size is the superblock's length on disk.
const Size = 1024

// Magic is s_magic.
const Magic = 0xef53

// Feature bits the decoding depends on.
const (
	IncompatRecover      = 0x4
	Incompat64bit        = 0x80
	RoCompatMetadataCsum = 0x400
)

// castagnoli is CRC-32C, the metadata checksum of ext4.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Checksum is the metadata_csum checksum of a superblock: the CRC-32C of
// its first 1020 bytes, stored (at 0x3fc) without the final inversion.
func Checksum(b []byte) uint32 { return ^crc32.Checksum(b[:0x3fc], castagnoli) }

// Superblock holds the decoded fields. Counts that have a high half with
// the 64bit feature (BlocksCount, FreeBlocks) are combined.
type Superblock struct {
	InodesCount    uint32
	BlocksCount    uint64
	FreeBlocks     uint64
	FreeInodes     uint32
	FirstDataBlock uint32
	BlockSize      uint32 // 1024 << s_log_block_size, checked ≤ 64 KiB
	BlocksPerGroup uint32
	InodesPerGroup uint32
	RevLevel       uint32
	// Dynamic revision (RevLevel ≥ 1) fields; 128 and zero otherwise.
	InodeSize   uint32
	Compat      uint32
	Incompat    uint32
	RoCompat    uint32
	FirstMetaBG uint32
	BackupBGs   [2]uint32
	DescSize    uint32 // s_desc_size as stored (used with 64bit only)
	Label       string // s_volume_name up to the first NUL
}

// NeedsRecovery says whether the journal holds transactions not yet
// written to their places (the filesystem was not unmounted cleanly).
func (sb *Superblock) NeedsRecovery() bool { return sb.Incompat&IncompatRecover != 0 }

// Parse decodes the superblock b (Size bytes, read at Offset).
func Parse(b []byte) (*Superblock, error) {
	if len(b) < Size {
		return nil, fmt.Errorf("superblock: %d bytes, want %d", len(b), Size)
	}
	le16 := func(o int) uint32 { return uint32(binary.LittleEndian.Uint16(b[o:])) }
	le32 := func(o int) uint32 { return binary.LittleEndian.Uint32(b[o:]) }
	if m := le16(0x38); m != Magic {
		return nil, fmt.Errorf("no ext2/3/4 superblock (magic %#04x, want %#04x)", m, Magic)
	}
	sb := &Superblock{
		InodesCount: le32(0x00), BlocksCount: uint64(le32(0x04)), FreeBlocks: uint64(le32(0x0c)),
		FreeInodes: le32(0x10), FirstDataBlock: le32(0x14), BlocksPerGroup: le32(0x20),
		InodesPerGroup: le32(0x28), RevLevel: le32(0x4c), InodeSize: 128,
	}
	sb.Label, _, _ = strings.Cut(string(b[0x78:0x88]), "\x00")
	if sb.RevLevel >= 1 { // dynamic revision: features and a variable inode size
		sb.Compat, sb.Incompat, sb.RoCompat = le32(0x5c), le32(0x60), le32(0x64)
		sb.InodeSize = le16(0x58)
		sb.DescSize = le16(0xfe)
		sb.FirstMetaBG = le32(0x104)
		sb.BackupBGs = [2]uint32{le32(0x24c), le32(0x250)}
	}
	// The kernel refuses blocks over 64 KiB; a larger shift would give a
	// block size of 0 (a division by zero in a caller).
	if lg := le32(0x18); lg > 6 {
		return nil, fmt.Errorf("superblock: block size 2^(10+%d): want 1 KiB to 64 KiB", lg)
	} else {
		sb.BlockSize = 1024 << lg
	}
	if sb.Incompat&Incompat64bit != 0 {
		sb.BlocksCount |= uint64(le32(0x150)) << 32
		sb.FreeBlocks |= uint64(le32(0x158)) << 32
	}
	return sb, nil
}

// VerifyChecksum checks the metadata_csum checksum of the superblock b,
// if the filesystem has one. Parse leaves it to the caller: the init lets
// the kernel refuse a corrupt superblock when it mounts (its message
// names the mount), ext4fs checks it first, as the kernel does.
func VerifyChecksum(b []byte) error {
	if len(b) < Size || binary.LittleEndian.Uint32(b[0x4c:]) < 1 ||
		binary.LittleEndian.Uint32(b[0x64:])&RoCompatMetadataCsum == 0 {
		return nil
	}
	if want, got := binary.LittleEndian.Uint32(b[0x3fc:]), Checksum(b); got != want {
		return fmt.Errorf("superblock: checksum %#08x, computed %#08x: the superblock is corrupt", want, got)
	}
	return nil
}

// Read reads and decodes the superblock of the filesystem starting at
// byte off of r.
func Read(r io.ReaderAt, off int64) (*Superblock, error) {
	b := make([]byte, Size)
	if _, err := r.ReadAt(b, off+Offset); err != nil {
		return nil, fmt.Errorf("read the ext4 superblock: %w", err)
	}
	return Parse(b)
}
