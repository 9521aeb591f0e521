// Package jbd2 replays an ext4 (JBD2) journal in memory, read-only: it
// does what the kernel's and e2fsprogs' recovery do (three passes over
// the circular log: find the end of the valid log, collect the revoke
// records, replay) but instead of writing each logged block to its place
// it returns a map from filesystem block to the journal block holding the
// newest copy. A reader that consults the map sees what the kernel would
// mount after recovery.
//
// The journal comes from a card found in the field: every count and
// block number is checked against the journal's size, the walk is
// bounded by it, and the memory used is bounded by the number of journal
// blocks (one map entry per logged block, no block copies). A journal
// the kernel would refuse to recover (a failed commit checksum, a
// corrupt descriptor in the live log, unknown features) is an error.
// Standard library only.
package jbd2

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// Magic starts every journal metadata block (big-endian).
const Magic = 0xc03b3998

// Block types.
const (
	typeDescriptor = 1
	typeCommit     = 2
	typeSuperV1    = 3
	typeSuperV2    = 4
	typeRevoke     = 5
)

// Feature bits (names as in the kernel's jbd2.h).
const (
	compatChecksum = 0x1

	incompatRevoke      = 0x1
	incompat64bit       = 0x2
	incompatAsyncCommit = 0x4
	incompatCsumV2      = 0x8
	incompatCsumV3      = 0x10
	incompatFastCommit  = 0x20
	knownIncompat       = incompatRevoke | incompat64bit | incompatAsyncCommit | incompatCsumV2 | incompatCsumV3
)

// Tag flags.
const (
	flagEscape   = 1
	flagSameUUID = 2
	flagLastTag  = 8
)

// Checksum types in the superblock and commit blocks.
const (
	chksumCRC32  = 1
	chksumCRC32C = 4
)

const headerSize = 12 // magic, block type, sequence

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32c is the kernel's crc32c(seed, p): no inversion in or out.
func crc32c(seed uint32, p []byte) uint32 { return ^crc32.Update(^seed, castagnoli, p) }

// crc32be is the kernel's crc32_be (checksum v1, JBD2_FEATURE_COMPAT_CHECKSUM):
// CRC-32 with the polynomial 0x04c11db7, most significant bit first, no
// inversion.
func crc32be(crc uint32, p []byte) uint32 {
	for _, b := range p {
		crc = crc<<8 ^ crc32beTable[byte(crc>>24)^b]
	}
	return crc
}

var crc32beTable = func() (t [256]uint32) {
	for i := range t {
		c := uint32(i) << 24
		for range 8 {
			if c&0x80000000 != 0 {
				c = c<<1 ^ 0x04c11db7
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()

// Copy is where the newest logged copy of a filesystem block is.
type Copy struct {
	Block   uint32 // the journal block (0 is the journal superblock)
	Escaped bool   // its first 4 bytes were the magic: restore them
}

// Replay is the outcome of a recovery.
type Replay struct {
	// Blocks maps a filesystem block to its newest committed copy.
	Blocks map[uint64]Copy
	// Transactions replayed: FirstTID up to (not including) EndTID.
	FirstTID, EndTID  uint32
	Replayed, Revoked int // block copies replayed, copies skipped as revoked
}

// Journal is an opened journal.
type Journal struct {
	r         io.ReaderAt // the journal: block i at i*BlockSize
	bs        int
	version   int // 1 or 2
	maxlen    uint32
	first     uint32
	sequence  uint32
	start     uint32
	compat    uint32
	incompat  uint32
	seed      uint32 // checksum seed (v2/v3): crc32c of the UUID
	fsBlocks  uint64 // the filesystem's blocks: a tag beyond is an error
	tagBytes  int
	tailBytes int // the checksum tail of descriptor and revoke blocks
}

// Open reads and checks the journal superblock of the journal r, size
// bytes long, for a filesystem of fsBlocks blocks of blockSize bytes.
func Open(r io.ReaderAt, size int64, blockSize int, fsBlocks uint64) (*Journal, error) {
	if blockSize < 1024 || blockSize > 65536 {
		return nil, fmt.Errorf("block size %d", blockSize)
	}
	b := make([]byte, 1024)
	if size < 1024 {
		return nil, fmt.Errorf("%d bytes: too small for a journal", size)
	}
	if _, err := r.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("read the journal superblock: %w", err)
	}
	be := binary.BigEndian.Uint32
	if m := be(b); m != Magic {
		return nil, fmt.Errorf("superblock: magic %#08x, want %#08x", m, uint32(Magic))
	}
	j := &Journal{r: r, bs: blockSize, fsBlocks: fsBlocks}
	switch t := be(b[4:]); t {
	case typeSuperV1:
		j.version = 1
	case typeSuperV2:
		j.version = 2
		j.compat, j.incompat = be(b[0x24:]), be(b[0x28:])
	default:
		return nil, fmt.Errorf("superblock: block type %d, want 3 or 4", t)
	}
	if bs := be(b[0xc:]); bs != uint32(blockSize) {
		return nil, fmt.Errorf("superblock: block size %d, the filesystem's is %d", bs, blockSize)
	}
	j.maxlen, j.first, j.sequence, j.start = be(b[0x10:]), be(b[0x14:]), be(b[0x18:]), be(b[0x1c:])
	if total := size / int64(blockSize); int64(j.maxlen) > total {
		return nil, fmt.Errorf("superblock: %d blocks, but the journal file holds %d", j.maxlen, total)
	}
	if j.first == 0 || j.first >= j.maxlen {
		return nil, fmt.Errorf("superblock: first log block %d outside the journal's %d blocks", j.first, j.maxlen)
	}
	if j.start != 0 && j.start >= j.maxlen {
		return nil, fmt.Errorf("superblock: log start %d outside the journal's %d blocks", j.start, j.maxlen)
	}
	if err := j.checkFeatures(b); err != nil {
		return nil, err
	}
	j.tagBytes = j.tagSize()
	return j, nil
}

// checkFeatures refuses what the kernel refuses, or what this package
// does not replay, and checks the superblock checksum (v2/v3).
func (j *Journal) checkFeatures(b []byte) error {
	if j.incompat&incompatFastCommit != 0 {
		return errors.New("fast commits (the fast_commit feature) are not supported")
	}
	if unknown := j.incompat &^ knownIncompat; unknown != 0 {
		return fmt.Errorf("superblock: unknown incompatible features %#x", unknown)
	}
	v2, v3 := j.incompat&incompatCsumV2 != 0, j.incompat&incompatCsumV3 != 0
	if v2 && v3 {
		return errors.New("superblock: both checksum v2 and v3")
	}
	if !v2 && !v3 {
		return nil
	}
	if j.compat&compatChecksum != 0 {
		return errors.New("superblock: both checksum v1 and v2/v3")
	}
	if t := b[0x50]; t != chksumCRC32C {
		return fmt.Errorf("superblock: checksum type %d, want %d (crc32c)", t, chksumCRC32C)
	}
	want := binary.BigEndian.Uint32(b[0xfc:])
	c := make([]byte, len(b))
	copy(c, b)
	binary.BigEndian.PutUint32(c[0xfc:], 0)
	if got := crc32c(^uint32(0), c); got != want {
		return fmt.Errorf("superblock: checksum %#08x, computed %#08x", want, got)
	}
	j.seed = crc32c(^uint32(0), b[0x30:0x40])
	j.tailBytes = 4
	return nil
}

// csum says whether the journal has checksums v2 or v3.
func (j *Journal) csum() bool { return j.incompat&(incompatCsumV2|incompatCsumV3) != 0 }

// has64 says whether tags and revoke records hold 64-bit block numbers.
func (j *Journal) has64() bool { return j.incompat&incompat64bit != 0 }

// tagSize is the kernel's journal_tag_bytes.
func (j *Journal) tagSize() int {
	if j.incompat&incompatCsumV3 != 0 {
		return 16 // journal_block_tag3_t
	}
	sz := 12 // journal_block_tag_t
	if j.incompat&incompatCsumV2 != 0 {
		sz += 2
	}
	if j.has64() {
		return sz
	}
	return sz - 4
}

// NeedsReplay says whether the log holds anything (s_start is 0 after a
// clean unmount or a recovery).
func (j *Journal) NeedsReplay() bool { return j.start != 0 }

// Len is the journal's length in blocks.
func (j *Journal) Len() uint32 { return j.maxlen }

// ReadBlock reads journal block n into p (BlockSize bytes).
func (j *Journal) ReadBlock(n uint32, p []byte) error {
	if n >= j.maxlen {
		return fmt.Errorf("journal block %d: outside the journal's %d blocks", n, j.maxlen)
	}
	if _, err := j.r.ReadAt(p[:j.bs], int64(n)*int64(j.bs)); err != nil {
		return fmt.Errorf("read journal block %d: %w", n, err)
	}
	return nil
}

// ReadBlockAt reads len(p) bytes at byte off of journal block n.
func (j *Journal) ReadBlockAt(n uint32, p []byte, off int) error {
	if n >= j.maxlen || off < 0 || off > j.bs || len(p) > j.bs-off {
		return fmt.Errorf("journal block %d: %d bytes at %d: outside the journal's %d blocks of %d bytes", n, len(p), off, j.maxlen, j.bs)
	}
	if _, err := j.r.ReadAt(p, int64(n)*int64(j.bs)+int64(off)); err != nil {
		return fmt.Errorf("read journal block %d: %w", n, err)
	}
	return nil
}

// wrap wraps a log position past the end back to the first log block.
func (j *Journal) wrap(n uint32) uint32 {
	if n >= j.maxlen {
		n -= j.maxlen - j.first
	}
	return n
}
