// Package sqsb decodes the 96-byte superblock of a squashfs 4.0 image:
// the one place its fields are read, for the squashfs reader, the init's
// check of its root and layer partitions, the builder's check of --layer
// files and the host tools. Parse checks the magic and the version; what
// the fields point to is the reader's business. Standard library only.
package sqsb

import (
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
)

// Size is the superblock's length: it starts the image.
const Size = 96

// Magic is "hsqs" read as a little-endian uint32.
const Magic = 0x73717368

// Compression ids (the superblock's compression field).
const (
	GZIP = 1
	LZMA = 2
	LZO  = 3
	XZ   = 4
	LZ4  = 5
	ZSTD = 6
)

var compressors = map[uint16]string{GZIP: "gzip", LZMA: "lzma", LZO: "lzo", XZ: "xz", LZ4: "lz4", ZSTD: "zstd"}

// Superblock holds the decoded fields, in on-disk order.
type Superblock struct {
	Inodes      uint32
	MTime       uint32
	BlockSize   uint32
	Fragments   uint32
	Compression uint16
	BlockLog    uint16
	Flags       uint16
	IDs         uint16
	Major       uint16
	Minor       uint16
	RootInode   uint64
	BytesUsed   uint64
	IDTable     uint64
	XattrTable  uint64
	InodeTable  uint64
	DirTable    uint64
	FragTable   uint64
	ExportTable uint64
}

// Compressor names the compression ("gzip", "xz", ...; "unknown
// compressor N" for an id squashfs does not define).
func (s *Superblock) Compressor() string { return CompressorName(s.Compression) }

// CompressorName names a compression id.
func CompressorName(id uint16) string {
	if c, ok := compressors[id]; ok {
		return c
	}
	return "unknown compressor " + strconv.Itoa(int(id))
}

// Parse decodes the superblock b (at least Size bytes). It refuses a wrong
// magic and a version other than 4.0 (the only one Linux mounts).
func Parse(b []byte) (*Superblock, error) {
	if len(b) < Size {
		return nil, fmt.Errorf("squashfs superblock: %d bytes, want %d", len(b), Size)
	}
	le := binary.LittleEndian
	if le.Uint32(b) != Magic {
		return nil, fmt.Errorf("not a squashfs (magic %q, want \"hsqs\")", b[:4])
	}
	s := &Superblock{
		Inodes: le.Uint32(b[4:]), MTime: le.Uint32(b[8:]), BlockSize: le.Uint32(b[12:]),
		Fragments: le.Uint32(b[16:]), Compression: le.Uint16(b[20:]), BlockLog: le.Uint16(b[22:]),
		Flags: le.Uint16(b[24:]), IDs: le.Uint16(b[26:]), Major: le.Uint16(b[28:]), Minor: le.Uint16(b[30:]),
		RootInode: le.Uint64(b[32:]), BytesUsed: le.Uint64(b[40:]), IDTable: le.Uint64(b[48:]),
		XattrTable: le.Uint64(b[56:]), InodeTable: le.Uint64(b[64:]), DirTable: le.Uint64(b[72:]),
		FragTable: le.Uint64(b[80:]), ExportTable: le.Uint64(b[88:]),
	}
	if s.Major != 4 || s.Minor != 0 {
		return nil, fmt.Errorf("squashfs version %d.%d, only 4.0 is supported", s.Major, s.Minor)
	}
	return s, nil
}

// Read reads and decodes the superblock at the start of r.
func Read(r io.ReaderAt) (*Superblock, error) {
	var b [Size]byte
	n, err := r.ReadAt(b[:], 0)
	if n >= 4 && binary.LittleEndian.Uint32(b[:]) != Magic {
		// A short file that is no squashfs says so, not "EOF".
		return nil, fmt.Errorf("not a squashfs (magic %q, want \"hsqs\")", b[:4])
	}
	if n < Size {
		return nil, fmt.Errorf("read the squashfs superblock: %w", err)
	}
	return Parse(b[:])
}

// HasMagic reports whether r starts with the squashfs magic: enough to
// tell a user who gave a squashfs where something else belongs.
func HasMagic(r io.ReaderAt) bool {
	var b [4]byte
	_, err := r.ReadAt(b[:], 0)
	return err == nil && binary.LittleEndian.Uint32(b[:]) == Magic
}
