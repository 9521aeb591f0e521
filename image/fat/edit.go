package fat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
)

// Editor edits a FAT32 file system in place, without a kernel mount: what
// rfs reset writes (a flag file) and what rfs update writes into the boot
// partition of an image or a card in a reader (a slot directory of big
// files, the slot switch files). It keeps one FAT in memory (the active
// one: the first, unless mirroring is off) and writes every changed FAT
// sector to each copy; the FSInfo free count is exact after every
// operation and reads "unknown" (0xFFFFFFFF, which the spec allows)
// while one is under way. The file system comes from the field, so every
// chain, cluster number, directory and path is checked: a hostile one is
// an error, never a panic, an endless walk or a read past the file system.
//
// Power cuts. Every operation is ordered so that at each instant every
// directory entry names a complete chain holding complete content; what a
// cut can leave is at worst clusters marked used that nothing references
// (fsck.fat reclaims them; no reader misreads them) and a FAT copy or the
// FSInfo count behind the first FAT. WriteFile writes the content into
// newly allocated clusters, then the FAT (every copy), then syncs; only
// then does it write the directory entry (one 32-byte write inside one
// sector) that switches the name to the new chain, syncs, and frees the
// old chain (FAT copies), syncing again. Writing the FAT before the entry
// is the safe order: the reverse would let a cut leave an entry pointing
// at clusters still marked free, which the next allocation hands to
// another file (two files sharing clusters, silent corruption), while this
// order can only leak clusters. What remains: the switch is one sector
// write, atomic on disks and on most cards but not promised by every SD
// card's flash translation; a torn write of that sector could damage the
// other entries in it. Renames and removals delete the directory entry
// before its clusters are freed, for the same reason.
//
// The FAT is read once, at OpenEditor: nothing else may write the file
// system while an Editor is open on it (never edit a mounted partition).
// Timestamps follow the writer's rule: UTC, clamped to FAT's range.
type Editor struct {
	rw        ReaderWriterAt
	start     int64 // byte offset of the file system
	bps       int64 // bytes per sector
	clusterSz int64
	fatStart  int64 // byte offset (in the fs) of the first FAT
	fatSize   int64 // bytes per FAT
	fats      []int // FAT copies written (every copy, or the active one)
	dataStart int64 // byte offset of cluster 2
	nClusters uint32
	rootClus  uint32
	fsinfo    int64 // byte offset of the FSInfo sector, 0 if none

	fat      []byte         // the active FAT, entries 0..nClusters+1
	dirty    map[int64]bool // FAT sectors (index) changed since the last flush
	freeN    int64          // free clusters, counted from fat
	hint     uint32         // where the next allocation starts looking
	fsiStale bool           // FSInfo on disk says "unknown" now
}

// ReaderWriterAt is what an Editor edits: a partition, an image file or
// a whole disk (with the file system's start offset). If it has a Sync
// method (an *os.File), the Editor calls it between the steps of each
// operation.
type ReaderWriterAt interface {
	io.ReaderAt
	io.WriterAt
}

const (
	fatMask = 0x0FFFFFFF
	eocMin  = 0x0FFFFFF8 // entries from here on end a chain
	// maxEditClusters bounds the FAT the Editor holds in memory (64 MiB):
	// boot partitions have far fewer clusters; a boot sector claiming more
	// is refused rather than trusted.
	maxEditClusters = 16 << 20
	fsiUnknown      = 0xFFFFFFFF
)

// OpenEditor opens the FAT32 file system at byte start of rw for editing.
// The file system must lie within rw: its last byte is read before its FAT
// is, so a boot sector claiming more than the device holds is an error.
func OpenEditor(rw ReaderWriterAt, start int64) (*Editor, error) {
	bs := make([]byte, 512)
	if _, err := rw.ReadAt(bs, start); err != nil {
		return nil, fmt.Errorf("read boot sector: %w", err)
	}
	if bs[510] != 0x55 || bs[511] != 0xaa || string(bs[82:87]) != "FAT32" {
		return nil, errors.New("not a FAT32 filesystem")
	}
	fs, total, err := parseBoot(bs)
	if err != nil {
		return nil, err
	}
	fs.rw, fs.start = rw, start
	var one [1]byte
	if _, err := rw.ReadAt(one[:], start+total-1); err != nil {
		return nil, fmt.Errorf("FAT32 file system of %d bytes does not fit the device: %w", total, err)
	}
	if err := fs.loadFAT(); err != nil {
		return nil, err
	}
	return fs, nil
}

// parseBoot checks the boot sector's geometry; it returns the editor's
// layout and the file system's size in bytes.
func parseBoot(bs []byte) (*Editor, int64, error) {
	le := binary.LittleEndian
	fs := &Editor{dirty: map[int64]bool{}}
	fs.bps = int64(le.Uint16(bs[11:]))
	spc := int64(bs[13])
	reserved := int64(le.Uint16(bs[14:]))
	nFATs := int(bs[16])
	total := int64(le.Uint16(bs[19:]))
	if total == 0 {
		total = int64(le.Uint32(bs[32:]))
	}
	fatSecs := int64(le.Uint32(bs[36:]))
	flags := le.Uint16(bs[40:])
	fs.rootClus = le.Uint32(bs[44:])
	if fs.bps < 512 || fs.bps > 4096 || fs.bps&(fs.bps-1) != 0 || spc == 0 || spc&(spc-1) != 0 ||
		spc*fs.bps > 1<<20 || reserved == 0 || nFATs == 0 || nFATs > 4 || fatSecs == 0 {
		return nil, 0, errors.New("FAT32 boot sector with impossible geometry")
	}
	fs.clusterSz = spc * fs.bps
	fs.fatStart = reserved * fs.bps
	fs.fatSize = fatSecs * fs.bps
	fs.dataStart = fs.fatStart + int64(nFATs)*fs.fatSize
	size := total * fs.bps
	n := min((size-fs.dataStart)/fs.clusterSz, fs.fatSize/4-2, 0x0FFFFFF5)
	switch {
	case fs.dataStart >= size || n <= 0:
		return nil, 0, errors.New("FAT32 boot sector: no data clusters")
	case n > maxEditClusters:
		return nil, 0, fmt.Errorf("FAT32 file system of %d clusters: more than the %d a boot partition editor handles", n, maxEditClusters)
	}
	fs.nClusters = uint32(n)
	if fs.rootClus < 2 || fs.rootClus >= fs.nClusters+2 {
		return nil, 0, errors.New("FAT32 root directory cluster out of range")
	}
	fs.fats = make([]int, nFATs)
	for i := range fs.fats {
		fs.fats[i] = i
	}
	if flags&0x80 != 0 { // mirroring off: only the active FAT is used
		act := int(flags & 0x0f)
		if act >= nFATs {
			return nil, 0, fmt.Errorf("FAT32 boot sector: active FAT %d of %d", act, nFATs)
		}
		fs.fats = []int{act}
	}
	if fsi := int64(le.Uint16(bs[48:])); fsi != 0 && fsi != 0xffff && fsi < reserved {
		fs.fsinfo = fsi * fs.bps
	}
	return fs, size, nil
}

// loadFAT reads the active FAT and counts the free clusters.
func (fs *Editor) loadFAT() error {
	fs.fat = make([]byte, (int64(fs.nClusters)+2)*4)
	if _, err := fs.rw.ReadAt(fs.fat, fs.start+fs.fatStart+int64(fs.fats[0])*fs.fatSize); err != nil {
		return fmt.Errorf("read FAT: %w", err)
	}
	for c := uint32(2); c < fs.nClusters+2; c++ {
		if fs.get(c) == 0 {
			fs.freeN++
		}
	}
	fs.hint = 2
	if fsi, ok := fs.readFSInfo(); ok {
		if h := binary.LittleEndian.Uint32(fsi[492:]); h >= 2 && h < fs.nClusters+2 {
			fs.hint = h
		}
	}
	return nil
}

func (fs *Editor) valid(c uint32) bool { return c >= 2 && c < fs.nClusters+2 }

func (fs *Editor) get(c uint32) uint32 {
	return binary.LittleEndian.Uint32(fs.fat[c*4:]) & fatMask
}

// set changes entry c in memory (keeping the reserved top 4 bits) and
// marks its sector for the next flushFAT.
func (fs *Editor) set(c, v uint32) {
	old := fs.get(c)
	switch {
	case old == 0 && v != 0:
		fs.freeN--
	case old != 0 && v == 0:
		fs.freeN++
	}
	b := fs.fat[c*4:]
	binary.LittleEndian.PutUint32(b, binary.LittleEndian.Uint32(b)&^fatMask|v&fatMask)
	fs.dirty[int64(c)*4/fs.bps] = true
}

// flushFAT writes the changed FAT sectors to every FAT copy, in order,
// each run of adjacent sectors in one write.
func (fs *Editor) flushFAT() error {
	if len(fs.dirty) == 0 {
		return nil
	}
	secs := slices.Sorted(maps.Keys(fs.dirty))
	for _, copyN := range fs.fats {
		base := fs.start + fs.fatStart + int64(copyN)*fs.fatSize
		for i := 0; i < len(secs); {
			j := i + 1
			for j < len(secs) && secs[j] == secs[j-1]+1 {
				j++
			}
			lo, hi := secs[i]*fs.bps, min((secs[j-1]+1)*fs.bps, int64(len(fs.fat)))
			if _, err := fs.rw.WriteAt(fs.fat[lo:hi], base+lo); err != nil {
				return fmt.Errorf("write FAT %d: %w", copyN, err)
			}
			i = j
		}
	}
	clear(fs.dirty)
	return nil
}

func (fs *Editor) sync() error {
	if s, ok := fs.rw.(interface{ Sync() error }); ok {
		if err := s.Sync(); err != nil {
			return fmt.Errorf("sync: %w", err)
		}
	}
	return nil
}

// commitFAT makes the FAT changes durable: FAT copies, then a sync.
func (fs *Editor) commitFAT() error {
	if err := fs.flushFAT(); err != nil {
		return err
	}
	return fs.sync()
}

func (fs *Editor) readFSInfo() ([]byte, bool) {
	if fs.fsinfo == 0 {
		return nil, false
	}
	b := make([]byte, 512)
	if _, err := fs.rw.ReadAt(b, fs.start+fs.fsinfo); err != nil {
		return nil, false
	}
	if string(b[0:4]) != "RRaA" || string(b[484:488]) != "rrAa" {
		return nil, false
	}
	return b, true
}

// writeFSInfo writes free (the count, or fsiUnknown) and the hint.
func (fs *Editor) writeFSInfo(free uint32) error {
	b, ok := fs.readFSInfo()
	if !ok {
		return nil
	}
	binary.LittleEndian.PutUint32(b[488:], free)
	binary.LittleEndian.PutUint32(b[492:], fs.hint)
	if _, err := fs.rw.WriteAt(b, fs.start+fs.fsinfo); err != nil {
		return fmt.Errorf("write FSInfo: %w", err)
	}
	return nil
}

// begin marks the FSInfo free count unknown before an operation changes
// the FAT, so a cut never leaves a wrong count behind.
func (fs *Editor) begin() error {
	if fs.fsiStale {
		return nil
	}
	if err := fs.writeFSInfo(fsiUnknown); err != nil {
		return err
	}
	fs.fsiStale = true
	return fs.sync()
}

// op runs an operation that may change the FAT and, whatever its outcome,
// writes what it changed in memory and the exact free count.
func (fs *Editor) op(f func() error) error {
	err := f()
	if fs.fsiStale || len(fs.dirty) > 0 {
		if e := fs.end(); err == nil {
			err = e
		}
	}
	return err
}

// end writes the exact free count once an operation is complete and
// durable (a count written beside the last entry write could count a
// cluster that the entry, lost in a cut, no longer references).
func (fs *Editor) end() error {
	if err := fs.commitFAT(); err != nil {
		return err
	}
	if err := fs.writeFSInfo(uint32(fs.freeN)); err != nil {
		return err
	}
	fs.fsiStale = false
	return fs.sync()
}

func (fs *Editor) clusterOff(c uint32) int64 {
	return fs.start + fs.dataStart + int64(c-2)*fs.clusterSz
}

// clustersFor is the number of clusters n bytes take.
func (fs *Editor) clustersFor(n int64) int64 { return (n + fs.clusterSz - 1) / fs.clusterSz }

// Free returns the free space in bytes.
func (fs *Editor) Free() int64 { return fs.freeN * fs.clusterSz }

// ClusterSize returns the allocation unit in bytes: a file takes its size
// rounded up to it.
func (fs *Editor) ClusterSize() int64 { return fs.clusterSz }

// ErrFull is wrapped by the error of a write the free space cannot hold.
var ErrFull = errors.New("boot partition full")

// needFree fails with ErrFull unless n clusters are free.
func (fs *Editor) needFree(n int64) error {
	if n > fs.freeN {
		return fmt.Errorf("%w: need %s, free %s", ErrFull, human(n*fs.clusterSz), human(fs.freeN*fs.clusterSz))
	}
	return nil
}

func human(b int64) string {
	switch {
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", b)
}

// alloc takes n free clusters and chains them (in memory): one contiguous
// run when there is one (the first from the hint on), else the free
// clusters in order from the hint.
func (fs *Editor) alloc(n int64) ([]uint32, error) {
	if err := fs.needFree(n); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, nil
	}
	out := fs.findRun(n)
	if out == nil {
		out = make([]uint32, 0, n)
		for i := uint32(0); i < fs.nClusters && int64(len(out)) < n; i++ {
			if c := 2 + (fs.hint-2+i)%fs.nClusters; fs.get(c) == 0 {
				out = append(out, c)
			}
		}
	}
	for i, c := range out {
		next := uint32(eoc)
		if i+1 < len(out) {
			next = out[i+1]
		}
		fs.set(c, next)
	}
	if last := out[len(out)-1] + 1; fs.valid(last) {
		fs.hint = last
	} else {
		fs.hint = 2
	}
	return out, nil
}

// findRun returns n contiguous free clusters, nil if there are none.
func (fs *Editor) findRun(n int64) []uint32 {
	for _, lo := range []uint32{fs.hint, 2} {
		run := int64(0)
		for c := lo; c < fs.nClusters+2; c++ {
			if fs.get(c) != 0 {
				run = 0
				continue
			}
			if run++; run == n {
				out := make([]uint32, n)
				for i := range out {
					out[i] = c + 1 - uint32(n) + uint32(i)
				}
				return out
			}
		}
	}
	return nil
}

// release frees clusters in memory (a chain that was allocated but not
// used, or an old chain no entry references any more).
func (fs *Editor) release(cs []uint32) {
	for _, c := range cs {
		fs.set(c, 0)
	}
}

// chain follows the chain from first to its end marker. Every link must
// be a cluster of the file system, and a chain longer than the file system
// loops.
func (fs *Editor) chain(first uint32) ([]uint32, error) {
	var out []uint32
	for c := first; ; {
		if !fs.valid(c) {
			return nil, fmt.Errorf("cluster chain from %d: link %#x out of range", first, c)
		}
		if len(out) >= int(fs.nClusters) {
			return nil, fmt.Errorf("cluster chain from %d loops", first)
		}
		out = append(out, c)
		n := fs.get(c)
		if n >= eocMin {
			return out, nil
		}
		c = n
	}
}

// chainN follows the first n clusters of the chain from first (a file's
// content; what follows does not matter to a reader).
func (fs *Editor) chainN(first uint32, n int64, what string) ([]uint32, error) {
	if n > int64(fs.nClusters) {
		return nil, fmt.Errorf("%s: %d clusters, more than the file system has", what, n)
	}
	out := make([]uint32, 0, n)
	seen := make(map[uint32]bool, n)
	for c := first; int64(len(out)) < n; c = fs.get(c) {
		if !fs.valid(c) {
			return nil, fmt.Errorf("%s: cluster chain ends after %d of %d clusters (next %#x)", what, len(out), n, c)
		}
		if seen[c] {
			return nil, fmt.Errorf("%s: cluster chain loops at cluster %d", what, c)
		}
		seen[c] = true
		out = append(out, c)
	}
	return out, nil
}

// runs splits a chain into runs of consecutive clusters, for big I/O.
func runs(cs []uint32) [][]uint32 {
	var out [][]uint32
	for i := 0; i < len(cs); {
		j := i + 1
		for j < len(cs) && cs[j] == cs[j-1]+1 {
			j++
		}
		out = append(out, cs[i:j])
		i = j
	}
	return out
}
