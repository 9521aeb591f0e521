// Package squashfs writes squashfs 4.0 images from an rfs tree model.
//
// The on-disk format follows the kernel's
// Documentation/filesystems/squashfs.rst and what fs/squashfs accepts. The
// image layout is the one mksquashfs uses, because the kernel checks the
// order of the tables when it mounts:
//
//	superblock (96 bytes)
//	data blocks and fragment blocks
//	inode table              (metadata blocks)
//	directory table          (metadata blocks)
//	fragment table + index
//	export table + index     (inode number -> inode reference, for NFS/overlayfs)
//	id table + index         (uids and gids)
//	zero padding to a 4 KiB multiple
//
// The writer is deterministic: the same tree and options give the same bytes,
// whatever the number of workers compressing blocks in parallel.
package squashfs

import "encoding/binary"

const (
	magic         = 0x73717368
	superSize     = 96
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
