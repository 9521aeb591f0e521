package squashfs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"runtime"
	"slices"
	"strings"

	"github.com/rfsbuild/rfs/rootfs"
)

// Options controls how an image is written.
type Options struct {
	// BlockSize is the data block size: a power of two from 4 KiB to
	// 1 MiB. 0 means 131072, the mksquashfs default.
	BlockSize int
	// Compressor is "gzip" (the default: zlib streams, which every squashfs
	// kernel reads), "xz" or "zstd" (only for kernels built with
	// CONFIG_SQUASHFS_XZ / CONFIG_SQUASHFS_ZSTD; the default gokrazy
	// kernels are not).
	Compressor string
	// Level is the gzip level, 1..9 (0 means DefaultLevel, 9, like
	// mksquashfs), or the zstd level, 1..22 (0 means DefaultZstdLevel, 15).
	// xz has no level. A level other than the default is recorded in the
	// image's compressor options, as mksquashfs does.
	Level int
	// XZDictSize is the xz dictionary size: 0 means the block size (the
	// default of mksquashfs and the kernel); otherwise 2^n or 2^n+2^(n-1),
	// from 4 KiB to the block size, recorded in the compressor options.
	XZDictSize int
	// Smallest (gzip only) also compresses every block with
	// github.com/klauspost/compress and keeps the smaller output: a little
	// smaller images (most on binary data) for about twice the CPU.
	Smallest bool
	// Xattrs says the target kernel reads squashfs xattrs
	// (CONFIG_SQUASHFS_XATTR): nodes' Xattrs are then written (names in
	// the user., trusted. and security. namespaces). When false, a tree
	// with any xattr is refused.
	Xattrs bool
	// MTime is the superblock modification time (seconds since the epoch).
	MTime int64
	// Workers is how many goroutines compress data blocks; 0 means
	// runtime.GOMAXPROCS(0). The output does not depend on it.
	Workers int
}

// MaxWorkers is the most compressing goroutines Write accepts: each holds
// a compressor and block buffers, so the count bounds memory. More than
// there are CPUs gains nothing; at least 64 are allowed.
func MaxWorkers() int { return max(64, 4*runtime.NumCPU()) }

// DefaultBlockSize is the block size used when Options.BlockSize is 0.
const DefaultBlockSize = 131072

// Write writes t as a squashfs image into w starting at offset 0 and returns
// the number of bytes written (padded to a 4 KiB multiple like mksquashfs).
//
// Regular files with identical content are stored once, tails of files are
// packed into fragment blocks, all-zero blocks are stored as holes and hard
// links (several entries pointing to the same *rootfs.Node) share one inode.
// Nodes with extended attributes are written when opts.Xattrs is set and
// refused otherwise (the default target kernels lack squashfs xattrs).
func Write(w io.WriterAt, t *rootfs.Tree, opts Options) (int64, error) {
	return WriteContext(context.Background(), w, t, opts)
}

// WriteContext is Write that stops soon (between blocks) once ctx is done,
// returning an error that wraps ctx.Err(). What was written to w so far is
// garbage: the caller removes it.
func WriteContext(ctx context.Context, w io.WriterAt, t *rootfs.Tree, opts Options) (int64, error) {
	if t == nil || t.Root == nil {
		return 0, errors.New("squashfs: nil tree")
	}
	bs := opts.BlockSize
	if bs == 0 {
		bs = DefaultBlockSize
	}
	if bs < 4096 || bs > 1<<20 || bs&(bs-1) != 0 {
		return 0, fmt.Errorf("squashfs: block size %d is not a power of two from 4096 to 1048576", opts.BlockSize)
	}
	c, cp, compOpts, err := resolveCodec(opts, bs)
	if err != nil {
		return 0, fmt.Errorf("squashfs: %w", err)
	}
	if opts.MTime < 0 || opts.MTime > math.MaxUint32 {
		return 0, fmt.Errorf("squashfs: superblock mtime %d does not fit in 32 bits", opts.MTime)
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if workers > MaxWorkers() {
		return 0, fmt.Errorf("squashfs: %d workers: at most %d", workers, MaxWorkers())
	}

	b := &builder{
		blockSize: bs,
		inodes:    map[*rootfs.Node]*inode{},
		xattrs:    opts.Xattrs,
	}
	if err := b.scanTree(t.Root); err != nil {
		return 0, fmt.Errorf("squashfs: %w", err)
	}
	b.number(b.root)
	b.root.parent = b.count + 1 // as mksquashfs does
	if err := b.buildIDs(); err != nil {
		return 0, fmt.Errorf("squashfs: %w", err)
	}

	mc, err := c.newCompressor(metaParams(c, cp))
	if err != nil {
		return 0, fmt.Errorf("squashfs: %w", err)
	}
	if err := b.buildXattrs(mc); err != nil {
		return 0, fmt.Errorf("squashfs: %w", err)
	}

	// Compressor options (a metadata block stored uncompressed) and data.
	dataStart := int64(superSize)
	if compOpts != nil {
		hdr := binary.LittleEndian.AppendUint16(nil, uint16(len(compOpts))|metaUncompressed)
		if _, err := w.WriteAt(append(hdr, compOpts...), superSize); err != nil {
			return 0, fmt.Errorf("squashfs: write compressor options: %w", err)
		}
		dataStart += int64(len(hdr) + len(compOpts))
	}
	d, err := newDataWriter(ctx, w, dataStart, bs, workers, c, cp)
	if err != nil {
		return 0, fmt.Errorf("squashfs: %w", err)
	}
	// The inode and directory tables are written on their own goroutine
	// while the data is: each file inode waits for its file to be placed.
	b.itab, b.dtab = newMetaWriter(mc), newMetaWriter(mc)
	b.finals = &d.finals
	metaDone := make(chan error, 1)
	go func() { metaDone <- b.writeDir(b.root) }()
	if err := b.writeData(d, workers); err != nil {
		d.abort()
		d.finals.abort()
		<-metaDone
		if errors.Is(err, errAborted) && d.err != nil {
			err = d.err
		}
		return 0, fmt.Errorf("squashfs: write data: %w", err)
	}
	off, err := d.close()
	if err != nil {
		d.finals.abort()
		<-metaDone
		return 0, fmt.Errorf("squashfs: write data: %w", err)
	}
	if err := <-metaDone; err != nil {
		return 0, fmt.Errorf("squashfs: %w", err)
	}

	sb := superblock{
		inodes:      b.count,
		mtime:       uint32(opts.MTime),
		blockSize:   uint32(bs),
		fragments:   uint32(len(d.frags)),
		compression: c.id,
		blockLog:    uint16(bits.TrailingZeros(uint(bs))),
		flags:       flagAlwaysFragments | flagDuplicates | flagExportable,
		ids:         uint16(len(b.ids)),
		rootInode:   b.root.ref,
		xattrTable:  invalidTable,
	}
	if b.xtab == nil {
		sb.flags |= flagNoXattrs
	}
	if compOpts != nil {
		sb.flags |= flagCompOpts
	}
	tw := &tableWriter{w: w, off: uint64(off)}
	itab, err := b.itab.finish()
	if err != nil {
		return 0, fmt.Errorf("squashfs: inode table: %w", err)
	}
	sb.inodeTable = tw.off
	if err := tw.write(itab); err != nil {
		return 0, fmt.Errorf("squashfs: write inode table: %w", err)
	}
	dtab, err := b.dtab.finish()
	if err != nil {
		return 0, fmt.Errorf("squashfs: directory table: %w", err)
	}
	sb.dirTable = tw.off
	if err := tw.write(dtab); err != nil {
		return 0, fmt.Errorf("squashfs: write directory table: %w", err)
	}
	if sb.fragTable, err = tw.indexed(mc, d.fragTable()); err != nil {
		return 0, fmt.Errorf("squashfs: write fragment table: %w", err)
	}
	export := make([]byte, 8*b.count)
	for _, ino := range b.order {
		binary.LittleEndian.PutUint64(export[8*(ino.num-1):], ino.ref)
	}
	if sb.exportTable, err = tw.indexed(mc, export); err != nil {
		return 0, fmt.Errorf("squashfs: write export table: %w", err)
	}
	idb := make([]byte, 0, 4*len(b.ids))
	for _, id := range b.ids {
		idb = binary.LittleEndian.AppendUint32(idb, id)
	}
	if sb.idTable, err = tw.indexed(mc, idb); err != nil {
		return 0, fmt.Errorf("squashfs: write id table: %w", err)
	}
	if b.xtab != nil {
		if sb.xattrTable, err = b.writeXattrTables(tw, mc); err != nil {
			return 0, fmt.Errorf("squashfs: write xattr table: %w", err)
		}
	}
	sb.bytesUsed = tw.off
	if r := tw.off % pad; r != 0 {
		if err := tw.write(make([]byte, pad-r)); err != nil {
			return 0, fmt.Errorf("squashfs: write padding: %w", err)
		}
	}
	if _, err := w.WriteAt(sb.marshal(), 0); err != nil {
		return 0, fmt.Errorf("squashfs: write superblock: %w", err)
	}
	return int64(tw.off), nil
}

// metaParams are the compressor settings for metadata blocks. With gzip
// at level 9, metadata blocks are compressed at level 8: the inode and
// directory tables are so repetitive that level 9's long match chains cost
// about 12% of all the CPU time on a tree of 100k small files (level 8:
// 2%), for 0.01% of the image (measured: 4 KiB of 55 MB; nothing on the
// python and busybox trees). Smallest keeps level 9.
func metaParams(c codec, cp compParams) compParams {
	if c.id == compGzip && cp.level == 9 && !cp.smallest {
		cp.level = 8
	}
	return cp
}

// tableWriter appends tables after the data area.
type tableWriter struct {
	w   io.WriterAt
	off uint64
}

func (t *tableWriter) write(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if _, err := t.w.WriteAt(p, int64(t.off)); err != nil {
		return err
	}
	t.off += uint64(len(p))
	return nil
}

// indexed writes content as metadata blocks followed by the index of their
// absolute positions, and returns the position of the index (which is what
// the superblock points to).
func (t *tableWriter) indexed(c blockCompressor, content []byte) (uint64, error) {
	m := newMetaWriter(c)
	m.write(content)
	blocks, err := m.finish()
	if err != nil {
		return 0, err
	}
	start := t.off
	if err := t.write(blocks); err != nil {
		return 0, err
	}
	idx := make([]byte, 0, 8*len(m.starts))
	for _, s := range m.starts {
		idx = binary.LittleEndian.AppendUint64(idx, start+s)
	}
	pos := t.off
	return pos, t.write(idx)
}

type dirEntry struct {
	name string
	ino  *inode
}

// inode is one inode of the image, shared by all the entries (hard links)
// that point to the same node.
type inode struct {
	node    *rootfs.Node
	path    string // first path it was found at, for messages
	num     uint32
	nlink   uint32
	ref     uint64
	written bool
	uidIdx  uint16
	gidIdx  uint16

	xattr uint32 // xattr id, or invalidXattr

	entries []dirEntry // Dir
	parent  uint32     // Dir: parent's inode number
	file    *fileData  // Regular
}

type builder struct {
	blockSize int
	root      *inode
	inodes    map[*rootfs.Node]*inode
	files     []*inode // regular files in tree walk order
	order     []*inode // inodes in number order
	count     uint32
	ids       []uint32
	itab      *metaWriter
	dtab      *metaWriter

	finals *finals // when file records are final

	xattrs   bool        // write xattrs (else refuse them)
	xtab     *metaWriter // xattr key/value stream, nil if no xattrs
	xattrIDs []byte      // xattr id table entries
}

func (b *builder) scanTree(root *rootfs.Node) error {
	if root.Type != rootfs.Dir {
		return fmt.Errorf("/: root is a %s, not a directory", root.Type)
	}
	b.root = &inode{node: root, path: "/", nlink: 2, xattr: invalidXattr}
	b.inodes[root] = b.root
	if err := b.checkNode("/", root); err != nil {
		return err
	}
	return b.scan(b.root, "")
}

func (b *builder) scan(dir *inode, prefix string) error {
	for _, e := range dir.node.Children() {
		p := prefix + "/" + e.Name
		if err := checkName(e.Name); err != nil {
			return fmt.Errorf("%q: %w", p, err)
		}
		if e.Node == nil {
			return fmt.Errorf("%s: nil node", p)
		}
		ino := b.inodes[e.Node]
		if ino == nil {
			if err := b.checkNode(p, e.Node); err != nil {
				return err
			}
			ino = &inode{node: e.Node, path: p, xattr: invalidXattr}
			b.inodes[e.Node] = ino
			switch e.Node.Type {
			case rootfs.Regular:
				ino.file = &fileData{size: e.Node.Size(), frag: invalidFrag}
				b.files = append(b.files, ino)
			case rootfs.Dir:
				ino.nlink = 1 // +1 below for its entry in dir
			}
		} else if e.Node.Type == rootfs.Dir {
			return fmt.Errorf("%s: directory is also at %s (directories cannot be hard links)", p, ino.path)
		}
		ino.nlink++
		if ino.nlink == 0 {
			return fmt.Errorf("%s: too many hard links", p)
		}
		dir.entries = append(dir.entries, dirEntry{e.Name, ino})
		if e.Node.Type == rootfs.Dir {
			dir.nlink++ // the child's ".."
			if err := b.scan(ino, p); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return errors.New("invalid file name")
	case len(name) > maxNameLen:
		return fmt.Errorf("name is %d bytes, squashfs allows %d", len(name), maxNameLen)
	case strings.ContainsAny(name, "/\x00"):
		return errors.New("name contains '/' or NUL")
	}
	return nil
}

func (b *builder) checkNode(p string, n *rootfs.Node) error {
	if len(n.Xattrs) > 0 {
		if !b.xattrs {
			return fmt.Errorf("%s: has xattrs, and the target kernel does not support squashfs xattrs (Options.Xattrs is false)", p)
		}
		if err := checkXattrs(n.Xattrs); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	if n.Perm&^0o7777 != 0 {
		return fmt.Errorf("%s: permission bits %#o outside 07777", p, n.Perm)
	}
	if n.MTime < 0 || n.MTime > math.MaxUint32 {
		return fmt.Errorf("%s: mtime %d does not fit in squashfs's unsigned 32 bits", p, n.MTime)
	}
	switch n.Type {
	case rootfs.Regular:
		if n.Size() < 0 {
			return fmt.Errorf("%s: negative size %d", p, n.Size())
		}
	case rootfs.Dir, rootfs.FIFO, rootfs.Socket:
	case rootfs.Symlink:
		switch {
		case n.Target == "":
			return fmt.Errorf("%s: symlink with an empty target", p)
		case len(n.Target) > maxSymlinkLen:
			return fmt.Errorf("%s: symlink target is %d bytes, at most %d allowed", p, len(n.Target), maxSymlinkLen)
		case strings.IndexByte(n.Target, 0) >= 0:
			return fmt.Errorf("%s: symlink target contains NUL", p)
		}
	case rootfs.CharDev, rootfs.BlockDev:
		if n.Major > 0xfff || n.Minor > 0xfffff {
			return fmt.Errorf("%s: device %d:%d does not fit (major <= 4095, minor <= 1048575)", p, n.Major, n.Minor)
		}
	default:
		return fmt.Errorf("%s: unknown node type %s", p, n.Type)
	}
	return nil
}

// number gives inode numbers in the order writeDir writes the inodes: a
// directory's subtree and other entries in name order, then the directory.
func (b *builder) number(d *inode) {
	for _, e := range d.entries {
		switch {
		case e.ino.node.Type == rootfs.Dir:
			b.number(e.ino)
		case e.ino.num == 0:
			b.count++
			e.ino.num = b.count
			b.order = append(b.order, e.ino)
		}
	}
	b.count++
	d.num = b.count
	b.order = append(b.order, d)
	for _, e := range d.entries {
		if e.ino.node.Type == rootfs.Dir {
			e.ino.parent = d.num
		}
	}
}

func (b *builder) buildIDs() error {
	set := map[uint32]bool{}
	for _, ino := range b.order {
		set[ino.node.UID] = true
		set[ino.node.GID] = true
	}
	if len(set) > maxIDs {
		return fmt.Errorf("%d distinct uids/gids, squashfs allows %d", len(set), maxIDs)
	}
	for id := range set {
		b.ids = append(b.ids, id)
	}
	slices.Sort(b.ids)
	for _, ino := range b.order {
		u, _ := slices.BinarySearch(b.ids, ino.node.UID)
		g, _ := slices.BinarySearch(b.ids, ino.node.GID)
		ino.uidIdx, ino.gidIdx = uint16(u), uint16(g)
	}
	return nil
}

type hashKey struct {
	size int64
	sum  [sha256.Size]byte
}

// writeData streams every distinct file content into the data area. Files
// are opened, read and hashed ahead on several goroutines (see prefetcher)
// and placed here one by one in tree order.
func (b *builder) writeData(d *dataWriter, readers int) error {
	sizes := map[int64]int{}
	var files []*inode
	for _, ino := range b.files {
		if ino.file.size > 0 {
			sizes[ino.file.size]++
			files = append(files, ino)
		}
	}
	// Only a file whose size another file has can be a duplicate.
	hash := func(f *fileData) bool { return sizes[f.size] > 1 }
	p := newPrefetcher(d, files, hash, readers)
	defer p.close()
	seen := map[hashKey]*fileData{}
	for i, ino := range files {
		if err := d.ctx.Err(); err != nil {
			return err
		}
		r := p.next(i)
		if err := b.placeFile(d, p, ino, r, seen); err != nil {
			p.release(r)
			if errors.Is(err, errAborted) || d.ctx.Err() != nil {
				return err
			}
			return fmt.Errorf("%s: %w", ino.path, err)
		}
	}
	return nil
}

// placeFile writes one file read ahead as r, unless it duplicates a file
// in seen.
func (b *builder) placeFile(d *dataWriter, p *prefetcher, ino *inode, r *fileRead, seen map[hashKey]*fileData) error {
	if r.err != nil {
		return r.err
	}
	f := ino.file
	if r.hashed {
		key := hashKey{size: f.size, sum: r.sum}
		if orig := seen[key]; orig != nil {
			f.dup = orig
			p.release(r)
			d.finals.mark(f)
			return nil
		}
		seen[key] = f
	}
	if r.stream {
		return b.streamFile(d, ino, r)
	}
	if err := d.begin(f); err != nil {
		return err
	}
	for i, blk := range r.blocks {
		r.blocks[i] = nil
		if err := d.addBlock(f, i, blk); err != nil {
			return err
		}
	}
	r.blocks = nil
	if r.tail != nil {
		if err := d.addTail(f, r.tail); err != nil {
			return err
		}
	}
	p.done(r)
	return d.end(f)
}

// streamFile writes a file too large to have been read ahead. If it was
// hashed ahead, it is hashed again as it is read: a later duplicate must
// not get content that changed in between.
func (b *builder) streamFile(d *dataWriter, ino *inode, r *fileRead) error {
	src, err := openSource(ino)
	if err != nil {
		return err
	}
	defer src.Close()
	var in io.Reader = src
	h := sha256.New()
	if r.hashed {
		in = io.TeeReader(src, h)
	}
	if err := d.addFile(ino.file, in); err != nil {
		return err
	}
	if r.hashed && !bytes.Equal(h.Sum(nil), r.sum[:]) {
		return errors.New("content changed while the image was written")
	}
	return d.end(ino.file)
}

// writeDir writes the inodes of d's subtree, its directory listing and then
// its own inode, in the order number assigned.
func (b *builder) writeDir(d *inode) error {
	for _, e := range d.entries {
		switch {
		case e.ino.node.Type == rootfs.Dir:
			if err := b.writeDir(e.ino); err != nil {
				return err
			}
		case !e.ino.written:
			if err := b.writeInode(e.ino); err != nil {
				return err
			}
		}
	}
	startBlock, startOff := b.dtab.pos()
	size, index, err := b.writeListing(d.entries)
	if err != nil {
		return fmt.Errorf("%s: directory listing: %w", d.path, err)
	}
	if startBlock > math.MaxUint32 {
		return errors.New("directory table larger than 4 GiB")
	}
	hdr := b.header(d, typeDir)
	le := binary.LittleEndian
	if size+3 <= math.MaxUint16 && len(index) == 0 && d.xattr == invalidXattr {
		p := le.AppendUint32(hdr, uint32(startBlock))
		p = le.AppendUint32(p, d.nlink)
		p = le.AppendUint16(p, uint16(size+3))
		p = le.AppendUint16(p, uint16(startOff))
		p = le.AppendUint32(p, d.parent)
		return b.emit(d, p)
	}
	if size+3 > math.MaxUint32 || len(index) > math.MaxUint16 {
		return fmt.Errorf("%s: directory too large", d.path)
	}
	le.PutUint16(hdr, typeExtDir)
	p := le.AppendUint32(hdr, d.nlink)
	p = le.AppendUint32(p, uint32(size+3))
	p = le.AppendUint32(p, uint32(startBlock))
	p = le.AppendUint32(p, d.parent)
	p = le.AppendUint16(p, uint16(len(index)))
	p = le.AppendUint16(p, uint16(startOff))
	p = le.AppendUint32(p, d.xattr)
	for _, ix := range index {
		p = le.AppendUint32(p, ix.index)
		p = le.AppendUint32(p, ix.start)
		p = le.AppendUint32(p, uint32(len(ix.name)-1))
		p = append(p, ix.name...)
	}
	return b.emit(d, p)
}

type dirIndex struct {
	index uint32 // offset of a header in the listing
	start uint32 // directory table block holding that header
	name  string // first name under that header
}

// writeListing writes the entries of one directory into the directory
// table: runs of at most 256 entries, each behind a header giving the
// inode table block of its entries and a base inode number. A new run starts
// when the block or the number range changes, or when the run would spill
// into the next metadata block; runs that begin in a new metadata block get
// an index entry, which lets the kernel skip to them when looking up a name.
func (b *builder) writeListing(entries []dirEntry) (size int64, index []dirIndex, err error) {
	le := binary.LittleEndian
	start := b.dtab.total
	lastBlock := start / metaBlockSize
	for i := 0; i < len(entries); {
		hdrPos := b.dtab.total
		first := entries[i].ino
		blk := first.ref >> 16
		if blk > math.MaxUint32 {
			return 0, nil, errors.New("inode table larger than 4 GiB")
		}
		base := int64(first.num)
		p := hdrPos + 12
		j := i
		for ; j < len(entries) && j-i < maxDirCount; j++ {
			e := entries[j].ino
			delta := int64(e.num) - base
			if e.ref>>16 != blk || delta < math.MinInt16 || delta > math.MaxInt16 {
				break
			}
			sz := int64(8 + len(entries[j].name))
			if j > i && (p+sz-1)/metaBlockSize != hdrPos/metaBlockSize {
				break
			}
			p += sz
		}
		if hdrPos/metaBlockSize != lastBlock {
			cur, _ := b.dtab.pos()
			if cur > math.MaxUint32 {
				return 0, nil, errors.New("directory table larger than 4 GiB")
			}
			index = append(index, dirIndex{index: uint32(hdrPos - start), start: uint32(cur), name: entries[i].name})
			lastBlock = hdrPos / metaBlockSize
		}
		buf := make([]byte, 0, p-hdrPos)
		buf = le.AppendUint32(buf, uint32(j-i-1))
		buf = le.AppendUint32(buf, uint32(blk))
		buf = le.AppendUint32(buf, uint32(base))
		for _, e := range entries[i:j] {
			buf = le.AppendUint16(buf, uint16(e.ino.ref&0xffff))
			buf = le.AppendUint16(buf, uint16(int16(int64(e.ino.num)-base)))
			buf = le.AppendUint16(buf, basicType(e.ino.node.Type))
			buf = le.AppendUint16(buf, uint16(len(e.name)-1))
			buf = append(buf, e.name...)
		}
		b.dtab.write(buf)
		i = j
	}
	return b.dtab.total - start, index, nil
}

func basicType(t rootfs.Type) uint16 {
	switch t {
	case rootfs.Dir:
		return typeDir
	case rootfs.Regular:
		return typeFile
	case rootfs.Symlink:
		return typeSymlink
	case rootfs.BlockDev:
		return typeBlkDev
	case rootfs.CharDev:
		return typeChrDev
	case rootfs.FIFO:
		return typeFifo
	}
	return typeSocket
}

// header returns the common inode header.
func (b *builder) header(ino *inode, typ uint16) []byte {
	le := binary.LittleEndian
	p := make([]byte, 0, 64)
	p = le.AppendUint16(p, typ)
	p = le.AppendUint16(p, uint16(ino.node.Perm))
	p = le.AppendUint16(p, ino.uidIdx)
	p = le.AppendUint16(p, ino.gidIdx)
	p = le.AppendUint32(p, uint32(ino.node.MTime))
	p = le.AppendUint32(p, ino.num)
	return p
}

func (b *builder) emit(ino *inode, p []byte) error {
	ino.ref = b.itab.ref()
	ino.written = true
	b.itab.write(p)
	return b.itab.err
}

func (b *builder) writeInode(ino *inode) error {
	n := ino.node
	le := binary.LittleEndian
	typ := basicType(n.Type)
	p := b.header(ino, typ)
	switch n.Type {
	case rootfs.Regular:
		f := ino.file
		if f.size > 0 {
			if err := b.finals.wait(f); err != nil {
				return err
			}
		}
		if f.dup != nil {
			f = f.dup
			if err := b.finals.wait(f); err != nil {
				return err
			}
		}
		if f.size > math.MaxUint32 || f.start > math.MaxUint32 || ino.nlink > 1 || f.sparse > 0 || ino.xattr != invalidXattr {
			le.PutUint16(p, typeExtFile)
			p = le.AppendUint64(p, f.start)
			p = le.AppendUint64(p, uint64(f.size))
			p = le.AppendUint64(p, f.sparse)
			p = le.AppendUint32(p, ino.nlink)
			p = le.AppendUint32(p, f.frag)
			p = le.AppendUint32(p, f.fragOff)
			p = le.AppendUint32(p, ino.xattr)
		} else {
			p = le.AppendUint32(p, uint32(f.start))
			p = le.AppendUint32(p, f.frag)
			p = le.AppendUint32(p, f.fragOff)
			p = le.AppendUint32(p, uint32(f.size))
		}
		for _, s := range f.sizes {
			p = le.AppendUint32(p, s)
		}
	case rootfs.Symlink:
		p = le.AppendUint32(p, ino.nlink)
		p = le.AppendUint32(p, uint32(len(n.Target)))
		p = append(p, n.Target...)
	case rootfs.CharDev, rootfs.BlockDev:
		p = le.AppendUint32(p, ino.nlink)
		p = le.AppendUint32(p, n.Minor&0xff|n.Major<<8|(n.Minor&^0xff)<<12)
	case rootfs.FIFO, rootfs.Socket:
		p = le.AppendUint32(p, ino.nlink)
	default:
		return fmt.Errorf("%s: unexpected node type %s", ino.path, n.Type)
	}
	if ino.xattr != invalidXattr && n.Type != rootfs.Regular {
		// The extended symlink, device and IPC inodes end with the xattr
		// index (for a symlink, after the target).
		le.PutUint16(p, typ+7)
		p = le.AppendUint32(p, ino.xattr)
	}
	return b.emit(ino, p)
}
