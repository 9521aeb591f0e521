// Package fat writes FAT32 file systems (Raspberry Pi boot partitions, EFI
// system partitions) from an rfs tree in one sequential pass, and reads
// files back from untrusted ones with bounds on everything (FS, read.go).
//
// Layout. It follows what mkfs.fat 4.2 makes with "-F 32" for the same size
// (TestGeometryMatchesMkfs compares), since both the Raspberry Pi firmware and
// UEFI read that: 512-byte sectors, 32 reserved sectors (rounded up to a
// cluster), FSInfo in sector 1, backup boot sector and FSInfo in 6 and 7, two
// FATs each aligned to a cluster, media 0xF8, the root directory in cluster 2,
// and mkfs.fat's cluster size for the volume size (512 bytes up to 260 MiB,
// then 4, 8, 16 and 32 KiB). A volume must have at least 65525 clusters, so
// the smallest one is 33 MiB. The hidden-sectors field is 0, as mkfs.fat
// writes it for an image file; firmware finds the partition through the
// partition table. After the FATs come all directories (root first, then the
// others depth-first in name order), then the data of every file in the same
// order, each file contiguous. The FAT is computed in memory; everything is
// written front to back through a 4 MiB buffer, file content streamed into it
// with io.Copy (many small files share one WriteAt, a big file takes several),
// so no file is held in memory.
//
// Names. Every name that is not already an upper-case 8.3 name gets VFAT
// long-name entries (case is preserved) and a unique short name made the
// fatgen103 way (BCM271~1.DTB); names that are their own 8.3 name get no long
// entries and keep that short name even where a generated one would collide.
// Names FAT cannot hold are errors: \ / : * ? " < > |, control characters,
// a trailing dot or space (drivers strip them), more than 255 UTF-16 units,
// invalid UTF-8, and two names in one directory that differ only in case.
// Only directories and regular files can be stored; a node stored under
// several names (a hard link) is written once per name.
//
// Determinism. Every entry gets Options.MTime as its creation, access and
// modification time (UTC, clamped to FAT's 1980..2107; 0 gives 1980-01-01),
// and nothing depends on the clock or on map order, so the same tree and
// options always give the same bytes. Permissions and owners are not stored.
//
// What Write writes: the whole reserved region, both FATs in full, every
// directory cluster in full and every file cluster in full (the slack after a
// file's end is zeroed). It does not write free clusters: they keep whatever
// the region held, which is zeros for a fresh (sparse) image file and does
// not matter for the file system's validity either way (TestOverGarbage).
// Write also writes a zero byte at size-1 when nothing else reaches that far,
// so an image file ends up exactly size bytes long without a Truncate. To
// write a partition inside a disk image, pass io.NewOffsetWriter(disk, start).
package fat

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
	"unicode/utf16"

	"github.com/rfsbuild/rfs/rootfs"
)

// Options control the file system's metadata.
type Options struct {
	Label    string // volume label, up to 11 chars, upper-cased; default "BOOT"
	VolumeID uint32 // serial; callers derive it from the image content for determinism
	MTime    int64  // timestamp for every entry (FAT local time; treat as UTC)
}

const (
	sectorSize      = 512
	reservedSectors = 32    // what mkfs.fat uses for FAT32
	numFATs         = 2     // both the spec and every formatter
	minClusters     = 65525 // fewer and a driver must treat the volume as FAT16
	maxFileSize     = 1<<32 - 1
	maxDirSlots     = 65536 // a directory may hold at most 65536 32-byte entries
	mib             = 1 << 20
	eoc             = 0x0FFFFFFF // end of chain, as Linux writes it
	mediaFixed      = 0xF8
	maxSectors      = 1<<32 - 1
	attrVolumeID    = 0x08
	attrDir         = 0x10
	attrArchive     = 0x20
	attrLFN         = 0x0F
	lfnLast         = 0x40
	slotSize        = 32
	fsInfoSector    = 1
	backupBootSect  = 6
	writeBufferSize = 4 << 20
)

// clusterSectors is mkfs.fat's FAT32 cluster size (in 512-byte sectors) for a
// volume of the given number of sectors, itself Microsoft's table from
// fatgen103.
func clusterSectors(sectors int64) int64 {
	szMB := (sectors/2 + 1023) >> 10
	switch {
	case szMB > 32*1024:
		return 64
	case szMB > 16*1024:
		return 32
	case szMB > 8*1024:
		return 16
	case szMB > 260:
		return 8
	}
	return 1
}

// geometry is the layout of a volume of a given size.
type geometry struct {
	sectors    int64 // total sectors
	spc        int64 // sectors per cluster
	reserved   int64 // reserved sectors (boot region)
	fatSectors int64 // sectors per FAT
	clusters   int64 // data clusters
}

func (g geometry) clusterBytes() int64 { return g.spc * sectorSize }
func (g geometry) fatStart() int64     { return g.reserved * sectorSize }
func (g geometry) dataStart() int64    { return (g.reserved + numFATs*g.fatSectors) * sectorSize }

// layout computes the geometry of a size-byte volume. It returns an error only
// when size is out of FAT32's range.
func layout(size int64) (geometry, error) {
	g := geometry{sectors: size / sectorSize}
	if g.sectors > maxSectors {
		return g, fmt.Errorf("%d bytes is more than FAT32 can address with 512-byte sectors (2 TiB)", size)
	}
	g.spc = clusterSectors(g.sectors)
	g.reserved = alignUp(reservedSectors, g.spc)
	avail := g.sectors - g.reserved
	if avail <= 0 {
		return g, errTooSmall
	}
	// The smallest FAT that has an entry for every cluster that fits beside
	// the two FATs; start below it and count up.
	f := (avail + 2*g.spc) / (128*g.spc + numFATs)
	for {
		clusters := (avail - numFATs*f) / g.spc
		if clusters+2 <= f*(sectorSize/4) {
			break
		}
		f++
	}
	g.fatSectors = alignUp(f, g.spc) // mkfs.fat aligns the data area to clusters
	g.clusters = (avail - numFATs*g.fatSectors) / g.spc
	if g.clusters < minClusters {
		return g, errTooSmall
	}
	return g, nil
}

var errTooSmall = errors.New("too small for FAT32")

// minFAT32Size is the smallest MiB-aligned size that is a valid FAT32 volume.
var minFAT32Size = sync.OnceValue(func() int64 {
	for s := int64(mib); ; s += mib {
		if _, err := layout(s); err == nil {
			return s
		}
	}
})

func alignUp(n, a int64) int64 { return (n + a - 1) / a * a }

// demand is what a tree needs from a volume, independent of cluster size.
type demand struct {
	dirSlots  []int64 // 32-byte entries in each directory
	fileSizes []int64 // sizes of all regular files
}

// clustersFor is the number of clusters the tree takes with cb-byte clusters.
func (d demand) clustersFor(cb int64) int64 {
	var n int64
	for _, s := range d.dirSlots {
		n += max(1, (s*slotSize+cb-1)/cb)
	}
	for _, s := range d.fileSizes {
		n += (s + cb - 1) / cb
	}
	return n
}

// demandOf measures a tree leniently (for MinSize, which cannot fail): entries
// Write would reject count like regular entries of their size.
func demandOf(t *rootfs.Tree) demand {
	var d demand
	if t == nil || t.Root == nil {
		return demand{dirSlots: []int64{1}}
	}
	var visit func(n *rootfs.Node, root bool)
	visit = func(n *rootfs.Node, root bool) {
		slots := int64(2) // "." and ".."
		if root {
			slots = 1 // the volume label
		}
		i := len(d.dirSlots)
		d.dirSlots = append(d.dirSlots, 0)
		for _, e := range n.Children() {
			slots += int64(slotsFor(e.Name))
			switch e.Node.Type {
			case rootfs.Dir:
				visit(e.Node, false)
			default:
				d.fileSizes = append(d.fileSizes, max(0, e.Node.Size()))
			}
		}
		d.dirSlots[i] = slots
	}
	visit(t.Root, true)
	return d
}

// MinSize returns the smallest partition size (bytes, MiB-aligned) that holds
// t as FAT32 with the cluster size Write would pick for that size. It is at
// least the FAT32 minimum (about 33 MiB with 512-byte clusters).
func MinSize(t *rootfs.Tree) int64 {
	d := demandOf(t)
	s := minFAT32Size()
	for {
		g, err := layout(s)
		if err != nil { // beyond FAT32's range: nothing fits
			return s
		}
		need := d.clustersFor(g.clusterBytes())
		if need <= g.clusters {
			return s
		}
		// Each extra byte of volume adds at most one byte of data area, so
		// skip the whole deficit at once; but stop at the next cluster-size
		// step, where the FAT shrinks and the data area jumps.
		step := max(mib, (need-g.clusters)*g.clusterBytes()/mib*mib)
		next := s + step
		for c := s + mib; c < next; c += mib {
			if clusterSectors(c/sectorSize) != g.spc {
				next = c
				break
			}
		}
		s = next
	}
}

// dirPlan is one directory of the volume.
type dirPlan struct {
	path    string
	node    *rootfs.Node
	parent  *dirPlan // nil for the root
	entries []*entryPlan
	slots   int64
	first   int64 // first cluster
	count   int64 // clusters
}

// entryPlan is one named entry of a directory.
type entryPlan struct {
	name  string
	path  string
	node  *rootfs.Node
	short [11]byte
	lfn   bool
	dir   *dirPlan // for directories
	size  int64    // for files
	first int64    // first cluster, 0 if none
}

type plan struct {
	dirs  []*dirPlan // root first, then depth-first in name order
	files []*entryPlan
}

func (p *plan) demand() demand {
	var d demand
	for _, dp := range p.dirs {
		d.dirSlots = append(d.dirSlots, dp.slots)
	}
	for _, f := range p.files {
		d.fileSizes = append(d.fileSizes, f.size)
	}
	return d
}

// makePlan validates t and names every entry.
func makePlan(t *rootfs.Tree) (*plan, error) {
	if t == nil || t.Root == nil {
		return nil, errors.New("nil tree")
	}
	if t.Root.Type != rootfs.Dir {
		return nil, fmt.Errorf("/: root is a %s, not a directory", t.Root.Type)
	}
	p := &plan{}
	if err := p.visit(&dirPlan{path: "", node: t.Root}); err != nil {
		return nil, err
	}
	// Files in directory order (the order the directories are listed in),
	// then name order within each.
	p.files = p.files[:0]
	for _, dp := range p.dirs {
		for _, ep := range dp.entries {
			if ep.dir == nil {
				p.files = append(p.files, ep)
			}
		}
	}
	return p, nil
}

// visit plans the directory dp, then its subdirectories depth first.
func (p *plan) visit(dp *dirPlan) error {
	p.dirs = append(p.dirs, dp)
	subdirs, err := p.planEntries(dp)
	if err != nil {
		return err
	}
	if err := nameShort(dp); err != nil {
		return err
	}
	dp.slots = 2 // "." and ".."
	if dp.parent == nil {
		dp.slots = 1 // volume label
	}
	for _, ep := range dp.entries {
		dp.slots += int64(slotsFor(ep.name))
	}
	if dp.slots > maxDirSlots {
		return fmt.Errorf("%s: directory needs %d entries, FAT allows at most %d", dirName(dp.path), dp.slots, maxDirSlots)
	}
	for _, sd := range subdirs {
		if err := p.visit(sd); err != nil {
			return err
		}
	}
	return nil
}

// planEntries checks the names and types of dp's children and lists them
// in dp.entries; it returns the subdirectories.
func (p *plan) planEntries(dp *dirPlan) ([]*dirPlan, error) {
	children := dp.node.Children()
	folded := make(map[string]string, len(children))
	var subdirs []*dirPlan
	for _, e := range children {
		ep := &entryPlan{name: e.Name, node: e.Node, path: joinPath(dp.path, e.Name)}
		if err := checkName(e.Name); err != nil {
			return nil, fmt.Errorf("%s: %w", ep.path, err)
		}
		if other, ok := folded[foldKey(e.Name)]; ok {
			return nil, fmt.Errorf("%s: FAT names are case-insensitive and %q is already in %s", ep.path, other, dirName(dp.path))
		}
		folded[foldKey(e.Name)] = e.Name
		switch e.Node.Type {
		case rootfs.Dir:
			ep.dir = &dirPlan{path: ep.path, node: e.Node, parent: dp}
			subdirs = append(subdirs, ep.dir)
		case rootfs.Regular:
			ep.size = e.Node.Size()
			if ep.size < 0 || ep.size > maxFileSize {
				return nil, fmt.Errorf("%s: size %d is out of FAT32's range (at most 4 GiB - 1)", ep.path, ep.size)
			}
			p.files = append(p.files, ep)
		default:
			return nil, fmt.Errorf("%s: a %s cannot be stored on FAT (only directories and regular files)", ep.path, e.Node.Type)
		}
		ep.lfn = needsLFN(e.Name)
		dp.entries = append(dp.entries, ep)
	}
	return subdirs, nil
}

// nameShort gives every entry of dp its short name: names that are their
// own short name (up to case) keep it; the others get a numeric tail, in
// name order.
func nameShort(dp *dirPlan) error {
	namer := newShortNamer()
	for _, ep := range dp.entries {
		if sn, ok := asShort(ep.name); ok {
			if !namer.reserve(sn) {
				return fmt.Errorf("%s: short name collides with another entry", ep.path)
			}
			ep.short = sn
		}
	}
	for _, ep := range dp.entries {
		if _, ok := asShort(ep.name); ok {
			continue
		}
		sn, err := namer.generate(ep.name)
		if err != nil {
			return fmt.Errorf("%s: %w", ep.path, err)
		}
		ep.short = sn
	}
	return nil
}

func joinPath(dir, name string) string { return dir + "/" + name }

func dirName(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

// Write formats the region [0,size) of w as FAT32 and stores t in it.
// See the package documentation for what it writes and what it leaves.
func Write(w io.WriterAt, size int64, t *rootfs.Tree, opts Options) error {
	return WriteContext(context.Background(), w, size, t, opts)
}

// WriteContext is Write that stops before the next file once ctx is done,
// returning an error that wraps ctx.Err().
func WriteContext(ctx context.Context, w io.WriterAt, size int64, t *rootfs.Tree, opts Options) error {
	label, g, p, err := prepare(size, t, opts)
	if err != nil {
		return err
	}
	cb := g.clusterBytes()
	next := p.allocate(cb)
	used := next - 2
	sw := &seqWriter{w: w, buf: make([]byte, 0, writeBufferSize)}
	sw.Write(reservedRegion(g, label, opts.VolumeID, used, next))
	// Both FATs.
	fat := p.fatTable(next, cb)
	for range numFATs {
		sw.Write(fat)
		sw.zeros(g.fatSectors*sectorSize - int64(len(fat)))
	}
	// Directories.
	stamp := dosTime(opts.MTime)
	for _, dp := range p.dirs {
		sw.Write(dp.encode(cb, stamp, label))
	}
	if err := p.writeFiles(ctx, sw, cb); err != nil {
		return err
	}
	if sw.err == nil && sw.off+int64(len(sw.buf)) < size {
		sw.flush()
		sw.off = size - 1
		sw.Write([]byte{0})
	}
	sw.flush()
	if sw.err != nil {
		return fmt.Errorf("fat: %w", sw.err)
	}
	return nil
}

// prepare checks the options, lays out a file system of size bytes and
// plans t in it, checking that it fits.
func prepare(size int64, t *rootfs.Tree, opts Options) ([11]byte, geometry, *plan, error) {
	label, err := checkLabel(opts.Label)
	if err != nil {
		return label, geometry{}, nil, fmt.Errorf("fat: %w", err)
	}
	if size < 0 {
		return label, geometry{}, nil, fmt.Errorf("fat: negative size %d", size)
	}
	g, err := layout(size)
	if errors.Is(err, errTooSmall) {
		return label, g, nil, fmt.Errorf("fat: a %d-byte partition is too small for FAT32 (at least %d clusters): the minimum is %d bytes (%d MiB)",
			size, minClusters, minFAT32Size(), minFAT32Size()/mib)
	}
	if err != nil {
		return label, g, nil, fmt.Errorf("fat: %w", err)
	}
	p, err := makePlan(t)
	if err != nil {
		return label, g, nil, fmt.Errorf("fat: %w", err)
	}
	cb := g.clusterBytes()
	if need := p.demand().clustersFor(cb); need > g.clusters {
		return label, g, nil, fmt.Errorf("fat: the tree needs %d clusters of %d bytes but a %d-byte partition has %d; MinSize says %d bytes",
			need, cb, size, g.clusters, MinSize(t))
	}
	return label, g, p, nil
}

// allocate places directories first, then files, each contiguous, from
// cluster 2; it returns the first cluster left free.
func (p *plan) allocate(cb int64) int64 {
	next := int64(2)
	for _, dp := range p.dirs {
		dp.first = next
		dp.count = max(1, (dp.slots*slotSize+cb-1)/cb)
		next += dp.count
	}
	for _, f := range p.files {
		if f.size > 0 {
			f.first = next
			next += (f.size + cb - 1) / cb
		}
	}
	return next
}

// fatTable is the FAT's used part (up to cluster next); the rest of the
// FAT is zeros (free).
func (p *plan) fatTable(next, cb int64) []byte {
	fat := make([]byte, next*4)
	binary.LittleEndian.PutUint32(fat[0:], 0x0FFFFF00|mediaFixed)
	binary.LittleEndian.PutUint32(fat[4:], eoc)
	chain := func(first, n int64) {
		for c := first; c < first+n-1; c++ {
			binary.LittleEndian.PutUint32(fat[c*4:], uint32(c+1))
		}
		binary.LittleEndian.PutUint32(fat[(first+n-1)*4:], eoc)
	}
	for _, dp := range p.dirs {
		chain(dp.first, dp.count)
	}
	for _, f := range p.files {
		if f.size > 0 {
			chain(f.first, (f.size+cb-1)/cb)
		}
	}
	return fat
}

// reservedRegion is the boot sector, FSInfo, their backups and zeros.
func reservedRegion(g geometry, label [11]byte, volID uint32, used, next int64) []byte {
	boot := bootSector(g, label, volID)
	var nextFree uint32 = 0xFFFFFFFF
	if used < g.clusters {
		nextFree = uint32(next)
	}
	info := fsInfo(uint32(g.clusters-used), nextFree)
	reserved := make([]byte, g.reserved*sectorSize)
	copy(reserved[0:], boot)
	copy(reserved[fsInfoSector*sectorSize:], info)
	copy(reserved[backupBootSect*sectorSize:], boot)
	copy(reserved[(backupBootSect+fsInfoSector)*sectorSize:], info)
	return reserved
}

// writeFiles writes the file data, each file padded to its clusters,
// checking ctx before each.
func (p *plan) writeFiles(ctx context.Context, sw *seqWriter, cb int64) error {
	for _, f := range p.files {
		if f.size == 0 || sw.err != nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("fat: %w", err)
		}
		if err := sw.copyFile(f); err != nil {
			return fmt.Errorf("fat: %w", err)
		}
		sw.zeros(alignUp(f.size, cb) - f.size)
	}
	return nil
}

// stamp is a DOS date and time.
type stamp struct {
	date, time uint16
	tenth      uint8 // 10 ms units of the odd second (creation time only)
}

// dosTime converts Unix seconds (taken as UTC) to FAT's local date and time,
// clamped to FAT's range 1980-01-01 to 2107-12-31.
func dosTime(unix int64) stamp {
	t := time.Unix(unix, 0).UTC()
	if t.Year() < 1980 {
		return stamp{date: 1<<5 | 1}
	}
	if t.Year() > 2107 {
		return stamp{date: 127<<9 | 12<<5 | 31, time: 23<<11 | 59<<5 | 29, tenth: 100}
	}
	return stamp{
		date:  uint16(t.Year()-1980)<<9 | uint16(t.Month())<<5 | uint16(t.Day()),
		time:  uint16(t.Hour())<<11 | uint16(t.Minute())<<5 | uint16(t.Second()/2),
		tenth: uint8(t.Second()%2) * 100,
	}
}

// bootSector is the FAT32 boot sector (fatgen103, "BPB").
func bootSector(g geometry, label [11]byte, volID uint32) []byte {
	b := make([]byte, sectorSize)
	le := binary.LittleEndian
	copy(b[0:], []byte{0xEB, 0x58, 0x90})
	copy(b[3:11], "MSWIN4.1") // fatgen103's most compatible OEM name
	le.PutUint16(b[11:], sectorSize)
	b[13] = byte(g.spc)
	le.PutUint16(b[14:], uint16(g.reserved))
	b[16] = numFATs
	// 17: root entries 0, 19: total sectors (16-bit) 0 on FAT32
	b[21] = mediaFixed
	// 22: FAT size (16-bit) 0 on FAT32
	heads, spt := chs(g.sectors)
	le.PutUint16(b[24:], spt)
	le.PutUint16(b[26:], heads)
	// 28: hidden sectors 0, as mkfs.fat writes for an image file; readers
	// that matter use the partition table instead.
	le.PutUint32(b[32:], uint32(g.sectors))
	le.PutUint32(b[36:], uint32(g.fatSectors))
	// 40: flags 0 (FATs mirrored), 42: version 0.0
	le.PutUint32(b[44:], 2) // root directory cluster
	le.PutUint16(b[48:], fsInfoSector)
	le.PutUint16(b[50:], backupBootSect)
	b[64] = 0x80 // drive number
	b[66] = 0x29 // extended boot signature: the next three fields are valid
	le.PutUint32(b[67:], volID)
	copy(b[71:82], label[:])
	copy(b[82:90], "FAT32   ")
	// Boot code at 0x5A (the jump's target): ask the BIOS to try the next
	// boot device (int 18h), then halt.
	copy(b[90:], []byte{0xCD, 0x18, 0xFA, 0xF4, 0xEB, 0xFD})
	b[510], b[511] = 0x55, 0xAA
	return b
}

// chs is the geometry mkfs.fat (following the SD card specification) puts in
// the BPB of an image file; only ancient CHS-addressing code reads it.
func chs(sectors int64) (heads, spt uint16) {
	mb := sectors / 2048
	switch {
	case mb <= 2:
		return 2, 16
	case mb <= 16:
		return 2, 32
	case mb <= 32:
		return 4, 32
	case mb <= 128:
		return 8, 32
	case mb <= 256:
		return 16, 32
	case mb <= 504:
		return 16, 63
	case mb <= 1008:
		return 32, 63
	case mb <= 2016:
		return 64, 63
	case mb <= 4032:
		return 128, 63
	}
	return 255, 63
}

// fsInfo is the FSInfo sector with exact free-cluster figures.
func fsInfo(free, nextFree uint32) []byte {
	b := make([]byte, sectorSize)
	le := binary.LittleEndian
	le.PutUint32(b[0:], 0x41615252)
	le.PutUint32(b[484:], 0x61417272)
	le.PutUint32(b[488:], free)
	le.PutUint32(b[492:], nextFree)
	le.PutUint32(b[508:], 0xAA550000)
	return b
}

// encode returns the directory's clusters, entries first and zeros after.
func (dp *dirPlan) encode(cb int64, st stamp, label [11]byte) []byte {
	b := make([]byte, dp.count*cb)
	off := 0
	put := func(name [11]byte, attr byte, cluster int64, size int64) {
		e := b[off : off+slotSize]
		copy(e[0:11], name[:])
		e[11] = attr
		if attr != attrVolumeID {
			e[13] = st.tenth
			binary.LittleEndian.PutUint16(e[14:], st.time)
			binary.LittleEndian.PutUint16(e[16:], st.date)
			binary.LittleEndian.PutUint16(e[18:], st.date)
		}
		binary.LittleEndian.PutUint16(e[20:], uint16(cluster>>16))
		binary.LittleEndian.PutUint16(e[22:], st.time)
		binary.LittleEndian.PutUint16(e[24:], st.date)
		binary.LittleEndian.PutUint16(e[26:], uint16(cluster))
		binary.LittleEndian.PutUint32(e[28:], uint32(size))
		off += slotSize
	}
	if dp.parent == nil {
		put(label, attrVolumeID, 0, 0)
	} else {
		put(dotName("."), attrDir, dp.first, 0)
		parent := dp.parent.first
		if dp.parent.parent == nil {
			parent = 0 // ".." of a root child points at cluster 0
		}
		put(dotName(".."), attrDir, parent, 0)
	}
	for _, ep := range dp.entries {
		if ep.lfn {
			off = putLFN(b, off, ep.name, ep.short)
		}
		if ep.dir != nil {
			put(ep.short, attrDir, ep.dir.first, 0)
		} else {
			put(ep.short, attrArchive, ep.first, ep.size)
		}
	}
	return b
}

func dotName(s string) [11]byte {
	var n [11]byte
	copy(n[:], "           ")
	copy(n[:], s)
	return n
}

// putLFN writes the long-name entries of name at b[off:], last part first,
// and returns the offset after them.
func putLFN(b []byte, off int, name string, short [11]byte) int {
	u := utf16.Encode([]rune(name))
	n := (len(u) + 12) / 13
	sum := lfnChecksum(short)
	for i := n; i >= 1; i-- {
		e := b[off : off+slotSize]
		e[0] = byte(i)
		if i == n {
			e[0] |= lfnLast
		}
		e[11] = attrLFN
		e[13] = sum
		// 13 characters at these offsets; after the name one 0x0000, then
		// 0xFFFF padding.
		for k, pos := range [13]int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30} {
			j := (i-1)*13 + k
			var c uint16 = 0xFFFF
			switch {
			case j < len(u):
				c = u[j]
			case j == len(u):
				c = 0
			}
			binary.LittleEndian.PutUint16(e[pos:], c)
		}
		off += slotSize
	}
	return off
}

// seqWriter writes a stream to w from offset 0 on in large chunks. The first
// error sticks and turns later calls into no-ops.
type seqWriter struct {
	w   io.WriterAt
	off int64 // offset of buf[0]
	buf []byte
	err error
}

func (s *seqWriter) flush() {
	if s.err != nil || len(s.buf) == 0 {
		return
	}
	n, err := s.w.WriteAt(s.buf, s.off)
	if err == nil && n < len(s.buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		s.err = fmt.Errorf("write at offset %d: %w", s.off, err)
	}
	s.off += int64(len(s.buf))
	s.buf = s.buf[:0]
}

func (s *seqWriter) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 && s.err == nil {
		if len(s.buf) == cap(s.buf) {
			s.flush()
		}
		n := copy(s.buf[len(s.buf):cap(s.buf)], p)
		s.buf = s.buf[:len(s.buf)+n]
		p = p[n:]
	}
	if s.err != nil {
		return 0, s.err
	}
	return total, nil
}

func (s *seqWriter) zeros(n int64) {
	for n > 0 && s.err == nil {
		if len(s.buf) == cap(s.buf) {
			s.flush()
		}
		k := min(n, int64(cap(s.buf)-len(s.buf)))
		z := s.buf[len(s.buf) : len(s.buf)+int(k)]
		clear(z)
		s.buf = s.buf[:len(s.buf)+int(k)]
		n -= k
	}
}

// ReadFrom reads r straight into the buffer, so io.Copy needs no buffer of
// its own.
func (s *seqWriter) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	for s.err == nil {
		if len(s.buf) == cap(s.buf) {
			s.flush()
			if s.err != nil {
				break
			}
		}
		n, err := r.Read(s.buf[len(s.buf):cap(s.buf)])
		s.buf = s.buf[:len(s.buf)+n]
		total += int64(n)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
	return total, s.err
}

// copyFile streams one file's content, which must be exactly its size.
func (s *seqWriter) copyFile(f *entryPlan) (err error) {
	rc, err := f.node.Content.Open()
	if err != nil {
		return fmt.Errorf("%s: open content: %w", f.path, err)
	}
	defer func() {
		if cerr := rc.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("%s: close content: %w", f.path, cerr)
		}
	}()
	n, err := io.Copy(s, io.LimitReader(rc, f.size))
	if s.err != nil {
		return s.err
	}
	if err != nil {
		return fmt.Errorf("%s: read content: %w", f.path, err)
	}
	if n < f.size {
		return fmt.Errorf("%s: content ended after %d bytes, its size says %d", f.path, n, f.size)
	}
	var one [1]byte
	if k, _ := io.ReadFull(rc, one[:]); k > 0 {
		return fmt.Errorf("%s: content is longer than its size %d", f.path, f.size)
	}
	return nil
}
