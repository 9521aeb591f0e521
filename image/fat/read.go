package fat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf16"
)

// FS is a FAT32 file system opened for reading, in a partition that may
// hold anything (a card from the field): every offset, size and cluster
// chain is checked against the partition before it is used, so a hostile
// boot sector or FAT gives an error, never a huge allocation, a read past
// the partition or an endless walk. It shares no code with Write, so
// reading an image back also checks what Write produced.
type FS struct {
	r         io.ReaderAt
	size      int64 // of the file system (within its partition)
	clusterSz int64
	fatStart  int64 // byte offset of the first FAT
	dataStart int64 // byte offset of cluster 2
	nClusters uint32
	rootClus  uint32

	fatCache    []byte // one sector of the FAT
	fatCacheOff int64  // its offset, -1 if none
}

// ErrNotExist is returned for a path that is not in the file system.
var ErrNotExist = errors.New("no such file")

// Open reads the boot sector of the FAT32 file system in r, a partition of
// size bytes, and checks its geometry against size.
func Open(r io.ReaderAt, size int64) (*FS, error) {
	bs := make([]byte, sectorSize)
	if _, err := r.ReadAt(bs, 0); err != nil {
		return nil, fmt.Errorf("read boot sector: %w", err)
	}
	le := binary.LittleEndian
	if bs[510] != 0x55 || bs[511] != 0xaa || le.Uint16(bs[17:]) != 0 || le.Uint16(bs[22:]) != 0 {
		return nil, errors.New("not a FAT32 file system (no FAT32 boot sector)")
	}
	bps := int64(le.Uint16(bs[11:]))
	spc := int64(bs[13])
	reserved := int64(le.Uint16(bs[14:]))
	nFATs := int64(bs[16])
	total := int64(le.Uint16(bs[19:]))
	if total == 0 {
		total = int64(le.Uint32(bs[32:]))
	}
	fatSecs := int64(le.Uint32(bs[36:]))
	bad := func(what string) error { return errors.New("FAT32 boot sector: " + what) }
	switch {
	case bps < 512 || bps > 4096 || bps&(bps-1) != 0:
		return nil, bad(fmt.Sprintf("bytes per sector %d", bps))
	case spc == 0 || spc&(spc-1) != 0 || spc*bps > 1<<20:
		return nil, bad(fmt.Sprintf("sectors per cluster %d", spc))
	case reserved == 0 || nFATs == 0 || nFATs > 4 || fatSecs == 0:
		return nil, bad(fmt.Sprintf("%d reserved sectors, %d FATs of %d sectors", reserved, nFATs, fatSecs))
	case total*bps > size:
		return nil, bad(fmt.Sprintf("%d sectors of %d bytes, but the partition is only %d bytes", total, bps, size))
	}
	fs := &FS{r: r, size: total * bps, clusterSz: spc * bps, fatStart: reserved * bps, fatCacheOff: -1}
	fs.dataStart = fs.fatStart + nFATs*fatSecs*bps
	if fs.dataStart >= fs.size {
		return nil, bad("FATs end past the file system")
	}
	n := min((fs.size-fs.dataStart)/fs.clusterSz, fatSecs*bps/4-2, 0x0FFFFFF5)
	if n <= 0 {
		return nil, bad("no data clusters")
	}
	fs.nClusters = uint32(n)
	fs.rootClus = le.Uint32(bs[44:])
	if !fs.valid(fs.rootClus) {
		return nil, bad(fmt.Sprintf("root directory cluster %d out of range", fs.rootClus))
	}
	return fs, nil
}

func (fs *FS) valid(c uint32) bool { return c >= 2 && c < fs.nClusters+2 }

// next returns the FAT entry of cluster c (valid), through a one-sector
// cache: chains written by rfs and by mkfs are mostly sequential.
func (fs *FS) next(c uint32) (uint32, error) {
	off := fs.fatStart + int64(c)*4
	sec := off / sectorSize * sectorSize
	if sec != fs.fatCacheOff {
		if fs.fatCache == nil {
			fs.fatCache = make([]byte, sectorSize)
		}
		if _, err := fs.r.ReadAt(fs.fatCache, sec); err != nil {
			fs.fatCacheOff = -1
			return 0, fmt.Errorf("read FAT: %w", err)
		}
		fs.fatCacheOff = sec
	}
	return binary.LittleEndian.Uint32(fs.fatCache[off-sec:]) & 0x0FFFFFFF, nil
}

// read reads n bytes of the chain starting at cluster c. n bounds the walk
// (n/cluster size clusters, rounded up), and a cluster seen twice is a
// loop: a hostile FAT can neither run the walk forever nor make it
// allocate more than n, itself at most what the file system holds.
func (fs *FS) read(c uint32, n int64, what string) ([]byte, error) {
	if n == 0 {
		return []byte{}, nil
	}
	want := (n + fs.clusterSz - 1) / fs.clusterSz
	if want > int64(fs.nClusters) {
		return nil, fmt.Errorf("%s: %d bytes, more than the file system holds", what, n)
	}
	out := make([]byte, n)
	seen := make(map[uint32]bool, want)
	for i := int64(0); i < want; i++ {
		if !fs.valid(c) {
			return nil, fmt.Errorf("%s: cluster chain ends after %d of %d clusters (next %#x)", what, i, want, c)
		}
		if seen[c] {
			return nil, fmt.Errorf("%s: cluster chain loops at cluster %d", what, c)
		}
		seen[c] = true
		chunk := out[i*fs.clusterSz : min((i+1)*fs.clusterSz, n)]
		if _, err := fs.r.ReadAt(chunk, fs.dataStart+int64(c-2)*fs.clusterSz); err != nil {
			return nil, fmt.Errorf("%s: read cluster %d: %w", what, c, err)
		}
		if i+1 < want {
			var err error
			if c, err = fs.next(c); err != nil {
				return nil, fmt.Errorf("%s: %w", what, err)
			}
		}
	}
	return out, nil
}

// dirEntry is one name in a directory.
type dirEntry struct {
	name    string
	cluster uint32
	size    int64
	isDir   bool
}

// maxDirBytes is the largest directory FAT allows: 65536 entries.
const maxDirBytes = maxDirSlots * slotSize

// readDir reads the directory starting at cluster c, up to FAT's limit of
// 65536 entries (a longer chain is a loop or damage).
func (fs *FS) readDir(c uint32, what string) ([]dirEntry, error) {
	var ents []dirEntry
	var lfn []uint16
	buf := make([]byte, fs.clusterSz)
	seen := map[uint32]bool{}
	for read := int64(0); ; read += fs.clusterSz {
		if !fs.valid(c) {
			return ents, nil // end of chain (or a damaged link: stop there)
		}
		if seen[c] || read >= maxDirBytes {
			return nil, fmt.Errorf("directory %s: cluster chain loops or exceeds FAT's 65536 entries", what)
		}
		seen[c] = true
		if _, err := fs.r.ReadAt(buf, fs.dataStart+int64(c-2)*fs.clusterSz); err != nil {
			return nil, fmt.Errorf("directory %s: read cluster %d: %w", what, c, err)
		}
		for i := int64(0); i < fs.clusterSz; i += slotSize {
			e := buf[i : i+slotSize]
			switch {
			case e[0] == 0:
				return ents, nil
			case e[0] == 0xe5:
				lfn = nil
				continue
			case e[11]&0x3f == attrLFN:
				if e[0]&lfnLast != 0 {
					lfn = nil
				}
				var part []uint16
				for _, pos := range [13]int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30} {
					part = append(part, binary.LittleEndian.Uint16(e[pos:]))
				}
				if len(lfn) < 20*13 { // 20 slots hold 255 characters
					lfn = append(part, lfn...)
				}
				continue
			}
			if e[11]&attrVolumeID == 0 {
				ents = append(ents, entry(e, lfn))
			}
			lfn = nil
		}
		var err error
		if c, err = fs.next(c); err != nil {
			return nil, fmt.Errorf("directory %s: %w", what, err)
		}
	}
}

func entry(e []byte, lfn []uint16) dirEntry {
	le := binary.LittleEndian
	d := dirEntry{
		cluster: uint32(le.Uint16(e[20:]))<<16 | uint32(le.Uint16(e[26:])),
		size:    int64(le.Uint32(e[28:])),
		isDir:   e[11]&attrDir != 0,
	}
	base, ext := strings.TrimRight(string(e[0:8]), " "), strings.TrimRight(string(e[8:11]), " ")
	d.name = base
	if ext != "" {
		d.name += "." + ext
	}
	if len(lfn) > 0 {
		n := 0
		for n < len(lfn) && lfn[n] != 0 && lfn[n] != 0xffff {
			n++
		}
		d.name = string(utf16.Decode(lfn[:n]))
	}
	return d
}

// ReadFile reads the file at path ("EFI/BOOT/BOOTX64.EFI"; names match
// without regard to case, as FAT does). A file larger than limit bytes is
// an error, not read.
func (fs *FS) ReadFile(path string, limit int64) ([]byte, error) {
	f, err := fs.lookup(path)
	if err != nil {
		return nil, err
	}
	if f.size > limit {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d accepted", path, f.size, limit)
	}
	return fs.read(f.cluster, f.size, path)
}

// Stat returns the size of the file at path (matched as ReadFile does);
// the error wraps ErrNotExist when there is none.
func (fs *FS) Stat(path string) (int64, error) {
	f, err := fs.lookup(path)
	if err != nil {
		return 0, err
	}
	return f.size, nil
}

// lookup finds the regular file at path.
func (fs *FS) lookup(path string) (*dirEntry, error) {
	dir, where := fs.rootClus, "/"
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for i, name := range parts {
		ents, err := fs.readDir(dir, where)
		if err != nil {
			return nil, err
		}
		var found *dirEntry
		for j := range ents {
			if strings.EqualFold(ents[j].name, name) {
				found = &ents[j]
				break
			}
		}
		last := i == len(parts)-1
		switch {
		case found == nil:
			return nil, fmt.Errorf("%s: %w", path, ErrNotExist)
		case last && found.isDir:
			return nil, fmt.Errorf("%s: is a directory", path)
		case !last && !found.isDir:
			return nil, fmt.Errorf("%s: %s is not a directory", path, name)
		case !last:
			dir, where = found.cluster, where+name+"/"
			continue
		}
		return found, nil
	}
	return nil, fmt.Errorf("%s: %w", path, ErrNotExist)
}

// maxWalkDepth bounds the directories Files descends: a hostile FAT can
// make a directory its own child.
const maxWalkDepth = 16

// File is a regular file found by Files; Path uses slashes, no leading one.
type File struct {
	Path string
	Size int64
}

// Files lists every regular file of the file system, directories
// descended to a depth of 16 ("." and ".." skipped), in directory order.
func (fs *FS) Files() ([]File, error) {
	var out []File
	err := fs.walk(fs.rootClus, "", 0, &out)
	return out, err
}

func (fs *FS) walk(c uint32, prefix string, depth int, out *[]File) error {
	if depth > maxWalkDepth {
		return fmt.Errorf("directory %s: deeper than %d levels", prefix, maxWalkDepth)
	}
	ents, err := fs.readDir(c, "/"+prefix)
	if err != nil {
		return err
	}
	for _, e := range ents {
		switch {
		case e.name == "." || e.name == "..":
		case e.isDir:
			if err := fs.walk(e.cluster, prefix+e.name+"/", depth+1, out); err != nil {
				return err
			}
		default:
			*out = append(*out, File{Path: prefix + e.name, Size: e.size})
		}
	}
	return nil
}
