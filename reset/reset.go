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
	"syscall"

	"github.com/rfsbuild/rfs/datapart"
	"github.com/rfsbuild/rfs/ext4fs/ext4sb"
	"github.com/rfsbuild/rfs/flash"
	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/ptable"
)

// Target is an rfs image file or a whole block device holding one.
type Target struct {
	Path   string
	Device bool             // a block device (else a regular file)
	Size   int64            // bytes
	Boot   ptable.Partition // the FAT boot partition (flag file)
	Data   ptable.Partition // the ext4 data partition (labelled rfs-data)

	disk *flash.Disk // devices only
	sys  flash.System
}

// ErrDataDamaged means the partition where the data partition belongs
// holds no ext4 labelled rfs-data: its superblock is damaged.
var ErrDataDamaged = errors.New("the data partition's superblock is damaged")

// ErrNoData means the image has no data partition: nothing to reset.
var ErrNoData = errors.New("no data partition")

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
	if err := t.findParts(); err != nil {
		return nil, err
	}
	return t, nil
}

// findParts reads the partition table and finds the boot and data
// partitions by their roles (image.Image: rfs.json's layout, or GPT names
// and MBR positions for an image from an rfs before it), and checks that
// the data partition holds the ext4 rfs builds.
func (t *Target) findParts() error {
	img, err := image.OpenImage(t.Path)
	if err != nil {
		return err
	}
	defer img.Close()
	// The device node knows the size (sysfs's can be stale for a card
	// swapped in a reader).
	t.Size = img.Size()
	data, ok := img.Data()
	if !ok {
		why := "its layout in rfs.json names none"
		if img.Inferred {
			why = "an image built before rfs had one, or not an rfs image"
		}
		return fmt.Errorf("%s: %w: %s", t.Path, ErrNoData, why)
	}
	t.Data = tablePart(data)
	if label := ext4Label(img.Section(data.Placed), 0); label != datapart.Label {
		return damagedData(t.Path, t.Device, t.Data, label)
	}
	boot, err := img.Boot()
	if err != nil {
		return fmt.Errorf("%s: %w", t.Path, err)
	}
	t.Boot = tablePart(boot)
	return nil
}

// tablePart is p as the partition table entry reset works with.
func tablePart(p image.Part) ptable.Partition {
	return ptable.Partition{Number: p.Index, PARTUUID: p.GUID, Start: p.Start, Size: p.Size, Type: p.Type, Name: p.Name}
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
		flags |= os.O_EXCL
	}
	f, err = os.OpenFile(path, flags, 0)
	if errors.Is(err, syscall.EBUSY) {
		return nil, 0, fmt.Errorf("%s is in use (mounted or held by another program): %w", path, err)
	}
	return f, start, err
}

// damagedData says what is wrong with the data partition p and what to do.
func damagedData(path string, device bool, p ptable.Partition, label string) error {
	node, loop := partitionNode(path, p.Number), ""
	if !device {
		node = "LOOP"
		loop = fmt.Sprintf(" (LOOP from losetup --find --show --offset %d --sizelimit %d %s)", p.Start, p.Size, path)
	}
	if label != "" {
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

// PartitionNode is the device node of partition p on a block device
// target, "" for an image file or when the kernel made none.
func (t *Target) PartitionNode(p ptable.Partition) string { return t.partNode(p) }
