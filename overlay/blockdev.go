package overlay

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/rfsbuild/rfs/bootparam"
	"github.com/rfsbuild/rfs/ptable"
)

// BlockDevice is a block device seen in sysfs, with what the init learnt
// about it. Disks carry their partition Table (or TableErr).
type BlockDevice struct {
	Name     string        // sysfs name: vda, vda2, mmcblk0p2
	DevName  string        // node under /dev (from uevent DEVNAME): vda2, mapper/x
	Dev      string        // "major:minor"
	Disk     string        // parent disk (partitions only)
	PartN    int           // partition number (partitions only)
	Start    int64         // bytes (partitions only)
	Size     int64         // bytes
	PARTUUID string        // from the parent's table (partitions only)
	Table    *ptable.Table // disks only, if readable
	TableErr string        // disks only, why no table
}

// BlockScanner lists block devices from a sysfs tree and reads partition
// tables through device nodes in a /dev tree. Paths are injectable for tests.
type BlockScanner struct {
	SysBlock string // normally /sys/class/block
	DevDir   string // normally /dev
	// cache of parsed tables, keyed by name+dev+size
	tables  map[string]*ptable.Table
	noTable map[string]string
	// reads still running: a hung device (QEMU's second Pi SD controller,
	// a dying USB stick) must not stall the scan of every other disk.
	pending map[string]*tableRead
	readFn  func(BlockDevice) (*ptable.Table, error) // tests: stands in for readTable
}

// tableRead is a partition table read running in the background.
type tableRead struct {
	done  chan struct{}
	table *ptable.Table
	err   error
}

// readWait is how long a scan waits for a disk's table before reporting it
// as not answering and moving on; the read goes on and a later scan picks
// up its result.
const readWait = 750 * time.Millisecond

func readSysString(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func readSysInt(p string) (int64, bool) {
	v, err := strconv.ParseInt(readSysString(p), 10, 64)
	return v, err == nil
}

func (s *BlockScanner) devName(name string) string {
	for _, l := range strings.Split(readSysString(filepath.Join(s.SysBlock, name, "uevent")), "\n") {
		if v, ok := strings.CutPrefix(l, "DEVNAME="); ok && v != "" && !strings.Contains(v, "..") {
			return v
		}
	}
	return strings.ReplaceAll(name, "!", "/")
}

// Scan lists all block devices (disks first, each followed by its
// partitions) and reads each disk's partition table.
func (s *BlockScanner) Scan() []BlockDevice {
	ents, err := os.ReadDir(s.SysBlock)
	if err != nil {
		return nil
	}
	if s.tables == nil {
		s.tables, s.noTable = map[string]*ptable.Table{}, map[string]string{}
	}
	if s.pending == nil {
		s.pending = map[string]*tableRead{}
	}
	deadline := time.Now().Add(readWait) // for all table reads of this scan together
	var disks []string
	for _, e := range ents {
		if _, err := os.Stat(filepath.Join(s.SysBlock, e.Name(), "partition")); err == nil {
			continue // partitions are listed under their disk
		}
		disks = append(disks, e.Name())
	}
	sort.Strings(disks)
	type diskEntry struct {
		disk  BlockDevice
		parts []BlockDevice
		key   string
	}
	var entries []diskEntry
	for _, d := range disks {
		dir := filepath.Join(s.SysBlock, d)
		sectors, _ := readSysInt(filepath.Join(dir, "size"))
		disk := BlockDevice{Name: d, DevName: s.devName(d), Dev: readSysString(filepath.Join(dir, "dev")), Size: sectors * 512}
		var parts []BlockDevice
		if sub, err := os.ReadDir(dir); err == nil {
			for _, e := range sub {
				pd := filepath.Join(dir, e.Name())
				n, ok := readSysInt(filepath.Join(pd, "partition"))
				if !ok {
					continue
				}
				start, _ := readSysInt(filepath.Join(pd, "start"))
				psize, _ := readSysInt(filepath.Join(pd, "size"))
				parts = append(parts, BlockDevice{
					Name: e.Name(), DevName: s.devName(e.Name()), Dev: readSysString(filepath.Join(pd, "dev")),
					Disk: d, PartN: int(n), Start: start * 512, Size: psize * 512,
				})
			}
		}
		sort.Slice(parts, func(i, j int) bool { return parts[i].PartN < parts[j].PartN })
		key := d + "|" + disk.Dev + "|" + strconv.FormatInt(disk.Size, 10)
		if disk.Size > 0 && s.tables[key] == nil && s.noTable[key] == "" {
			s.startRead(key, disk) // all reads run at once; collected below
		}
		entries = append(entries, diskEntry{disk, parts, key})
	}
	var out []BlockDevice
	for _, e := range entries {
		disk, parts, key := e.disk, e.parts, e.key
		if disk.Size == 0 {
			disk.TableErr = "empty (size 0)"
		} else if t := s.tables[key]; t != nil {
			disk.Table = t
		} else if msg := s.noTable[key]; msg != "" {
			disk.TableErr = msg
		} else if t, err := s.waitRead(key, deadline); err != nil {
			disk.TableErr = err.Error()
			if errors.Is(err, ptable.ErrNoTable) {
				s.noTable[key] = disk.TableErr // read fine, nothing there: don't reread every poll
			}
		} else {
			disk.Table = t
			s.tables[key] = t
		}
		if disk.Table != nil {
			for i := range parts {
				for _, tp := range disk.Table.Partitions {
					if tp.Number == parts[i].PartN {
						parts[i].PARTUUID = tp.PARTUUID
					}
				}
			}
		}
		out = append(out, disk)
		out = append(out, parts...)
	}
	return out
}

// errNoAnswer is reported for a disk whose table read has not returned yet.
var errNoAnswer = errors.New("no answer from the device yet (still reading its partition table)")

// startRead reads d's table in the background, unless a read is already
// running: a read that outlives a scan stays pending (one per disk) and a
// later scan uses its result.
func (s *BlockScanner) startRead(key string, d BlockDevice) {
	if s.pending[key] != nil {
		return
	}
	r := &tableRead{done: make(chan struct{})}
	s.pending[key] = r
	read := s.readTable
	if s.readFn != nil {
		read = s.readFn
	}
	go func() {
		r.table, r.err = read(d)
		close(r.done)
	}()
}

// waitRead waits for a started read until deadline.
func (s *BlockScanner) waitRead(key string, deadline time.Time) (*ptable.Table, error) {
	r := s.pending[key]
	if r == nil {
		return nil, errNoAnswer
	}
	timer := time.NewTimer(max(time.Until(deadline), 0))
	defer timer.Stop()
	select {
	case <-r.done:
	case <-timer.C:
		select {
		case <-r.done: // finished just now
		default:
			return nil, errNoAnswer
		}
	}
	delete(s.pending, key)
	return r.table, r.err
}

func (s *BlockScanner) readTable(d BlockDevice) (*ptable.Table, error) {
	node, err := EnsureNode(s.DevDir, d.DevName, d.Dev)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(node, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ss := 0
	if v, ok := readSysInt(filepath.Join(s.SysBlock, d.Name, "queue", "logical_block_size")); ok && (v == 512 || v == 4096) {
		ss = int(v)
	}
	return ptable.ReadTable(f, d.Size, ss)
}

// EnsureNode returns devDir/devName, creating the block device node with
// the given "major:minor" if it is missing or wrong (devtmpfs normally
// creates it already).
func EnsureNode(devDir, devName, majmin string) (string, error) {
	node := filepath.Join(devDir, devName)
	maj, min, ok := strings.Cut(majmin, ":")
	ma, err1 := strconv.ParseUint(maj, 10, 32)
	mi, err2 := strconv.ParseUint(min, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return "", errors.New(devName + ": bad dev number " + strconv.Quote(majmin))
	}
	want := unix.Mkdev(uint32(ma), uint32(mi))
	var st unix.Stat_t
	if err := unix.Stat(node, &st); err == nil {
		if st.Mode&unix.S_IFMT == unix.S_IFBLK && st.Rdev == want {
			return node, nil
		}
		_ = os.Remove(node)
	}
	_ = os.MkdirAll(filepath.Dir(node), 0o755)
	if err := unix.Mknod(node, unix.S_IFBLK|0o600, int(want)); err != nil && !errors.Is(err, unix.EEXIST) {
		return "", fmt.Errorf("mknod %s (%s): %w", node, majmin, err)
	}
	return node, nil
}

// RootMatch is the result of a successful root lookup.
type RootMatch struct {
	Device   BlockDevice // the partition (or whole device)
	Node     string      // device node path as opened (with the test prefix)
	Path     string      // "/dev/NAME" as seen after switch_root
	PARTUUID string      // empty if unknown
	Table    string      // "gpt", "mbr" or "" for a whole device
}

// Orphan is a partition found in a disk's table for which the kernel has
// no partition device (yet, or at all: a kernel without the MSDOS/EFI
// partition parsers never creates one).
type Orphan struct {
	Disk BlockDevice
	Part ptable.Partition
}

// Lookup searches the devices of one Scan for spec. It returns nil if the
// device is not (yet) there; a non-empty note says why not in detail, and
// orphan is set if the partition is in a table but has no device.
func Lookup(devs []BlockDevice, spec bootparam.RootSpec) (m *RootMatch, note string, orphan *Orphan) {
	switch spec.Kind {
	case bootparam.RootPARTUUID:
		var matches []*RootMatch
		for _, d := range devs {
			if d.Table == nil {
				continue
			}
			tp, ok := d.Table.Find(spec.Value)
			if !ok {
				continue
			}
			var part *BlockDevice
			for i := range devs {
				if devs[i].Disk == d.Name && devs[i].PartN == tp.Number {
					part = &devs[i]
				}
			}
			if part == nil {
				note = "PARTUUID " + spec.Value + " is partition " + strconv.Itoa(tp.Number) + " of " + d.Name +
					" (" + d.Table.Kind + ") but the kernel has no device for it (yet)"
				if orphan == nil {
					orphan = &Orphan{Disk: d, Part: tp}
				}
				continue
			}
			if part.Start != tp.Start {
				note = "PARTUUID " + spec.Value + ": " + part.Name + " starts at byte " + strconv.FormatInt(part.Start, 10) +
					" but the " + d.Table.Kind + " table of " + d.Name + " says " + strconv.FormatInt(tp.Start, 10) + "; ignored"
				continue
			}
			matches = append(matches, &RootMatch{Device: *part, Path: "/dev/" + part.DevName, PARTUUID: tp.PARTUUID, Table: d.Table.Kind})
		}
		if len(matches) == 0 {
			return nil, note, orphan
		}
		if len(matches) > 1 {
			names := []string{}
			for _, m := range matches {
				names = append(names, m.Device.Name)
			}
			note = "PARTUUID " + spec.Value + " found on several devices (" + strings.Join(names, ", ") + "), using " + matches[0].Device.Name
		}
		return matches[0], note, nil
	case bootparam.RootDevice:
		want := strings.TrimPrefix(spec.Value, "/dev/")
		for _, d := range devs {
			if d.DevName == want || d.Name == want {
				return &RootMatch{Device: d, Path: "/dev/" + d.DevName, PARTUUID: d.PARTUUID}, "", nil
			}
		}
		return nil, "", nil
	}
	return nil, "no root given", nil
}

// AddPartition asks the kernel (BLKPG_ADD_PARTITION, what partx -a does)
// to create the device of partition p on the disk at diskNode.
func AddPartition(diskNode string, p ptable.Partition) error {
	fd, err := unix.Open(diskNode, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	part := unix.BlkpgPartition{Start: p.Start, Length: p.Size, Pno: int32(p.Number)}
	arg := unix.BlkpgIoctlArg{
		Op:      unix.BLKPG_ADD_PARTITION,
		Datalen: int32(unsafe.Sizeof(part)),
		Data:    (*byte)(unsafe.Pointer(&part)),
	}
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.BLKPG, uintptr(unsafe.Pointer(&arg))); e != 0 {
		return e
	}
	return nil
}

// FormatDevices renders a scan for the console, one device per line
// (without the "rfs: " prefix).
func FormatDevices(devs []BlockDevice) []string {
	if len(devs) == 0 {
		return []string{"  (no block devices at all: is the disk driver built into the kernel?)"}
	}
	var out []string
	for _, d := range devs {
		if d.Disk == "" {
			l := "  " + d.Name + " (" + d.Dev + ", " + humanSize(d.Size) + ")"
			switch {
			case d.Table != nil:
				l += " " + d.Table.Kind + " disk-id=" + d.Table.DiskID
				if d.Table.Backup {
					l += " (backup GPT header)"
				}
			case d.TableErr != "":
				l += " no partition table: " + d.TableErr
			}
			out = append(out, l)
			continue
		}
		l := "    " + d.Name + " (" + d.Dev + ", " + humanSize(d.Size) + ") partition " + strconv.Itoa(d.PartN)
		if d.PARTUUID != "" {
			l += " PARTUUID=" + d.PARTUUID
		}
		out = append(out, l)
	}
	return out
}

func humanSize(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	v := n
	for v >= 1024*10 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return strconv.FormatInt(v, 10) + " " + units[i]
}
