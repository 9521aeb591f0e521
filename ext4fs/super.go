package ext4fs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"strings"

	"github.com/rfsbuild/rfs/ext4fs/ext4sb"
)

// SuperblockOffset is where the superblock starts, from the partition start.
const SuperblockOffset = ext4sb.Offset

// SuperblockSize is the superblock's length on disk.
const SuperblockSize = ext4sb.Size

// Feature bits used here (the names are those of e2fsprogs).
const (
	compatSparseSuper2 = 0x200

	incompatCompression = 0x1
	incompatFiletype    = 0x2
	incompatRecover     = 0x4
	incompatJournalDev  = 0x8
	incompatMetaBG      = 0x10
	incompatExtents     = 0x40
	incompat64bit       = 0x80
	incompatMMP         = 0x100
	incompatFlexBG      = 0x200
	incompatEAInode     = 0x400
	incompatDirData     = 0x1000
	incompatCsumSeed    = 0x2000
	incompatLargeDir    = 0x4000
	incompatInlineData  = 0x8000
	incompatEncrypt     = 0x10000
	incompatCasefold    = 0x20000

	roCompatSparseSuper  = 0x1
	roCompatMetadataCsum = 0x400
)

// SuperblockChecksum is the metadata_csum checksum of a superblock.
func SuperblockChecksum(b []byte) uint32 { return ext4sb.Checksum(b) }

// supportedIncompat are the INCOMPAT features this reader understands (or,
// like mmp, csum_seed, casefold and largedir, that change nothing for a
// linear read-only walk). RECOVER is handled by Open (a journal replay).
const supportedIncompat = incompatFiletype | incompatMetaBG | incompatExtents | incompat64bit |
	incompatMMP | incompatFlexBG | incompatCsumSeed | incompatLargeDir | incompatInlineData |
	incompatCasefold

var incompatNames = []struct {
	bit  uint32
	name string
}{
	{incompatCompression, "compression"}, {incompatFiletype, "filetype"},
	{incompatRecover, "needs_recovery"}, {incompatJournalDev, "journal_dev"},
	{incompatMetaBG, "meta_bg"}, {incompatExtents, "extent"}, {incompat64bit, "64bit"},
	{incompatMMP, "mmp"}, {incompatFlexBG, "flex_bg"}, {incompatEAInode, "ea_inode"},
	{incompatDirData, "dirdata"}, {incompatCsumSeed, "metadata_csum_seed"},
	{incompatLargeDir, "large_dir"}, {incompatInlineData, "inline_data"},
	{incompatEncrypt, "encrypt"}, {incompatCasefold, "casefold"},
}

// ErrNeedsRecovery was returned for a filesystem whose journal needs
// recovery.
//
// Deprecated: Open replays the journal in memory and no longer returns it.
var ErrNeedsRecovery = errors.New("the journal needs recovery (the filesystem was not unmounted cleanly)")

// Superblock holds the fields this package uses, validated.
type Superblock struct {
	InodesCount    uint32
	BlocksCount    uint64
	FreeBlocks     uint64
	FreeInodes     uint32
	FirstDataBlock uint32
	BlockSize      uint32
	BlocksPerGroup uint32
	InodesPerGroup uint32
	InodeSize      uint32
	DescSize       uint32
	Groups         uint32
	FirstMetaBG    uint32
	Compat         uint32
	Incompat       uint32
	RoCompat       uint32
	BackupBGs      [2]uint32
	NeedsRecovery  bool   // the journal holds transactions not yet in place
	JournalInum    uint32 // s_journal_inum (0: none, or an external journal)
	JournalDev     uint32 // s_journal_dev, an external journal's device
}

// ParseSuperblock decodes the superblock b (SuperblockSize bytes, read at
// SuperblockOffset) with ext4sb and checks it further against a partition
// of partSize bytes. A filesystem that needs journal recovery parses
// (NeedsRecovery is set): Open replays its journal.
func ParseSuperblock(b []byte, partSize int64) (*Superblock, error) {
	raw, err := ext4sb.Parse(b)
	if err != nil {
		return nil, err
	}
	// What the kernel checks first: a card's bit rot shows here.
	if err := ext4sb.VerifyChecksum(b); err != nil {
		return nil, err
	}
	sb := &Superblock{
		InodesCount: raw.InodesCount, BlocksCount: raw.BlocksCount, FreeBlocks: raw.FreeBlocks,
		FreeInodes: raw.FreeInodes, FirstDataBlock: raw.FirstDataBlock, BlockSize: raw.BlockSize,
		BlocksPerGroup: raw.BlocksPerGroup, InodesPerGroup: raw.InodesPerGroup, InodeSize: raw.InodeSize,
		DescSize: 32, FirstMetaBG: raw.FirstMetaBG, Compat: raw.Compat, Incompat: raw.Incompat,
		RoCompat: raw.RoCompat, BackupBGs: raw.BackupBGs, NeedsRecovery: raw.NeedsRecovery(),
	}
	if raw.RevLevel >= 1 {
		sb.JournalInum, sb.JournalDev = binary.LittleEndian.Uint32(b[0xe0:]), binary.LittleEndian.Uint32(b[0xe4:])
	}
	if unknown := sb.Incompat &^ (supportedIncompat | incompatRecover); unknown != 0 {
		return nil, fmt.Errorf("superblock: unsupported ext4 features: %s", featureNames(unknown))
	}
	if sb.Incompat&incompat64bit != 0 {
		sb.DescSize = raw.DescSize
		if sb.DescSize < 64 || sb.DescSize > 1024 || bits.OnesCount32(sb.DescSize) != 1 {
			return nil, fmt.Errorf("superblock: group descriptor size %d: want a power of two from 64 to 1024 (64bit feature)", sb.DescSize)
		}
	}
	return sb, sb.checkGeometry(partSize)
}

// checkGeometry checks the sizes and counts against each other and against
// the partition, as the kernel does before mounting.
func (sb *Superblock) checkGeometry(partSize int64) error {
	bs := uint64(sb.BlockSize)
	switch {
	case sb.InodeSize < 128 || sb.InodeSize > sb.BlockSize || bits.OnesCount32(sb.InodeSize) != 1:
		return fmt.Errorf("superblock: inode size %d: want a power of two from 128 to the block size %d", sb.InodeSize, bs)
	case sb.BlocksPerGroup == 0 || sb.BlocksPerGroup > 8*sb.BlockSize && sb.RoCompat&0x200 == 0: // 0x200: bigalloc
		return fmt.Errorf("superblock: %d blocks per group: want 1 to %d", sb.BlocksPerGroup, 8*bs)
	case sb.InodesPerGroup == 0 || sb.InodesPerGroup > 8*sb.BlockSize:
		return fmt.Errorf("superblock: %d inodes per group: want 1 to %d", sb.InodesPerGroup, 8*bs)
	case partSize < 0 || sb.BlocksCount > uint64(partSize)/bs:
		return fmt.Errorf("superblock: %d blocks of %d bytes do not fit in the %d-byte partition", sb.BlocksCount, bs, partSize)
	case sb.FirstDataBlock != firstDataBlock(bs):
		return fmt.Errorf("superblock: first data block %d: want %d for %d-byte blocks", sb.FirstDataBlock, firstDataBlock(bs), bs)
	case uint64(sb.FirstDataBlock) >= sb.BlocksCount:
		return fmt.Errorf("superblock: first data block %d is beyond the %d blocks", sb.FirstDataBlock, sb.BlocksCount)
	}
	groups := (sb.BlocksCount - uint64(sb.FirstDataBlock) + uint64(sb.BlocksPerGroup) - 1) / uint64(sb.BlocksPerGroup)
	if groups*uint64(sb.InodesPerGroup) != uint64(sb.InodesCount) {
		return fmt.Errorf("superblock: %d inodes, want %d groups × %d inodes per group", sb.InodesCount, groups, sb.InodesPerGroup)
	}
	sb.Groups = uint32(groups) // < InodesCount, a uint32
	// Each group's inode table must fit in the partition.
	if itab := uint64(sb.InodesPerGroup) * uint64(sb.InodeSize); groups*itab > uint64(partSize) {
		return fmt.Errorf("superblock: %d groups of %d-byte inode tables do not fit in the %d-byte partition", groups, itab, partSize)
	}
	return nil
}

// firstDataBlock is the block holding the superblock: block 1 with 1 KiB
// blocks (block 0 is the boot sector), else block 0.
func firstDataBlock(bs uint64) uint32 {
	if bs == 1024 {
		return 1
	}
	return 0
}

// featureNames lists INCOMPAT bits by their e2fsprogs names.
func featureNames(set uint32) string {
	var names []string
	for _, f := range incompatNames {
		if set&f.bit != 0 {
			names = append(names, f.name)
			set &^= f.bit
		}
	}
	for b := uint32(1); set != 0; b <<= 1 {
		if set&b != 0 {
			names = append(names, fmt.Sprintf("FEATURE_I%d", bits.TrailingZeros32(b)))
			set &^= b
		}
	}
	return strings.Join(names, ", ")
}

// hasSuper says whether group g holds a superblock backup (and so, with
// meta_bg, where its group's descriptor block is).
func (sb *Superblock) hasSuper(g uint32) bool {
	switch {
	case g == 0:
		return true
	case sb.Compat&compatSparseSuper2 != 0:
		return g == sb.BackupBGs[0] || g == sb.BackupBGs[1]
	case sb.RoCompat&roCompatSparseSuper == 0:
		return true
	case g == 1:
		return true
	}
	for _, p := range []uint32{3, 5, 7} {
		n := g
		for n%p == 0 {
			n /= p
		}
		if n == 1 {
			return true
		}
	}
	return false
}
