package fat

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf16"
)

// Editor edits a FAT32 file system in place, one small file in the root
// directory at a time: enough to read, write and remove rfs reset's flag
// file so that fsck.fat finds nothing to fix (go-diskfs's FAT writer leaks
// clusters on remove and leaves a wrong free count in the FSInfo sector).
// Writes are ordered so that a power cut leaves at worst a lost cluster:
// file data, then the FATs, then the directory entry. Timestamps follow
// the writer's rule: UTC, clamped to FAT's range.
type Editor struct {
	rw        io.ReaderAt
	w         io.WriterAt
	start     int64 // byte offset of the filesystem
	bps       int64 // bytes per sector
	clusterSz int64
	fatStart  int64 // byte offset (in the fs) of the first FAT
	fatSize   int64 // bytes per FAT
	nFATs     int
	dataStart int64 // byte offset of cluster 2
	nClusters uint32
	rootClus  uint32
	fsinfo    int64 // byte offset of the FSInfo sector, 0 if none
}

// ReaderWriterAt is what an Editor edits: a partition, an image file or
// a whole disk (with the file system's start offset).
type ReaderWriterAt interface {
	io.ReaderAt
	io.WriterAt
}

const fatMask = 0x0FFFFFFF

// OpenEditor opens the FAT32 file system at byte start of rw for editing.
func OpenEditor(rw ReaderWriterAt, start int64) (*Editor, error) {
	bs := make([]byte, 512)
	if _, err := rw.ReadAt(bs, start); err != nil {
		return nil, err
	}
	if bs[510] != 0x55 || bs[511] != 0xaa || string(bs[82:87]) != "FAT32" {
		return nil, errors.New("not a FAT32 filesystem")
	}
	fs := &Editor{rw: rw, w: rw, start: start}
	fs.bps = int64(binary.LittleEndian.Uint16(bs[11:]))
	spc := int64(bs[13])
	reserved := int64(binary.LittleEndian.Uint16(bs[14:]))
	fs.nFATs = int(bs[16])
	total := int64(binary.LittleEndian.Uint16(bs[19:]))
	if total == 0 {
		total = int64(binary.LittleEndian.Uint32(bs[32:]))
	}
	fatSecs := int64(binary.LittleEndian.Uint32(bs[36:]))
	fs.rootClus = binary.LittleEndian.Uint32(bs[44:])
	if fsi := int64(binary.LittleEndian.Uint16(bs[48:])); fsi != 0 && fsi != 0xffff {
		fs.fsinfo = fsi * fs.bps
	}
	if fs.bps < 512 || fs.bps > 4096 || fs.bps&(fs.bps-1) != 0 || spc == 0 || fs.nFATs == 0 || fatSecs == 0 {
		return nil, errors.New("FAT32 boot sector with impossible geometry")
	}
	fs.clusterSz = spc * fs.bps
	fs.fatStart = reserved * fs.bps
	fs.fatSize = fatSecs * fs.bps
	fs.dataStart = fs.fatStart + int64(fs.nFATs)*fs.fatSize
	fs.nClusters = uint32((total*fs.bps - fs.dataStart) / fs.clusterSz)
	if max := uint32(fs.fatSize/4) - 2; fs.nClusters > max {
		fs.nClusters = max
	}
	if fs.rootClus < 2 || fs.rootClus >= fs.nClusters+2 {
		return nil, errors.New("FAT32 root directory cluster out of range")
	}
	return fs, nil
}

func (fs *Editor) get(c uint32) (uint32, error) {
	var b [4]byte
	if _, err := fs.rw.ReadAt(b[:], fs.start+fs.fatStart+int64(c)*4); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b[:]) & fatMask, nil
}

// set writes entry c in every FAT, keeping the reserved top 4 bits.
func (fs *Editor) set(c, v uint32) error {
	for i := 0; i < fs.nFATs; i++ {
		off := fs.start + fs.fatStart + int64(i)*fs.fatSize + int64(c)*4
		var b [4]byte
		if _, err := fs.rw.ReadAt(b[:], off); err != nil {
			return err
		}
		binary.LittleEndian.PutUint32(b[:], binary.LittleEndian.Uint32(b[:])&^fatMask|v&fatMask)
		if _, err := fs.w.WriteAt(b[:], off); err != nil {
			return err
		}
	}
	return nil
}

func (fs *Editor) clusterOff(c uint32) int64 {
	return fs.start + fs.dataStart + int64(c-2)*fs.clusterSz
}

// chain follows the cluster chain from c.
func (fs *Editor) chain(c uint32) ([]uint32, error) {
	var out []uint32
	for c >= 2 && c < fs.nClusters+2 {
		if len(out) > int(fs.nClusters) {
			return nil, errors.New("FAT cluster chain loops")
		}
		out = append(out, c)
		n, err := fs.get(c)
		if err != nil {
			return nil, err
		}
		c = n
	}
	return out, nil
}

// alloc finds a free cluster, marks it end-of-chain and updates FSInfo.
func (fs *Editor) alloc() (uint32, error) {
	hint := uint32(2)
	var fsi []byte
	if fs.fsinfo != 0 {
		fsi = make([]byte, 512)
		if _, err := fs.rw.ReadAt(fsi, fs.start+fs.fsinfo); err != nil {
			return 0, err
		}
		if string(fsi[0:4]) != "RRaA" || string(fsi[484:488]) != "rrAa" {
			fsi = nil
		} else if h := binary.LittleEndian.Uint32(fsi[492:]); h >= 2 && h < fs.nClusters+2 {
			hint = h
		}
	}
	for i := uint32(0); i < fs.nClusters; i++ {
		c := 2 + (hint-2+i)%fs.nClusters
		v, err := fs.get(c)
		if err != nil {
			return 0, err
		}
		if v != 0 {
			continue
		}
		if err := fs.set(c, eoc); err != nil {
			return 0, err
		}
		if fsi != nil {
			if free := binary.LittleEndian.Uint32(fsi[488:]); free != 0xffffffff && free > 0 {
				binary.LittleEndian.PutUint32(fsi[488:], free-1)
			}
			binary.LittleEndian.PutUint32(fsi[492:], c+1)
			if _, err := fs.w.WriteAt(fsi, fs.start+fs.fsinfo); err != nil {
				return 0, err
			}
		}
		return c, nil
	}
	return 0, errors.New("the FAT boot partition is full")
}

// free releases clusters and updates FSInfo's free count.
func (fs *Editor) free(cs []uint32) error {
	for _, c := range cs {
		if err := fs.set(c, 0); err != nil {
			return err
		}
	}
	if fs.fsinfo == 0 || len(cs) == 0 {
		return nil
	}
	fsi := make([]byte, 512)
	if _, err := fs.rw.ReadAt(fsi, fs.start+fs.fsinfo); err != nil {
		return err
	}
	if string(fsi[0:4]) != "RRaA" {
		return nil
	}
	if free := binary.LittleEndian.Uint32(fsi[488:]); free != 0xffffffff {
		binary.LittleEndian.PutUint32(fsi[488:], free+uint32(len(cs)))
		_, err := fs.w.WriteAt(fsi, fs.start+fs.fsinfo)
		return err
	}
	return nil
}

// editEntry is a file found in the root directory.
type editEntry struct {
	name    string // long name if any, else the short name
	short   string // 11 bytes as stored
	slots   []int64
	off     int64 // absolute offset of the short entry
	cluster uint32
	size    uint32
	isDir   bool
}

// rootDir reads the root directory: its entries and the free slots
// (absolute offsets, in order; ends with the end-of-directory marker).
func (fs *Editor) rootDir() (ents []editEntry, free []int64, chain []uint32, err error) {
	chain, err = fs.chain(fs.rootClus)
	if err != nil {
		return nil, nil, nil, err
	}
	buf := make([]byte, fs.clusterSz)
	var lfn []uint16
	var lfnSlots []int64
	end := false
	for _, c := range chain {
		if _, err := fs.rw.ReadAt(buf, fs.clusterOff(c)); err != nil {
			return nil, nil, nil, err
		}
		for i := int64(0); i < fs.clusterSz; i += 32 {
			e, off := buf[i:i+32], fs.clusterOff(c)+i
			switch {
			case end || e[0] == 0:
				end = true
				free = append(free, off)
				lfn, lfnSlots = nil, nil
				continue
			case e[0] == 0xe5:
				free = append(free, off)
				lfn, lfnSlots = nil, nil
				continue
			case e[11] == 0x0f: // long name slot
				if e[0]&0x40 != 0 {
					lfn, lfnSlots = nil, nil
				}
				var part []uint16
				for _, r := range [][2]int{{1, 11}, {14, 26}, {28, 32}} {
					for j := r[0]; j < r[1]; j += 2 {
						part = append(part, binary.LittleEndian.Uint16(e[j:]))
					}
				}
				lfn = append(part, lfn...)
				lfnSlots = append(lfnSlots, off)
				continue
			}
			de := editEntry{short: string(e[0:11]), off: off, slots: lfnSlots,
				cluster: uint32(binary.LittleEndian.Uint16(e[20:]))<<16 | uint32(binary.LittleEndian.Uint16(e[26:])),
				size:    binary.LittleEndian.Uint32(e[28:]), isDir: e[11]&0x10 != 0}
			if e[11]&0x08 == 0 { // not the volume label
				de.name = shortName(e[0:11])
				if len(lfn) > 0 {
					n := 0
					for n < len(lfn) && lfn[n] != 0 && lfn[n] != 0xffff {
						n++
					}
					de.name = string(utf16.Decode(lfn[:n]))
				}
				ents = append(ents, de)
			}
			lfn, lfnSlots = nil, nil
		}
	}
	return ents, free, chain, nil
}

func shortName(b []byte) string {
	base, ext := strings.TrimRight(string(b[0:8]), " "), strings.TrimRight(string(b[8:11]), " ")
	if ext != "" {
		return base + "." + ext
	}
	return base
}

func (fs *Editor) find(name string) (*editEntry, error) {
	ents, _, _, err := fs.rootDir()
	if err != nil {
		return nil, err
	}
	for i := range ents {
		if strings.EqualFold(ents[i].name, name) && !ents[i].isDir {
			return &ents[i], nil
		}
	}
	return nil, nil
}

// ReadFile reads a root directory file; ok is false if there is none.
func (fs *Editor) ReadFile(name string) (data []byte, ok bool, err error) {
	e, err := fs.find(name)
	if err != nil || e == nil {
		return nil, false, err
	}
	cs, err := fs.chain(e.cluster)
	if err != nil {
		return nil, false, err
	}
	if int64(len(cs))*fs.clusterSz < int64(e.size) {
		return nil, false, fmt.Errorf("%s: cluster chain shorter than the file", name)
	}
	data = make([]byte, e.size)
	for i := int64(0); i < int64(e.size); i += fs.clusterSz {
		n := min(fs.clusterSz, int64(e.size)-i)
		if _, err := fs.rw.ReadAt(data[i:i+n], fs.clusterOff(cs[i/fs.clusterSz])); err != nil {
			return nil, false, err
		}
	}
	return data, true, nil
}

// WriteSmall creates or replaces a root directory file whose content fits
// in one cluster, stamped with mtime. name must be a plain ASCII name
// without a dot that does not fit 8.3 (it gets one long-name slot and a
// NAME~N short name).
func (fs *Editor) WriteSmall(name string, content []byte, mtime time.Time) error {
	if int64(len(content)) > fs.clusterSz || len(name) > 13 {
		return errors.New("WriteSmall: content or name too long")
	}
	now := mtime
	e, err := fs.find(name)
	if err != nil {
		return err
	}
	if e != nil && e.cluster >= 2 {
		// Replace in place: same first cluster, the rest of a chain freed.
		cs, err := fs.chain(e.cluster)
		if err != nil {
			return err
		}
		if err := fs.writeCluster(e.cluster, content); err != nil {
			return err
		}
		if len(cs) > 1 {
			if err := fs.set(e.cluster, eoc); err != nil {
				return err
			}
			if err := fs.free(cs[1:]); err != nil {
				return err
			}
		}
		return fs.updateEntry(e.off, e.cluster, uint32(len(content)), now)
	}
	c, err := fs.alloc()
	if err != nil {
		return err
	}
	if err := fs.writeCluster(c, content); err != nil {
		return err
	}
	if e != nil { // an empty file without a cluster
		return fs.updateEntry(e.off, c, uint32(len(content)), now)
	}
	return fs.addEntry(name, c, uint32(len(content)), now)
}

func (fs *Editor) writeCluster(c uint32, content []byte) error {
	b := make([]byte, fs.clusterSz)
	copy(b, content)
	_, err := fs.w.WriteAt(b, fs.clusterOff(c))
	return err
}

// fatTime is t as a FAT date and time, by the writer's rule (dosTime:
// UTC, clamped to 1980..2107).
func fatTime(t time.Time) (date, tm uint16) {
	st := dosTime(t.Unix())
	return st.date, st.time
}

func (fs *Editor) updateEntry(off int64, cluster, size uint32, now time.Time) error {
	e := make([]byte, 32)
	if _, err := fs.rw.ReadAt(e, off); err != nil {
		return err
	}
	d, tm := fatTime(now)
	binary.LittleEndian.PutUint16(e[18:], d) // access date
	binary.LittleEndian.PutUint16(e[20:], uint16(cluster>>16))
	binary.LittleEndian.PutUint16(e[22:], tm)
	binary.LittleEndian.PutUint16(e[24:], d)
	binary.LittleEndian.PutUint16(e[26:], uint16(cluster))
	binary.LittleEndian.PutUint32(e[28:], size)
	_, err := fs.w.WriteAt(e, off)
	return err
}

// addEntry writes a long-name slot and a short entry for a new file in the
// root directory, extending the directory by a cluster if it is full.
func (fs *Editor) addEntry(name string, cluster, size uint32, now time.Time) error {
	ents, free, chain, err := fs.rootDir()
	if err != nil {
		return err
	}
	short, err := uniqueShortName(name, ents)
	if err != nil {
		return err
	}
	lfnOff, shortOff, err := fs.entrySlots(free, chain)
	if err != nil {
		return err
	}
	// The short entry first: if the directory's end marker moves, the slot
	// after it must still read as the end (it does: it is zero or free).
	if _, err := fs.w.WriteAt(shortEntry(short, cluster, size, now), shortOff); err != nil {
		return err
	}
	_, err = fs.w.WriteAt(longEntry(name, short), lfnOff)
	return err
}

// uniqueShortName makes an 8.3 name nobody in ents has: NAME~N.
func uniqueShortName(name string, ents []editEntry) ([11]byte, error) {
	up := strings.ToUpper(strings.Map(func(r rune) rune {
		if r < 0x21 || r > 0x7e || strings.ContainsRune(`"*+,./:;<=>?[\]|`, r) {
			return '_'
		}
		return r
	}, name))
	for n := 1; n < 1000; n++ {
		tail := fmt.Sprintf("~%d", n)
		cand := fmt.Sprintf("%-11s", up[:min(len(up), 8-len(tail))]+tail)
		taken := false
		for _, e := range ents {
			taken = taken || e.short == cand
		}
		if !taken {
			return [11]byte([]byte(cand)), nil
		}
	}
	return [11]byte{}, errors.New("no free short name")
}

// entrySlots finds two consecutive free slots for a long-name entry and
// its short entry, in the same cluster run (the directory's clusters are
// read in chain order; slots at a cluster boundary are consecutive in the
// directory too), or grows the directory by a cluster.
func (fs *Editor) entrySlots(free []int64, chain []uint32) (lfnOff, shortOff int64, err error) {
	for i := 0; i+1 < len(free); i++ {
		if fs.slotIndex(chain, free[i+1]) == fs.slotIndex(chain, free[i])+1 {
			return free[i], free[i+1], nil
		}
	}
	c, err := fs.alloc()
	if err != nil {
		return 0, 0, err
	}
	if err := fs.writeCluster(c, nil); err != nil {
		return 0, 0, err
	}
	if err := fs.set(chain[len(chain)-1], c); err != nil {
		return 0, 0, err
	}
	// The last slot of the old chain may be free: use it and the next.
	if len(free) > 0 && fs.slotIndex(chain, free[len(free)-1]) == len(chain)*int(fs.clusterSz/32)-1 {
		return free[len(free)-1], fs.clusterOff(c), nil
	}
	return fs.clusterOff(c), fs.clusterOff(c) + 32, nil
}

// shortEntry is the 32-byte directory entry of a file: archive bit,
// creation, access and write times now, first cluster and size.
func shortEntry(short [11]byte, cluster, size uint32, now time.Time) []byte {
	se := make([]byte, 32)
	copy(se, short[:])
	se[11] = 0x20 // archive
	d, tm := fatTime(now)
	binary.LittleEndian.PutUint16(se[14:], tm)
	binary.LittleEndian.PutUint16(se[16:], d)
	binary.LittleEndian.PutUint16(se[18:], d)
	binary.LittleEndian.PutUint16(se[20:], uint16(cluster>>16))
	binary.LittleEndian.PutUint16(se[22:], tm)
	binary.LittleEndian.PutUint16(se[24:], d)
	binary.LittleEndian.PutUint16(se[26:], uint16(cluster))
	binary.LittleEndian.PutUint32(se[28:], size)
	return se
}

// longEntry is the one VFAT long-name slot for name (up to 13 UTF-16
// units, NUL-terminated, 0xffff padded), tied to short by its checksum.
func longEntry(name string, short [11]byte) []byte {
	le := bytes.Repeat([]byte{0xff}, 32)
	le[0] = 0x41 // last (and only) long-name slot, number 1
	le[11], le[12], le[13] = 0x0f, 0, lfnChecksum(short)
	le[26], le[27] = 0, 0
	u := append(utf16.Encode([]rune(name)), 0)
	i := 0
	for _, r := range [][2]int{{1, 11}, {14, 26}, {28, 32}} {
		for j := r[0]; j < r[1]; j += 2 {
			if i < len(u) {
				binary.LittleEndian.PutUint16(le[j:], u[i])
			}
			i++
		}
	}
	return le
}

// slotIndex is the index of the 32-byte slot at absolute offset off in
// the directory whose clusters are chain.
func (fs *Editor) slotIndex(chain []uint32, off int64) int {
	for i, c := range chain {
		if o := fs.clusterOff(c); off >= o && off < o+fs.clusterSz {
			return i*int(fs.clusterSz/32) + int((off-o)/32)
		}
	}
	return -1
}

// Remove deletes a root directory file and frees its clusters; false if
// there was none.
func (fs *Editor) Remove(name string) (bool, error) {
	e, err := fs.find(name)
	if err != nil || e == nil {
		return false, err
	}
	for _, off := range append(append([]int64(nil), e.off), e.slots...) {
		if _, err := fs.w.WriteAt([]byte{0xe5}, off); err != nil {
			return false, err
		}
	}
	cs, err := fs.chain(e.cluster)
	if err != nil {
		return true, err
	}
	return true, fs.free(cs)
}
