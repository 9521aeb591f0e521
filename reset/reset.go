// Package reset is the host side of an rfs factory reset (`rfs reset`):
// on an image file or on a card in a reader, it either sets the flag file
// on the FAT boot partition that the init acts on at the next boot (Flag),
// or wipes the data partition's upper layer right away (Now), with the
// same code the init runs (datapart.Dir.Reset).
//
// The contract of the data partition and of the flag file is in the
// overlay package's documentation and package datapart ("Data partition").
package reset

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/rfsbuild/rfs/datapart"
	"github.com/rfsbuild/rfs/ext4fs/ext4sb"
	"github.com/rfsbuild/rfs/flash"
	"github.com/rfsbuild/rfs/ptable"
)

// Target is an rfs image file or a whole block device holding one.
type Target struct {
	Path   string
	Device bool  // a block device (else a regular file)
	Size   int64 // bytes
	Table  *ptable.Table
	Boot   ptable.Partition // the FAT boot partition (flag file)
	Data   ptable.Partition // the ext4 data partition labelled rfs-data

	disk *flash.Disk // devices only
	sys  flash.System
}

// ErrDataDamaged means the partition where the data partition belongs
// holds no ext4 labelled rfs-data: its superblock is damaged.
var ErrDataDamaged = errors.New("the data partition's superblock is damaged")

// ErrNoData means the image has no data partition: nothing to reset.
var ErrNoData = errors.New("no data partition (ext4 labelled " + datapart.Label + ")")

// System is where devices, partitions and mounts are looked up; tests
// replace it.
var System = flash.System{}

// Inspect reads the partition table of path (an image file or a whole
// block device) and finds the boot and data partitions. It refuses a
// partition node, a device or image with a mounted filesystem, and an
// image file locked by another process (QEMU locks the images it runs).
func Inspect(path string) (*Target, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	t := &Target{Path: path, sys: System}
	switch {
	case st.Mode().IsRegular():
		t.Size = st.Size()
		if err := t.checkImageFile(st); err != nil {
			return nil, err
		}
	case st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0:
		t.Device = true
		d, err := t.sys.Lookup(path)
		if err != nil {
			return nil, err
		}
		if err := inUse(path, d); err != nil {
			return nil, err
		}
		t.disk, t.Size = d, d.Size
	default:
		return nil, fmt.Errorf("%s: neither an image file nor a block device", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if t.Device {
		// sysfs's size can be stale for a card swapped in a reader; the
		// device node knows.
		if n, err := f.Seek(0, io.SeekEnd); err == nil && n > 0 {
			t.Size = n
		}
	}
	if t.Table, err = ptable.ReadTable(f, t.Size, 0); err != nil {
		return nil, fmt.Errorf("%s: %w: not an rfs image", path, err)
	}
	what := "image"
	if t.Device {
		what = "device"
	}
	if err := t.Table.Check(t.Size, what); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var haveBoot, haveData bool
	for _, p := range t.Table.Partitions {
		if !haveBoot && isFAT(f, p.Start) {
			t.Boot, haveBoot = p, true
		}
		if ext4Label(f, p.Start) == datapart.Label {
			t.Data, haveData = p, true
		}
	}
	if !haveData {
		if p, ok := dataCandidate(t.Table, haveBoot); ok {
			return nil, damagedData(path, t.Device, f, p)
		}
		return nil, fmt.Errorf("%s: %w: an image built before rfs had one, or not an rfs image", path, ErrNoData)
	}
	if !haveBoot {
		return nil, fmt.Errorf("%s: no FAT boot partition: not an rfs image", path)
	}
	return t, nil
}

// inUse refuses a disk with mounted filesystems or stacked devices.
func inUse(path string, d *flash.Disk) error {
	if len(d.Mounts) > 0 {
		var ms []string
		for _, m := range d.Mounts {
			ms = append(ms, fmt.Sprintf("%s on %s", m.On, m.Point))
		}
		return fmt.Errorf("%s is mounted (%s): unmount it first", path, strings.Join(ms, ", "))
	}
	if len(d.Holders) > 0 {
		return fmt.Errorf("%s is in use by %s (device-mapper, LVM, RAID or LUKS): release it first", path, strings.Join(d.Holders, ", "))
	}
	return nil
}

// checkImageFile refuses an image file that a loop device with mounted
// filesystems is backed by, or that another process holds a lock on (QEMU
// takes locks on the disks it runs).
func (t *Target) checkImageFile(st os.FileInfo) error {
	ents, _ := os.ReadDir(sysPath(t.sys, "block"))
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "loop") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(sysPath(t.sys, "block"), e.Name(), "loop", "backing_file"))
		if err != nil {
			continue
		}
		bst, err := os.Stat(strings.TrimSpace(string(b)))
		if err != nil || !os.SameFile(st, bst) {
			continue
		}
		d, err := t.sys.Lookup("/dev/" + e.Name())
		if err != nil {
			continue
		}
		if err := inUse(t.Path+" (attached as /dev/"+e.Name()+")", d); err != nil {
			return err
		}
	}
	f, err := os.Open(t.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_GETLK, &lk); err == nil && lk.Type != unix.F_UNLCK {
		who := "another process"
		if lk.Pid > 0 {
			who = "process " + strconv.Itoa(int(lk.Pid))
		}
		return fmt.Errorf("%s is locked by %s (a QEMU running it?): stop it first", t.Path, who)
	}
	return nil
}

// partNode returns the device node of partition p of a block device
// target ("" if the kernel made none: use offsets on the whole disk).
func (t *Target) partNode(p ptable.Partition) string {
	if !t.Device || t.disk == nil {
		return ""
	}
	for _, name := range t.disk.Partitions {
		n, err := os.ReadFile(sysPath(t.sys, "class", "block", name, "partition"))
		if err != nil || strings.TrimSpace(string(n)) != strconv.Itoa(p.Number) {
			continue
		}
		node := filepath.Join("/dev", name)
		if st, err := os.Stat(node); err == nil && st.Mode()&os.ModeDevice != 0 {
			return node
		}
	}
	return ""
}

// openPart opens partition p read-write: its own node on a device when
// there is one (offset 0), else the image file or whole disk at p.Start.
// Block devices are opened O_EXCL, which fails while anything mounts them.
func (t *Target) openPart(p ptable.Partition) (f *os.File, start int64, err error) {
	path, start := t.Path, p.Start
	if node := t.partNode(p); node != "" {
		path, start = node, 0
	}
	flags := os.O_RDWR
	if t.Device {
		flags |= unix.O_EXCL
	}
	f, err = os.OpenFile(path, flags, 0)
	if errors.Is(err, unix.EBUSY) {
		return nil, 0, fmt.Errorf("%s is in use (mounted or held by another program): %w", path, err)
	}
	return f, start, err
}

func isFAT(r io.ReaderAt, off int64) bool {
	b := make([]byte, 512)
	if _, err := r.ReadAt(b, off); err != nil {
		return false
	}
	return b[510] == 0x55 && b[511] == 0xaa && string(b[82:87]) == "FAT32"
}

// dataCandidate returns the partition that should be the data partition
// when none carries its label: the GPT partition named rfs-data, or on
// MBR the last of three or more partitions behind a FAT boot partition.
func dataCandidate(t *ptable.Table, haveBoot bool) (ptable.Partition, bool) {
	for _, p := range t.Partitions {
		if p.Name == datapart.Label {
			return p, true
		}
	}
	if t.Kind == ptable.TableMBR && haveBoot && len(t.Partitions) >= 3 {
		return t.Partitions[len(t.Partitions)-1], true
	}
	return ptable.Partition{}, false
}

// damagedData says what is wrong with the data partition p and what to do.
func damagedData(path string, device bool, r io.ReaderAt, p ptable.Partition) error {
	node, loop := partitionNode(path, p.Number), ""
	if !device {
		node = "LOOP"
		loop = fmt.Sprintf(" (LOOP from losetup --find --show --offset %d --sizelimit %d %s)", p.Start, p.Size, path)
	}
	if label := ext4Label(r, p.Start); label != "" {
		return fmt.Errorf("%s: %w: partition %d, where it belongs, is ext4 labelled %q, not %q. Nothing was changed. If it is the data partition, relabel it as root: e2label %s %s%s",
			path, ErrNoData, p.Number, label, datapart.Label, node, datapart.Label, loop)
	}
	return fmt.Errorf("%s: %w: partition %d (bytes %d..%d) has no ext4 superblock (magic 0xef53 missing). Nothing was changed. Repair it as root: e2fsck -f %s%s (e2fsck -b 32768 uses a backup superblock); rfs reset --now works once it mounts again (or re-flash the image to start over)",
		path, ErrDataDamaged, p.Number, p.Start, p.Start+p.Size, node, loop)
}

// partitionNode is the node of partition n of the disk at path, as Linux
// names it (sdb3, mmcblk0p3).
func partitionNode(path string, n int) string {
	if last := path[len(path)-1]; last >= '0' && last <= '9' {
		return fmt.Sprintf("%sp%d", path, n)
	}
	return fmt.Sprintf("%s%d", path, n)
}

// ext4Label returns the label of the ext4 filesystem at off, "" if none.
func ext4Label(r io.ReaderAt, off int64) string {
	sb, err := ext4sb.Read(r, off)
	if err != nil {
		return ""
	}
	return sb.Label
}

func sysPath(s flash.System, p ...string) string {
	d := s.SysDir
	if d == "" {
		d = "/sys"
	}
	return filepath.Join(append([]string{d}, p...)...)
}
