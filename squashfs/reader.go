package squashfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"path"
	"strings"
	"sync"

	"github.com/rfsbuild/rfs/rootfs"
	"github.com/rfsbuild/rfs/squashfs/sqsb"
)

// Reader reads a squashfs 4.0 image: ours or mksquashfs's (gzip, xz
// without BCJ filters, zstd). It checks what it reads and never trusts a
// size from the image for an allocation: a malformed image gives an error,
// never a panic or an allocation much larger than the image. It is safe
// for concurrent use.
type Reader struct {
	r      io.ReaderAt
	sb     superblock
	size   uint64 // bytes_used
	bs     int
	comp   string
	idTab  []uint32
	fragIx []uint64 // fragment table index
	xattr  struct {
		start uint64   // key/value stream
		ids   uint32   // number of xattr ids
		index []uint64 // id entry blocks
	}

	root *Inode

	mu   sync.Mutex // metadata: mdec, meta
	mdec decompressor
	meta map[uint64]*metaBlock // cache of decompressed metadata blocks

	dmu  sync.Mutex // data: ddec, frag, cbuf; taken before mu, never after
	ddec decompressor
	frag map[uint32][]byte // cache of decompressed fragment blocks
	cbuf []byte            // scratch for compressed bytes
}

type metaBlock struct {
	data []byte
	next uint64 // absolute position of the following block
}

// Info is what the superblock says.
type Info struct {
	Compressor string
	BlockSize  int
	Inodes     uint32
	Fragments  uint32
	IDs        int
	MTime      int64
	BytesUsed  uint64
	Xattrs     bool
	Exportable bool
}

// Inode is the metadata of one inode, like an lstat.
type Inode struct {
	Type   rootfs.Type
	Perm   uint32 // 07777
	UID    uint32
	GID    uint32
	MTime  int64
	Nlink  uint32
	Number uint32 // inode number: equal for hard links
	Size   int64  // file size; symlink target length; 0 otherwise
	Major  uint32 // devices
	Minor  uint32
	Target string // symlink

	ref    uint64 // inode reference: block<<16 | offset
	xattr  uint32
	start  uint64   // file: first data block
	blocks []uint32 // file: block size words
	frag   uint32   // file: fragment index or invalidFrag
	fragOf uint32
	dirBlk uint32 // dir: listing position and size (+3)
	dirOff uint16
	dirLen uint32
}

// DirEntry is one name in a directory.
type DirEntry struct {
	Name  string
	Inode *Inode
}

// Limits that keep a hostile image from using much memory or time.
const (
	metaCacheMax = 512 // decompressed metadata blocks kept (4 MiB)
	fragCacheMax = 8   // decompressed fragment blocks kept
)

var errCorrupt = errors.New("squashfs: corrupt image")

func corrupt(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errCorrupt, fmt.Sprintf(format, a...))
}

// Open reads the superblock and tables of the image in r.
func Open(r io.ReaderAt) (*Reader, error) {
	var b [superSize]byte
	if _, err := r.ReadAt(b[:], 0); err != nil {
		return nil, fmt.Errorf("squashfs: read superblock: %w", err)
	}
	le := binary.LittleEndian
	s, err := sqsb.Parse(b[:])
	if err != nil {
		return nil, fmt.Errorf("squashfs: %w", err)
	}
	sb := superblock{
		inodes: s.Inodes, mtime: s.MTime, blockSize: s.BlockSize, fragments: s.Fragments,
		compression: s.Compression, blockLog: s.BlockLog, flags: s.Flags, ids: s.IDs,
		rootInode: s.RootInode, bytesUsed: s.BytesUsed, idTable: s.IDTable, xattrTable: s.XattrTable,
		inodeTable: s.InodeTable, dirTable: s.DirTable, fragTable: s.FragTable, exportTable: s.ExportTable,
	}
	bs := sb.blockSize
	if bs < 4096 || bs > 1<<20 || bs&(bs-1) != 0 || 1<<sb.blockLog != bs {
		return nil, corrupt("block size %d (log %d)", bs, sb.blockLog)
	}
	if sb.bytesUsed < superSize || sb.bytesUsed > math.MaxInt64 {
		return nil, corrupt("bytes used %d", sb.bytesUsed)
	}
	// The whole image must be there.
	if _, err := r.ReadAt(b[:1], int64(sb.bytesUsed-1)); err != nil {
		return nil, fmt.Errorf("squashfs: image truncated (%d bytes used): %w", sb.bytesUsed, err)
	}
	if sb.inodeTable >= sb.dirTable || sb.dirTable > sb.bytesUsed || sb.inodeTable < superSize {
		return nil, corrupt("inode table at %d, directory table at %d", sb.inodeTable, sb.dirTable)
	}
	if sb.ids == 0 {
		return nil, corrupt("no ids")
	}
	mdec, err := newDecompressor(sb.compression, int(bs))
	if err != nil {
		return nil, fmt.Errorf("squashfs: %w", err)
	}
	ddec, err := newDecompressor(sb.compression, int(bs))
	if err != nil {
		return nil, fmt.Errorf("squashfs: %w", err)
	}
	rd := &Reader{
		r: r, sb: sb, size: sb.bytesUsed, bs: int(bs), mdec: mdec, ddec: ddec,
		meta: map[uint64]*metaBlock{}, frag: map[uint32][]byte{},
	}
	for name, c := range codecs {
		if c.id == sb.compression {
			rd.comp = name
		}
	}
	// Id table.
	idBytes, err := rd.readIndexed(sb.idTable, int(sb.ids)*4, "id")
	if err != nil {
		return nil, err
	}
	rd.idTab = make([]uint32, sb.ids)
	for i := range rd.idTab {
		rd.idTab[i] = le.Uint32(idBytes[4*i:])
	}
	// Fragment table index (entries are read on demand).
	if sb.fragments > 0 {
		if sb.fragTable == invalidTable {
			return nil, corrupt("fragments without a fragment table")
		}
		if rd.fragIx, err = rd.readIndex(sb.fragTable, uint64(sb.fragments)*16, "fragment"); err != nil {
			return nil, err
		}
	}
	// Xattr id table.
	if sb.xattrTable != invalidTable {
		var h [16]byte
		if err := rd.readAt(h[:], sb.xattrTable); err != nil {
			return nil, fmt.Errorf("squashfs: xattr table: %w", err)
		}
		rd.xattr.start, rd.xattr.ids = le.Uint64(h[0:]), le.Uint32(h[8:])
		if rd.xattr.start >= sb.xattrTable || rd.xattr.ids == 0 {
			return nil, corrupt("xattr table header")
		}
		if rd.xattr.index, err = rd.readIndex(sb.xattrTable+16, uint64(rd.xattr.ids)*16, "xattr id"); err != nil {
			return nil, err
		}
	}
	root, err := rd.inode(sb.rootInode)
	if err != nil {
		return nil, fmt.Errorf("squashfs: root inode: %w", err)
	}
	if root.Type != rootfs.Dir {
		return nil, corrupt("root inode is a %s", root.Type)
	}
	rd.root = root
	return rd, nil
}

// Info returns the superblock's facts.
func (r *Reader) Info() Info {
	return Info{
		Compressor: r.comp, BlockSize: r.bs, Inodes: r.sb.inodes, Fragments: r.sb.fragments,
		IDs: len(r.idTab), MTime: int64(r.sb.mtime), BytesUsed: r.size,
		Xattrs: r.sb.xattrTable != invalidTable, Exportable: r.sb.flags&flagExportable != 0,
	}
}

// Root returns the root directory's inode.
func (r *Reader) Root() *Inode { return r.root }

func (r *Reader) readAt(p []byte, off uint64) error {
	if off > r.size || uint64(len(p)) > r.size-off {
		return corrupt("read of %d bytes at %d past the end (%d)", len(p), off, r.size)
	}
	_, err := r.r.ReadAt(p, int64(off))
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// readIndex reads the index of a table of n bytes (8 bytes per 8 KiB
// metadata block) at pos.
func (r *Reader) readIndex(pos, n uint64, what string) ([]uint64, error) {
	count := (n + metaBlockSize - 1) / metaBlockSize
	if pos > r.size || count*8 > r.size-pos {
		return nil, corrupt("%s table index at %d does not fit", what, pos)
	}
	b := make([]byte, count*8)
	if err := r.readAt(b, pos); err != nil {
		return nil, fmt.Errorf("squashfs: %s table index: %w", what, err)
	}
	ix := make([]uint64, count)
	for i := range ix {
		ix[i] = binary.LittleEndian.Uint64(b[8*i:])
		if ix[i] >= pos {
			return nil, corrupt("%s table block at %d after its index", what, ix[i])
		}
	}
	return ix, nil
}

// readIndexed reads a whole small table (ids) through its index.
func (r *Reader) readIndexed(pos uint64, n int, what string) ([]byte, error) {
	ix, err := r.readIndex(pos, uint64(n), what)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, n)
	for _, blk := range ix {
		mb, err := r.metaBlock(blk)
		if err != nil {
			return nil, fmt.Errorf("squashfs: %s table: %w", what, err)
		}
		out = append(out, mb.data[:min(len(mb.data), n-len(out))]...)
	}
	if len(out) < n {
		return nil, corrupt("%s table is short", what)
	}
	return out, nil
}

// metaBlock reads and caches the metadata block at absolute position pos.
func (r *Reader) metaBlock(pos uint64) (*metaBlock, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.metaBlockLocked(pos)
}

func (r *Reader) metaBlockLocked(pos uint64) (*metaBlock, error) {
	if mb := r.meta[pos]; mb != nil {
		return mb, nil
	}
	var h [2]byte
	if err := r.readAt(h[:], pos); err != nil {
		return nil, err
	}
	w := binary.LittleEndian.Uint16(h[:])
	n := int(w &^ metaUncompressed)
	if n == 0 || n > metaBlockSize {
		return nil, corrupt("metadata block at %d: size %d", pos, n)
	}
	src := make([]byte, n)
	if err := r.readAt(src, pos+2); err != nil {
		return nil, err
	}
	data := src
	if w&metaUncompressed == 0 {
		var err error
		if data, err = r.mdec.decompress(make([]byte, 0, metaBlockSize), src); err != nil {
			return nil, corrupt("metadata block at %d: %v", pos, err)
		}
	}
	if len(r.meta) >= metaCacheMax {
		clear(r.meta)
	}
	mb := &metaBlock{data: data, next: pos + 2 + uint64(n)}
	r.meta[pos] = mb
	return mb, nil
}

// metaReader reads a metadata stream from a position on.
type metaReader struct {
	r   *Reader
	blk uint64 // absolute position of the current block
	off int
	end uint64 // the stream must not go past this
}

func (r *Reader) metaAt(tableStart, tableEnd uint64, ref uint64) *metaReader {
	return &metaReader{r: r, blk: tableStart + ref>>16, off: int(ref & 0xffff), end: tableEnd}
}

// read fills p (growing nothing: callers pass bounded buffers).
func (m *metaReader) read(p []byte) error {
	for len(p) > 0 {
		if m.blk >= m.end {
			return corrupt("metadata read past the end of its table")
		}
		mb, err := m.r.metaBlock(m.blk)
		if err != nil {
			return err
		}
		if m.off > len(mb.data) {
			return corrupt("metadata offset %d past its block (%d bytes)", m.off, len(mb.data))
		}
		n := copy(p, mb.data[m.off:])
		p = p[n:]
		m.off += n
		if m.off == len(mb.data) && len(p) > 0 {
			m.blk, m.off = mb.next, 0
		}
	}
	return nil
}

// bytes reads n bytes, allocating as data actually arrives.
func (m *metaReader) bytes(n uint64) ([]byte, error) {
	out := make([]byte, 0, min(n, 4096))
	for uint64(len(out)) < n {
		k := min(n-uint64(len(out)), metaBlockSize)
		l := len(out)
		out = append(out, make([]byte, k)...)
		if err := m.read(out[l:]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (m *metaReader) u16() (uint16, error) {
	var b [2]byte
	err := m.read(b[:])
	return binary.LittleEndian.Uint16(b[:]), err
}

func (m *metaReader) u32() (uint32, error) {
	var b [4]byte
	err := m.read(b[:])
	return binary.LittleEndian.Uint32(b[:]), err
}

func (m *metaReader) u64() (uint64, error) {
	var b [8]byte
	err := m.read(b[:])
	return binary.LittleEndian.Uint64(b[:]), err
}

// inode reads the inode at ref.
func (r *Reader) inode(ref uint64) (*Inode, error) {
	m := r.metaAt(r.sb.inodeTable, r.sb.dirTable, ref)
	var h [16]byte
	if err := m.read(h[:]); err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	typ := le.Uint16(h[0:])
	uidIx, gidIx := le.Uint16(h[4:]), le.Uint16(h[6:])
	if int(uidIx) >= len(r.idTab) || int(gidIx) >= len(r.idTab) {
		return nil, corrupt("inode at %#x: id index out of range", ref)
	}
	ino := &Inode{
		Perm: uint32(le.Uint16(h[2:]) & 0o7777), UID: r.idTab[uidIx], GID: r.idTab[gidIx],
		MTime: int64(le.Uint32(h[8:])), Number: le.Uint32(h[12:]), ref: ref,
		xattr: invalidXattr, frag: invalidFrag, Nlink: 1,
	}
	if ino.Number == 0 || ino.Number > r.sb.inodes {
		return nil, corrupt("inode at %#x: number %d out of range", ref, ino.Number)
	}
	var err error
	u32 := func() uint32 {
		if err != nil {
			return 0
		}
		var v uint32
		v, err = m.u32()
		return v
	}
	switch typ {
	case typeDir:
		ino.Type = rootfs.Dir
		ino.dirBlk, ino.Nlink = u32(), u32()
		var v uint32
		v = u32()
		ino.dirLen, ino.dirOff = v&0xffff, uint16(v>>16)
		u32() // parent
	case typeExtDir:
		ino.Type = rootfs.Dir
		ino.Nlink, ino.dirLen, ino.dirBlk = u32(), u32(), u32()
		u32() // parent
		v := u32()
		ino.dirOff = uint16(v >> 16) // index count is the low half: skipped
		ino.xattr = u32()
	case typeFile, typeExtFile:
		ino.Type = rootfs.Regular
		if typ == typeFile {
			ino.start = uint64(u32())
			ino.frag, ino.fragOf = u32(), u32()
			ino.Size = int64(u32())
		} else {
			var start, size uint64
			if err == nil {
				start, err = m.u64()
			}
			if err == nil {
				size, err = m.u64()
			}
			if err == nil {
				_, err = m.u64() // sparse
			}
			if size > math.MaxInt64 {
				return nil, corrupt("inode %d: size %d", ino.Number, size)
			}
			ino.start, ino.Size = start, int64(size)
			ino.Nlink, ino.frag, ino.fragOf, ino.xattr = u32(), u32(), u32(), u32()
		}
		if err != nil {
			return nil, err
		}
		n := uint64(ino.Size) / uint64(r.bs)
		if ino.frag == invalidFrag && uint64(ino.Size)%uint64(r.bs) != 0 {
			n++
		}
		if ino.frag != invalidFrag && ino.frag >= r.sb.fragments {
			return nil, corrupt("inode %d: fragment %d of %d", ino.Number, ino.frag, r.sb.fragments)
		}
		b, err := m.bytes(4 * n) // grows only as the inode table has data
		if err != nil {
			return nil, err
		}
		ino.blocks = make([]uint32, n)
		for i := range ino.blocks {
			ino.blocks[i] = le.Uint32(b[4*i:])
			if sz := ino.blocks[i] &^ dataUncompressed; sz > uint32(r.bs) || ino.blocks[i]&^(dataUncompressed|0xffffff) != 0 {
				return nil, corrupt("inode %d: block %d size word %#x", ino.Number, i, ino.blocks[i])
			}
		}
	case typeSymlink, typeSymlink + 7:
		ino.Type = rootfs.Symlink
		ino.Nlink = u32()
		n := u32()
		if err != nil {
			return nil, err
		}
		if n == 0 || n > maxSymlinkLen {
			return nil, corrupt("inode %d: symlink target of %d bytes", ino.Number, n)
		}
		t, err := m.bytes(uint64(n))
		if err != nil {
			return nil, err
		}
		ino.Target, ino.Size = string(t), int64(n)
		if typ != typeSymlink {
			ino.xattr = u32()
		}
	case typeBlkDev, typeChrDev, typeBlkDev + 7, typeChrDev + 7:
		ino.Type = rootfs.BlockDev
		if typ == typeChrDev || typ == typeChrDev+7 {
			ino.Type = rootfs.CharDev
		}
		ino.Nlink = u32()
		dev := u32()
		ino.Major, ino.Minor = (dev>>8)&0xfff, dev&0xff|(dev>>12)&0xfff00
		if typ > 7 {
			ino.xattr = u32()
		}
	case typeFifo, typeSocket, typeFifo + 7, typeSocket + 7:
		ino.Type = rootfs.FIFO
		if typ == typeSocket || typ == typeSocket+7 {
			ino.Type = rootfs.Socket
		}
		ino.Nlink = u32()
		if typ > 7 {
			ino.xattr = u32()
		}
	default:
		return nil, corrupt("inode at %#x: type %d", ref, typ)
	}
	if err != nil {
		return nil, err
	}
	if ino.xattr != invalidXattr && ino.xattr >= r.xattr.ids {
		return nil, corrupt("inode %d: xattr id %d of %d", ino.Number, ino.xattr, r.xattr.ids)
	}
	return ino, nil
}

// ReadDir returns the entries of a directory in image (name) order.
func (r *Reader) ReadDir(dir *Inode) ([]DirEntry, error) {
	if dir.Type != rootfs.Dir {
		return nil, fmt.Errorf("squashfs: inode %d is not a directory", dir.Number)
	}
	if dir.dirLen < 3 {
		return nil, corrupt("directory %d: size %d", dir.Number, dir.dirLen)
	}
	fragEnd := r.size
	for _, t := range []uint64{r.sb.fragTable, r.sb.exportTable, r.sb.idTable, r.sb.xattrTable} {
		if t != invalidTable && t > r.sb.dirTable && t < fragEnd {
			fragEnd = t
		}
	}
	m := r.metaAt(r.sb.dirTable, fragEnd, uint64(dir.dirBlk)<<16|uint64(dir.dirOff))
	left := int64(dir.dirLen) - 3
	var out []DirEntry
	seen := map[string]bool{}
	le := binary.LittleEndian
	for left > 0 {
		var h [12]byte
		if left < 12 {
			return nil, corrupt("directory %d: truncated header", dir.Number)
		}
		if err := m.read(h[:]); err != nil {
			return nil, err
		}
		left -= 12
		count := le.Uint32(h[0:]) + 1
		blk, base := le.Uint32(h[4:]), le.Uint32(h[8:])
		if count > maxDirCount {
			return nil, corrupt("directory %d: %d entries in a run", dir.Number, count)
		}
		for range count {
			var e [8]byte
			if left < 8 {
				return nil, corrupt("directory %d: truncated entry", dir.Number)
			}
			if err := m.read(e[:]); err != nil {
				return nil, err
			}
			nlen := int64(le.Uint16(e[6:])) + 1
			left -= 8 + nlen
			if left < 0 || nlen > maxNameLen {
				return nil, corrupt("directory %d: bad entry", dir.Number)
			}
			nb, err := m.bytes(uint64(nlen))
			if err != nil {
				return nil, err
			}
			name := string(nb)
			if checkName(name) != nil || seen[name] {
				return nil, corrupt("directory %d: bad or repeated name %q", dir.Number, name)
			}
			seen[name] = true
			ino, err := r.inode(uint64(blk)<<16 | uint64(le.Uint16(e[0:])))
			if err != nil {
				return nil, err
			}
			if want := int64(base) + int64(int16(le.Uint16(e[2:]))); want != int64(ino.Number) {
				return nil, corrupt("directory %d: %q has inode number %d, entry says %d", dir.Number, name, ino.Number, want)
			}
			out = append(out, DirEntry{Name: name, Inode: ino})
		}
	}
	return out, nil
}

// Lookup returns the inode at an absolute or root-relative path, without
// following symlinks.
func (r *Reader) Lookup(p string) (*Inode, error) {
	ino := r.root
	for _, c := range strings.Split(path.Clean("/"+p), "/") {
		if c == "" {
			continue
		}
		ents, err := r.ReadDir(ino)
		if err != nil {
			return nil, err
		}
		var next *Inode
		for _, e := range ents {
			if e.Name == c {
				next = e.Inode
				break
			}
		}
		if next == nil {
			return nil, fmt.Errorf("squashfs: %s: file does not exist", p)
		}
		ino = next
	}
	return ino, nil
}

// Walk calls fn for the root ("/") and then every entry depth-first, in
// name order, like rootfs.Tree.Walk.
func (r *Reader) Walk(fn func(p string, ino *Inode) error) error {
	if err := fn("/", r.root); err != nil {
		return err
	}
	visited := map[uint64]bool{r.root.ref: true}
	return r.walk("", r.root, fn, visited, 0)
}

const maxDepth = 4096

func (r *Reader) walk(prefix string, dir *Inode, fn func(string, *Inode) error, visited map[uint64]bool, depth int) error {
	if depth > maxDepth {
		return corrupt("directories nested deeper than %d", maxDepth)
	}
	ents, err := r.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("%s: %w", prefix+"/", err)
	}
	for _, e := range ents {
		p := prefix + "/" + e.Name
		if e.Inode.Type == rootfs.Dir {
			if visited[e.Inode.ref] {
				return corrupt("%s: directory listed twice (a loop)", p)
			}
			visited[e.Inode.ref] = true
		}
		if err := fn(p, e.Inode); err != nil {
			return err
		}
		if e.Inode.Type == rootfs.Dir {
			if err := r.walk(p, e.Inode, fn, visited, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// Xattrs returns an inode's extended attributes (nil if none).
func (r *Reader) Xattrs(ino *Inode) (map[string][]byte, error) {
	if ino.xattr == invalidXattr {
		return nil, nil
	}
	if ino.xattr >= r.xattr.ids {
		return nil, corrupt("xattr id %d of %d", ino.xattr, r.xattr.ids)
	}
	i := uint64(ino.xattr) * 16
	idm := &metaReader{r: r, blk: r.xattr.index[i/metaBlockSize], off: int(i % metaBlockSize), end: r.sb.xattrTable}
	ref, err := idm.u64()
	if err != nil {
		return nil, err
	}
	count, err := idm.u32()
	if err != nil {
		return nil, err
	}
	m := r.metaAt(r.xattr.start, r.sb.xattrTable, ref)
	out := map[string][]byte{}
	for range count {
		typ, err := m.u16()
		if err != nil {
			return nil, err
		}
		nlen, err := m.u16()
		if err != nil {
			return nil, err
		}
		if typ&^xattrOOL > xattrSecurity || nlen == 0 || int(nlen) > maxXattrName {
			return nil, corrupt("xattr type %d, name size %d", typ, nlen)
		}
		name, err := m.bytes(uint64(nlen))
		if err != nil {
			return nil, err
		}
		vlen, err := m.u32()
		if err != nil {
			return nil, err
		}
		var val []byte
		if typ&xattrOOL != 0 {
			if vlen != 8 {
				return nil, corrupt("out-of-line xattr reference of %d bytes", vlen)
			}
			vref, err := m.u64()
			if err != nil {
				return nil, err
			}
			vm := r.metaAt(r.xattr.start, r.sb.xattrTable, vref)
			if vlen, err = vm.u32(); err != nil {
				return nil, err
			}
			if vlen > maxXattrValue {
				return nil, corrupt("xattr value of %d bytes", vlen)
			}
			if val, err = vm.bytes(uint64(vlen)); err != nil {
				return nil, err
			}
		} else {
			if vlen > maxXattrValue {
				return nil, corrupt("xattr value of %d bytes", vlen)
			}
			if val, err = m.bytes(uint64(vlen)); err != nil {
				return nil, err
			}
		}
		out[xattrPrefixes[typ&^xattrOOL]+string(name)] = val
	}
	return out, nil
}

// fragEntry reads fragment table entry i.
func (r *Reader) fragEntry(i uint32) (fragEntry, error) {
	off := uint64(i) * 16
	bi := off / metaBlockSize
	if bi >= uint64(len(r.fragIx)) {
		return fragEntry{}, corrupt("fragment %d out of range", i)
	}
	m := &metaReader{r: r, blk: r.fragIx[bi], off: int(off % metaBlockSize), end: r.sb.fragTable}
	start, err := m.u64()
	if err != nil {
		return fragEntry{}, err
	}
	size, err := m.u32()
	if err != nil {
		return fragEntry{}, err
	}
	if size&^dataUncompressed > uint32(r.bs) || size&^(dataUncompressed|0xffffff) != 0 {
		return fragEntry{}, corrupt("fragment %d size word %#x", i, size)
	}
	return fragEntry{start: start, size: size}, nil
}

// dataBlock reads the block with size word w at pos and expands it to
// exactly want bytes (appended to dst).
func (r *Reader) dataBlockLocked(dst []byte, pos uint64, w uint32, want int) ([]byte, error) {
	n := int(w &^ dataUncompressed)
	if n == 0 {
		return nil, corrupt("data block at %d: size 0", pos)
	}
	if cap(r.cbuf) < n {
		r.cbuf = make([]byte, r.bs)
	}
	src := r.cbuf[:n]
	if err := r.readAt(src, pos); err != nil {
		return nil, err
	}
	var out []byte
	if w&dataUncompressed != 0 {
		out = append(dst[:0], src...)
	} else {
		var err error
		if out, err = r.ddec.decompress(dst[:0:r.bs], src); err != nil {
			return nil, corrupt("data block at %d: %v", pos, err)
		}
	}
	if want >= 0 && len(out) != want {
		return nil, corrupt("data block at %d: %d bytes, want %d", pos, len(out), want)
	}
	return out, nil
}

// fragment returns the decompressed fragment block i.
func (r *Reader) fragmentLocked(i uint32) ([]byte, error) {
	if b, ok := r.frag[i]; ok {
		return b, nil
	}
	e, err := r.fragEntry(i)
	if err != nil {
		return nil, err
	}
	b, err := r.dataBlockLocked(make([]byte, 0, r.bs), e.start, e.size, -1)
	if err != nil {
		return nil, fmt.Errorf("fragment %d: %w", i, err)
	}
	if len(r.frag) >= fragCacheMax {
		clear(r.frag)
	}
	r.frag[i] = b
	return b, nil
}

// OpenFile returns a reader of a regular file's content.
func (r *Reader) OpenFile(ino *Inode) (*io.SectionReader, error) {
	if ino.Type != rootfs.Regular {
		return nil, fmt.Errorf("squashfs: inode %d is not a regular file", ino.Number)
	}
	f := &fileReader{r: r, ino: ino, cur: -1}
	pos := ino.start
	f.offs = make([]uint64, len(ino.blocks))
	for i, w := range ino.blocks {
		f.offs[i] = pos
		pos += uint64(w &^ dataUncompressed)
	}
	if pos > r.size || pos < ino.start {
		return nil, corrupt("inode %d: data past the end of the image", ino.Number)
	}
	if ino.frag != invalidFrag && uint64(ino.Size)%uint64(r.bs) == 0 {
		return nil, corrupt("inode %d: fragment without a tail", ino.Number)
	}
	return io.NewSectionReader(f, 0, ino.Size), nil
}

type fileReader struct {
	mu   sync.Mutex
	r    *Reader
	ino  *Inode
	offs []uint64
	cur  int64 // block index held in buf, or -1
	buf  []byte
}

func (f *fileReader) ReadAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	size := f.ino.Size
	bs := int64(f.r.bs)
	n := 0
	for len(p) > 0 {
		if off >= size {
			return n, io.EOF
		}
		bi := off / bs
		if err := f.load(bi); err != nil {
			return n, err
		}
		k := copy(p, f.buf[off-bi*bs:])
		p, off, n = p[k:], off+int64(k), n+k
	}
	return n, nil
}

func (f *fileReader) load(bi int64) error {
	if bi == f.cur {
		return nil
	}
	r, bs, size := f.r, int64(f.r.bs), f.ino.Size
	want := int(min(bs, size-bi*bs))
	if cap(f.buf) < r.bs {
		f.buf = make([]byte, 0, r.bs)
	}
	r.dmu.Lock()
	defer r.dmu.Unlock()
	f.cur = -1
	switch {
	case bi < int64(len(f.ino.blocks)):
		w := f.ino.blocks[bi]
		if w == 0 { // sparse
			f.buf = f.buf[:want]
			clear(f.buf)
		} else {
			b, err := r.dataBlockLocked(f.buf, f.offs[bi], w, want)
			if err != nil {
				return fmt.Errorf("inode %d: %w", f.ino.Number, err)
			}
			f.buf = b
		}
	case f.ino.frag != invalidFrag:
		fb, err := r.fragmentLocked(f.ino.frag)
		if err != nil {
			return fmt.Errorf("inode %d: %w", f.ino.Number, err)
		}
		o := int64(f.ino.fragOf)
		if o+int64(want) > int64(len(fb)) {
			return corrupt("inode %d: tail past the end of fragment %d", f.ino.Number, f.ino.frag)
		}
		f.buf = append(f.buf[:0], fb[o:o+int64(want)]...)
	default:
		return corrupt("inode %d: block %d missing", f.ino.Number, bi)
	}
	f.cur = bi
	return nil
}

// ToTree reads the whole image into a rootfs tree: hard links become
// shared nodes, xattrs are kept, file contents are read from the image
// when opened (the Reader and its io.ReaderAt must stay usable).
func (r *Reader) ToTree() (*rootfs.Tree, error) {
	t := rootfs.New(0)
	nodes := map[uint32]*rootfs.Node{}
	err := r.Walk(func(p string, ino *Inode) error {
		if ino.Type != rootfs.Dir {
			if n := nodes[ino.Number]; n != nil {
				if n.Type != ino.Type {
					return corrupt("%s: inode number %d reused for another type", p, ino.Number)
				}
				return t.Add(p, n)
			}
		}
		n := &rootfs.Node{Type: ino.Type, Perm: ino.Perm, UID: ino.UID, GID: ino.GID, MTime: ino.MTime}
		switch ino.Type {
		case rootfs.Dir:
			n = rootfs.NewDir(ino.Perm, ino.MTime)
			n.UID, n.GID = ino.UID, ino.GID
		case rootfs.Regular:
			n.Content = &imageFile{r: r, ino: ino}
		case rootfs.Symlink:
			n.Target = ino.Target
		case rootfs.CharDev, rootfs.BlockDev:
			n.Major, n.Minor = ino.Major, ino.Minor
		}
		x, err := r.Xattrs(ino)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		n.Xattrs = x
		if ino.Type != rootfs.Dir {
			nodes[ino.Number] = n
		}
		return t.Add(p, n)
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// imageFile is a rootfs.Source reading a file from the image.
type imageFile struct {
	r   *Reader
	ino *Inode
}

func (f *imageFile) Size() int64 { return f.ino.Size }

func (f *imageFile) Open() (io.ReadCloser, error) {
	sr, err := f.r.OpenFile(f.ino)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(sr), nil
}
