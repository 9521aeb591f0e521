// Package squashfs writes squashfs 4.0 images from an rfs tree model, and
// reads them back (Open: ours and mksquashfs's).
//
// The on-disk format follows the kernel's
// Documentation/filesystems/squashfs.rst and what fs/squashfs accepts. The
// image layout is the one mksquashfs uses, because the kernel checks the
// order of the tables when it mounts:
//
//	superblock (96 bytes)
//	compressor options       (only when not the defaults)
//	data blocks and fragment blocks
//	inode table              (metadata blocks)
//	directory table          (metadata blocks)
//	fragment table + index
//	export table + index     (inode number -> inode reference, for NFS/overlayfs)
//	id table + index         (uids and gids)
//	xattr tables + index     (only with Options.Xattrs and a tree with xattrs)
//	zero padding to a 4 KiB multiple
//
// The writer is deterministic: the same tree and options give the same
// bytes, whatever the number of workers compressing blocks in parallel.
//
// What it stores, and how:
//   - every inode type; basic inodes, extended ones only where the kernel
//     needs them: files over 4 GiB or starting past 4 GiB, files with hard
//     links (nlink > 1) or holes, directories over 64 KiB of listing or with
//     a directory index, inodes with xattrs;
//   - hard links (entries sharing a *rootfs.Node) share one inode;
//   - identical file contents are stored once (files whose size is unique
//     are never hashed; files are read, and candidates hashed, ahead on
//     several goroutines, once up to 8 MiB, twice above);
//   - all-zero full blocks are holes (size word 0);
//   - the tail of every file (and every file smaller than a block) is packed
//     into fragment blocks (mksquashfs -always-use-fragments);
//   - a block that does not shrink is stored uncompressed;
//   - an export table, so the image is NFS/overlayfs exportable like a
//     default mksquashfs image;
//   - xattrs (user.*, trusted.*, security.*; identical sets shared, values
//     inline) only when Options.Xattrs says the kernel reads them; the
//     default gokrazy kernels do not, and then a node with xattrs is an
//     error.
//
// Compressors: gzip (default, level 9 like mksquashfs), xz (LZMA2, CRC32,
// dictionary = block size unless Options.XZDictSize; no BCJ filters) and
// zstd (level 15 by default); non-default settings are written as
// compressor options, as mksquashfs does. xz and zstd need a kernel with
// CONFIG_SQUASHFS_XZ / CONFIG_SQUASHFS_ZSTD.
//
// Size against mksquashfs -comp gzip: the zlib encoder is rfs's own
// (package deflate), as small as C zlib -9 on the same blocks, so images
// come out the same size as mksquashfs's on binaries and text (busybox
// 741,376 bytes both; /usr/lib/python3.11 0.1% smaller) and smaller on
// many small files (tail packing, and short matches weighed against
// literals). Options.Smallest also runs github.com/klauspost/compress on
// every block and keeps the smaller output. See docs/benchmarks.md and
// bench/squashfs.sh.
package squashfs

import (
	"encoding/binary"

	"github.com/rfsbuild/rfs/squashfs/sqsb"
)

const (
	magic         = sqsb.Magic
	superSize     = sqsb.Size
	metaBlockSize = 8192 // uncompressed size of a metadata block

	metaUncompressed = 0x8000  // metadata block header: stored uncompressed
	dataUncompressed = 1 << 24 // data block size word: stored uncompressed

	invalidFrag  = 0xFFFFFFFF
	invalidXattr = 0xFFFFFFFF
	invalidTable = 0xFFFFFFFFFFFFFFFF

	maxNameLen    = 256 // SQUASHFS_NAME_LEN
	maxDirCount   = 256 // entries per directory header
	maxIDs        = 65536
	maxSymlinkLen = 4095 // PATH_MAX-1; the kernel refuses more than a page
	pad           = 4096
)

// Superblock flags.
const (
	flagNoXattrs        = 0x0200
	flagCompOpts        = 0x0400
	flagAlwaysFragments = 0x0020
	flagDuplicates      = 0x0040
	flagExportable      = 0x0080
)

// Inode types. The extended variant of a basic type is basic+7.
const (
	typeDir     = 1
	typeFile    = 2
	typeSymlink = 3
	typeBlkDev  = 4
	typeChrDev  = 5
	typeFifo    = 6
	typeSocket  = 7
	typeExtDir  = 8
	typeExtFile = 9
)

type superblock struct {
	inodes      uint32
	mtime       uint32
	blockSize   uint32
	fragments   uint32
	compression uint16
	blockLog    uint16
	flags       uint16
	ids         uint16
	rootInode   uint64
	bytesUsed   uint64
	idTable     uint64
	xattrTable  uint64
	inodeTable  uint64
	dirTable    uint64
	fragTable   uint64
	exportTable uint64
}

func (s *superblock) marshal() []byte {
	b := make([]byte, 0, superSize)
	le := binary.LittleEndian
	b = le.AppendUint32(b, magic)
	b = le.AppendUint32(b, s.inodes)
	b = le.AppendUint32(b, s.mtime)
	b = le.AppendUint32(b, s.blockSize)
	b = le.AppendUint32(b, s.fragments)
	b = le.AppendUint16(b, s.compression)
	b = le.AppendUint16(b, s.blockLog)
	b = le.AppendUint16(b, s.flags)
	b = le.AppendUint16(b, s.ids)
	b = le.AppendUint16(b, 4) // major
	b = le.AppendUint16(b, 0) // minor
	b = le.AppendUint64(b, s.rootInode)
	b = le.AppendUint64(b, s.bytesUsed)
	b = le.AppendUint64(b, s.idTable)
	b = le.AppendUint64(b, s.xattrTable)
	b = le.AppendUint64(b, s.inodeTable)
	b = le.AppendUint64(b, s.dirTable)
	b = le.AppendUint64(b, s.fragTable)
	b = le.AppendUint64(b, s.exportTable)
	return b
}
