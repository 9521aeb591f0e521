package fat

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"
	"unicode/utf16"
)

// editEntry is one live entry of a directory being edited.
type editEntry struct {
	name    string   // long name if any (and its checksum matches), else the short name
	short   [11]byte // as stored
	attr    byte
	slots   []int64 // absolute offsets of its long-name slots
	off     int64   // absolute offset of the short entry
	cluster uint32
	size    uint32
}

func (e *editEntry) isDir() bool { return e.attr&attrDir != 0 }

// editDir is a directory read for editing.
type editDir struct {
	path    string // for messages
	first   uint32
	chain   []uint32
	ents    []editEntry
	slotOff []int64 // absolute offset of every slot, in directory order
	head    []byte  // first byte of every slot
	end     int     // index of the end marker, len(slotOff) if none
}

// free reports whether slot i may take a new entry.
func (d *editDir) free(i int) bool { return i >= d.end || d.head[i] == 0xe5 }

// readDir reads the directory whose chain starts at first, bounded by
// FAT's 65536 entries (a longer chain loops).
func (fs *Editor) readDir(first uint32, path string) (*editDir, error) {
	d := &editDir{path: path, first: first}
	maxClusters := int((maxDirBytes + fs.clusterSz - 1) / fs.clusterSz)
	for c := first; ; c = fs.get(c) {
		if !fs.valid(c) {
			return nil, fmt.Errorf("directory %s: cluster %#x out of range", dirName(path), c)
		}
		if len(d.chain) >= maxClusters {
			return nil, fmt.Errorf("directory %s: cluster chain loops or exceeds FAT's 65536 entries", dirName(path))
		}
		d.chain = append(d.chain, c)
		if fs.get(c) >= eocMin {
			break
		}
	}
	buf := make([]byte, fs.clusterSz)
	var lfn lfnState
	d.end = -1
	for _, c := range d.chain {
		if _, err := fs.rw.ReadAt(buf, fs.clusterOff(c)); err != nil {
			return nil, fmt.Errorf("directory %s: read cluster %d: %w", dirName(path), c, err)
		}
		for i := int64(0); i < fs.clusterSz; i += slotSize {
			e, off := buf[i:i+slotSize], fs.clusterOff(c)+i
			d.slotOff = append(d.slotOff, off)
			d.head = append(d.head, e[0])
			switch {
			case d.end >= 0:
			case e[0] == 0:
				d.end = len(d.slotOff) - 1
			case e[0] == 0xe5:
				lfn = lfnState{}
			case e[11]&0x3f == attrLFN:
				lfn.add(e, off)
			default:
				if e[11]&attrVolumeID == 0 {
					d.ents = append(d.ents, lfn.entry(e, off))
				}
				lfn = lfnState{}
			}
		}
	}
	if d.end < 0 {
		d.end = len(d.slotOff)
	}
	return d, nil
}

// lfnState gathers the long-name slots before a short entry.
type lfnState struct {
	units []uint16
	slots []int64
	sum   byte
	next  int // ordinal expected next, 0 if the sequence is broken
}

func (l *lfnState) add(e []byte, off int64) {
	ord := int(e[0] & 0x3f)
	if e[0]&lfnLast != 0 {
		*l = lfnState{sum: e[13], next: ord}
	}
	if l.next == 0 || ord != l.next || e[13] != l.sum || ord > 20 {
		l.next = 0
		return
	}
	var part []uint16
	for _, pos := range [13]int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30} {
		part = append(part, binary.LittleEndian.Uint16(e[pos:]))
	}
	l.units = append(part, l.units...)
	l.slots = append(l.slots, off)
	l.next--
}

// entry is the short entry e with the long name gathered before it, if
// that is complete and its checksum is e's (else a stale long name).
func (l *lfnState) entry(e []byte, off int64) editEntry {
	le := binary.LittleEndian
	de := editEntry{short: [11]byte(e[0:11]), attr: e[11], off: off,
		cluster: uint32(le.Uint16(e[20:]))<<16 | uint32(le.Uint16(e[26:])),
		size:    le.Uint32(e[28:])}
	de.name = shortName(e[0:11])
	if len(l.units) > 0 && l.next == 0 && lfnChecksum(de.short) == l.sum && len(l.slots) > 0 {
		n := 0
		for n < len(l.units) && l.units[n] != 0 && l.units[n] != 0xffff {
			n++
		}
		de.name = string(utf16.Decode(l.units[:n]))
		de.slots = l.slots
	}
	return de
}

func shortName(b []byte) string {
	base, ext := strings.TrimRight(string(b[0:8]), " "), strings.TrimRight(string(b[8:11]), " ")
	if ext != "" {
		return base + "." + ext
	}
	return base
}

// find returns the entry called name (either its long or its short name,
// case-insensitively, as FAT drivers match), nil if none.
func (d *editDir) find(name string) *editEntry {
	for i := range d.ents {
		e := &d.ents[i]
		if e.name == "." || e.name == ".." {
			continue
		}
		if strings.EqualFold(e.name, name) || strings.EqualFold(shortName(e.short[:]), name) {
			return e
		}
	}
	return nil
}

// splitPath splits a slash-separated path into its names, at most
// maxWalkDepth of them; "" and "/" are the root (no names).
func splitPath(path string) ([]string, error) {
	var out []string
	for _, n := range strings.Split(path, "/") {
		switch n {
		case "":
			continue
		case ".", "..":
			return nil, fmt.Errorf("%s: %q is not allowed in a path", path, n)
		}
		out = append(out, n)
	}
	if len(out) > maxWalkDepth {
		return nil, fmt.Errorf("%s: deeper than %d levels", path, maxWalkDepth)
	}
	return out, nil
}

// dirAt reads the directory names (from the root).
func (fs *Editor) dirAt(names []string) (*editDir, error) {
	d, err := fs.readDir(fs.rootClus, "")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		e := d.find(n)
		switch {
		case e == nil:
			return nil, fmt.Errorf("%s/%s: %w", d.path, n, ErrNotExist)
		case !e.isDir():
			return nil, fmt.Errorf("%s/%s: not a directory", d.path, n)
		}
		if d, err = fs.readDir(e.cluster, d.path+"/"+n); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func parentOf(names []string) []string { return names[:len(names)-1] }

// lookup finds path: its directory and its entry (nil if the directory
// exists but the name does not).
func (fs *Editor) lookup(path string) (*editDir, *editEntry, string, error) {
	names, err := splitPath(path)
	if err != nil {
		return nil, nil, "", err
	}
	if len(names) == 0 {
		return nil, nil, "", fmt.Errorf("%q: the root directory", path)
	}
	d, err := fs.dirAt(parentOf(names))
	if err != nil {
		return nil, nil, "", err
	}
	name := names[len(names)-1]
	return d, d.find(name), name, nil
}

// entryBody is bytes 11..31 of a short entry: attributes, times, cluster
// and size.
type entryBody [21]byte

func newBody(attr byte, cluster, size uint32, mtime time.Time) entryBody {
	var b entryBody
	se := shortEntry([11]byte{}, cluster, size, mtime)
	copy(b[:], se[11:])
	b[0] = attr
	return b
}

// addEntry adds name to d with the given body: long-name slots unless
// name is its own upper-case 8.3 name, and a short name unique in d. It
// grows the directory when no run of free slots is long enough; the new
// clusters are zeroed and linked (and synced) before any entry is written.
func (fs *Editor) addEntry(d *editDir, name string, body entryBody) error {
	if err := checkName(name); err != nil {
		return err
	}
	slots, err := fs.entryBytes(d, name, body)
	if err != nil {
		return err
	}
	n := len(slots) / slotSize
	i := firstRun(d, n)
	if i+n > maxDirSlots {
		return fmt.Errorf("directory %s is full (65536 entries)", dirName(d.path))
	}
	if err := fs.growDir(d, i+n); err != nil {
		return err
	}
	// Last sector first: the one holding the first slot, written last,
	// makes the entry whole (it replaces the end marker, or the long name
	// before an already visible short entry).
	offs := d.slotOff[i : i+n]
	groups := fs.sectorGroups(offs)
	for g := len(groups) - 1; g >= 0; g-- {
		lo, hi := groups[g][0], groups[g][1]
		if _, err := fs.rw.WriteAt(slots[lo*slotSize:hi*slotSize], offs[lo]); err != nil {
			return fmt.Errorf("directory %s: write entry: %w", dirName(d.path), err)
		}
		if g > 0 {
			if err := fs.sync(); err != nil {
				return err
			}
		}
	}
	// Appended at the end: the slot after must read as the end.
	if j := i + n; j >= d.end && j < len(d.head) && d.head[j] != 0 {
		if _, err := fs.rw.WriteAt([]byte{0}, d.slotOff[j]); err != nil {
			return err
		}
	}
	return nil
}

// entryBytes encodes name's long-name slots and short entry.
func (fs *Editor) entryBytes(d *editDir, name string, body entryBody) ([]byte, error) {
	namer := newShortNamer()
	for _, e := range d.ents {
		namer.reserve(e.short)
	}
	short, _ := asShort(name)
	// An upper-case 8.3 name is its own short name, unless another entry
	// (a long name's generated one) has it: then it gets a long name too.
	long := needsLFN(name) || !namer.reserve(short)
	if long {
		var err error
		if short, err = namer.generate(name); err != nil {
			return nil, err
		}
	}
	b := make([]byte, slotsFor(name)*slotSize)
	off := 0
	if long {
		off = putLFN(b, 0, name, short)
	}
	copy(b[off:], short[:])
	copy(b[off+11:], body[:])
	return b, nil
}

// growNeed is the number of clusters adding name to d takes.
func (fs *Editor) growNeed(d *editDir, name string) int64 {
	n := slotsFor(name)
	extra := int64(firstRun(d, n) + n - len(d.head))
	return max(0, (extra*slotSize+fs.clusterSz-1)/fs.clusterSz)
}

// firstRun is the index of the first run of n free slots (possibly
// running past the directory's last cluster).
func firstRun(d *editDir, n int) int {
	run := 0
	for i := 0; i < len(d.head); i++ {
		if !d.free(i) {
			run = 0
			continue
		}
		if run++; run == n {
			return i + 1 - n
		}
	}
	return len(d.head) - run
}

// growDir extends d until it has at least slots slots (capped at FAT's
// maximum): zeroed clusters, linked to its chain and made durable.
func (fs *Editor) growDir(d *editDir, slots int) error {
	per := int(fs.clusterSz / slotSize)
	slots = min(slots, maxDirSlots)
	if slots <= len(d.head) {
		return nil
	}
	cs, err := fs.alloc(int64((slots - len(d.head) + per - 1) / per))
	if err != nil {
		return fmt.Errorf("directory %s: %w", dirName(d.path), err)
	}
	zero := make([]byte, fs.clusterSz)
	for _, c := range cs {
		if _, err := fs.rw.WriteAt(zero, fs.clusterOff(c)); err != nil {
			fs.release(cs)
			return fmt.Errorf("directory %s: zero cluster %d: %w", dirName(d.path), c, err)
		}
		for i := int64(0); i < fs.clusterSz; i += slotSize {
			d.slotOff = append(d.slotOff, fs.clusterOff(c)+i)
			d.head = append(d.head, 0)
		}
	}
	fs.set(d.chain[len(d.chain)-1], cs[0])
	d.chain = append(d.chain, cs...)
	return fs.commitFAT()
}

// deleteEntry marks e's slots deleted, a sector at a time in order (with
// syncs between): the long-name slots go first, so that at every step the
// entry is whole or a plain short-name entry.
func (fs *Editor) deleteEntry(e *editEntry) error {
	offs := append(append([]int64(nil), e.slots...), e.off)
	groups := fs.sectorGroups(offs)
	for g, r := range groups {
		b := make([]byte, (r[1]-r[0])*slotSize)
		if _, err := fs.rw.ReadAt(b, offs[r[0]]); err != nil {
			return fmt.Errorf("delete %s: %w", e.name, err)
		}
		for i := 0; i < len(b); i += slotSize {
			b[i] = 0xe5
		}
		if _, err := fs.rw.WriteAt(b, offs[r[0]]); err != nil {
			return fmt.Errorf("delete %s: %w", e.name, err)
		}
		if g+1 < len(groups) {
			if err := fs.sync(); err != nil {
				return err
			}
		}
	}
	return nil
}

// sectorGroups splits slots (absolute offsets, in directory order) into
// index ranges [lo,hi) of slots adjacent on disk within one sector: each
// is one write, which a disk does whole.
func (fs *Editor) sectorGroups(offs []int64) [][2]int {
	var out [][2]int
	for i := 0; i < len(offs); {
		j := i + 1
		for j < len(offs) && offs[j] == offs[j-1]+slotSize && offs[j]/fs.bps == offs[i]/fs.bps {
			j++
		}
		out = append(out, [2]int{i, j})
		i = j
	}
	return out
}

// setBody rewrites bytes 11..31 of e's short entry: the one write that
// switches a name to another chain.
func (fs *Editor) setBody(e *editEntry, body entryBody) error {
	if _, err := fs.rw.WriteAt(body[:], e.off+11); err != nil {
		return fmt.Errorf("write entry of %s: %w", e.name, err)
	}
	return nil
}

func (fs *Editor) readBody(e *editEntry) (entryBody, error) {
	var b entryBody
	_, err := fs.rw.ReadAt(b[:], e.off+11)
	return b, err
}

// shortEntry is the 32-byte directory entry of a file: archive bit,
// creation, access and write times mtime (by the writer's rule: UTC,
// clamped to 1980..2107), first cluster and size.
func shortEntry(short [11]byte, cluster, size uint32, mtime time.Time) []byte {
	se := make([]byte, 32)
	copy(se, short[:])
	se[11] = attrArchive
	st := dosTime(mtime.Unix())
	le := binary.LittleEndian
	le.PutUint16(se[14:], st.time)
	le.PutUint16(se[16:], st.date)
	le.PutUint16(se[18:], st.date)
	le.PutUint16(se[20:], uint16(cluster>>16))
	le.PutUint16(se[22:], st.time)
	le.PutUint16(se[24:], st.date)
	le.PutUint16(se[26:], uint16(cluster))
	le.PutUint32(se[28:], size)
	return se
}
