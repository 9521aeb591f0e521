package flash

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// System is where the host's view of its disks is read from. The zero value
// reads the running system; tests point the fields at fake trees so that
// removable, system and mounted disks can be simulated without having them.
type System struct {
	SysDir    string // sysfs; default /sys
	MountInfo string // default /proc/self/mountinfo
	Swaps     string // default /proc/swaps
	DevDir    string // device nodes for names found in sysfs; default /dev
}

// FakeSystem is a System whose files all live under root (root/sys,
// root/proc/self/mountinfo, root/proc/swaps, root/dev).
func FakeSystem(root string) System {
	return System{
		SysDir:    filepath.Join(root, "sys"),
		MountInfo: filepath.Join(root, "proc/self/mountinfo"),
		Swaps:     filepath.Join(root, "proc/swaps"),
		DevDir:    "/dev",
	}
}

func (s System) sys(p ...string) string {
	d := s.SysDir
	if d == "" {
		d = "/sys"
	}
	return filepath.Join(append([]string{d}, p...)...)
}

func (s System) devDir() string {
	if s.DevDir == "" {
		return "/dev"
	}
	return s.DevDir
}

// Mount is one mounted filesystem found on a disk.
type Mount struct {
	Point  string // mount point
	Source string // as mountinfo shows it, e.g. /dev/sdb1
	FSType string
	On     string // the device name it is on: the disk, a partition or a holder (dm-0)
	RW     bool   // mounted read-write
}

// Disk is a whole block device as sysfs describes it.
type Disk struct {
	Name       string // kernel name: sdb, mmcblk0, loop3
	Path       string // device node, /dev/NAME
	Dev        string // MAJ:MIN
	Size       int64  // bytes (0: no medium)
	Model      string // vendor and model, when sysfs has them
	Removable  bool   // sysfs removable flag, or a USB disk or an SD card
	Transport  string // usb, sd, emmc, nvme, virtio, loop, ... or ""
	ReadOnly   bool   // write-protected (an SD card's lock switch)
	Partitions []string
	// Holders are the devices stacked on the disk or its partitions
	// (device-mapper, md), recursively.
	Holders []string
	Mounts  []Mount
	Swaps   []string // swap areas on it (device names)
	// System says the disk holds the running system: /, /usr, /boot,
	// /boot/efi, /var or /home, or active swap.
	System    bool
	SystemWhy string
}

// systemMounts are mount points whose disk is never a flash target.
var systemMounts = map[string]bool{"/": true, "/usr": true, "/boot": true, "/boot/efi": true, "/efi": true, "/var": true, "/home": true}

// ErrNotBlock is returned by Lookup when the path is not a block device.
var ErrNotBlock = errors.New("not a block device")

func readString(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func readInt(p string) (int64, bool) {
	v, err := strconv.ParseInt(readString(p), 10, 64)
	return v, err == nil
}

// resolve follows symlinks as far as they go; on error it returns p.
func resolve(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}

// List returns the whole disks sysfs shows, sorted by name; with all false
// only flash candidates: removable, USB or SD disks with a medium, never
// the system disk.
func (s System) List(all bool) ([]*Disk, error) {
	ents, err := os.ReadDir(s.sys("block"))
	if err != nil {
		return nil, err
	}
	var out []*Disk
	for _, e := range ents {
		d, err := s.disk(e.Name())
		if err != nil {
			continue
		}
		if !all && (!d.Removable || d.Size == 0 || d.System) {
			continue
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (s System) disk(name string) (*Disk, error) {
	dir := s.sys("block", name)
	d := &Disk{Name: name, Path: filepath.Join(s.devDir(), name), Dev: readString(filepath.Join(dir, "dev"))}
	if d.Dev == "" {
		return nil, fmt.Errorf("%s: no %s", name, filepath.Join(dir, "dev"))
	}
	if n, ok := readInt(filepath.Join(dir, "size")); ok {
		d.Size = n * 512 // sysfs counts 512-byte sectors whatever the device's
	}
	d.ReadOnly = readString(filepath.Join(dir, "ro")) == "1"
	vendor := readString(filepath.Join(dir, "device/vendor"))
	if strings.HasPrefix(vendor, "0x") {
		vendor = "" // a PCI id (virtio), not a name
	}
	d.Model = strings.Join(strings.Fields(vendor+" "+readString(filepath.Join(dir, "device/model"))), " ")
	if d.Model == "" {
		d.Model = readString(filepath.Join(dir, "device/name")) // mmc
	}
	link, _ := os.Readlink(dir)
	switch {
	case strings.Contains(link, "/usb"):
		d.Transport = "usb"
	case strings.Contains(link, "/mmc_host/") || strings.HasPrefix(name, "mmcblk"):
		d.Transport = "emmc"
		if t := readString(filepath.Join(dir, "device/type")); t == "SD" {
			d.Transport = "sd"
		}
	case strings.HasPrefix(name, "nvme"):
		d.Transport = "nvme"
	case strings.Contains(link, "/virtio"):
		d.Transport = "virtio"
	case strings.HasPrefix(name, "loop"):
		d.Transport = "loop"
	}
	d.Removable = readString(filepath.Join(dir, "removable")) == "1" || d.Transport == "usb" || d.Transport == "sd"

	// The device tree: the disk, its partitions and everything stacked on them.
	devs := map[string]string{d.Dev: name} // MAJ:MIN -> name
	names := map[string]bool{name: true}
	var holders func(dir string)
	holders = func(dir string) {
		ents, _ := os.ReadDir(filepath.Join(dir, "holders"))
		for _, e := range ents {
			h := e.Name()
			if names[h] {
				continue
			}
			names[h] = true
			d.Holders = append(d.Holders, h)
			hdir := s.sys("block", h)
			if mm := readString(filepath.Join(hdir, "dev")); mm != "" {
				devs[mm] = h
			}
			holders(hdir)
		}
	}
	holders(dir)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		pdir := filepath.Join(dir, e.Name())
		if _, err := os.Stat(filepath.Join(pdir, "partition")); err != nil {
			continue
		}
		d.Partitions = append(d.Partitions, e.Name())
		names[e.Name()] = true
		if mm := readString(filepath.Join(pdir, "dev")); mm != "" {
			devs[mm] = e.Name()
		}
		holders(pdir)
	}
	sort.Strings(d.Partitions)

	mounts, err := s.mounts()
	if err != nil {
		return nil, err
	}
	for _, m := range mounts {
		on, ok := devs[m.dev]
		if !ok {
			// btrfs and others show an anonymous MAJ:MIN: go by the source.
			if src := deviceName(m.Source); names[src] {
				on, ok = src, true
			}
		}
		if !ok {
			continue
		}
		d.Mounts = append(d.Mounts, Mount{Point: m.Point, Source: m.Source, FSType: m.FSType, On: on, RW: m.rw})
		if systemMounts[m.Point] && !d.System {
			d.System, d.SystemWhy = true, fmt.Sprintf("it holds %s (%s on %s)", m.Point, m.FSType, on)
		}
	}
	for _, sw := range s.swaps() {
		if n := deviceName(sw); names[n] {
			d.Swaps = append(d.Swaps, n)
			if !d.System {
				d.System, d.SystemWhy = true, fmt.Sprintf("it holds active swap (%s)", n)
			}
		}
	}
	return d, nil
}

// deviceName is the kernel name of a device path (/dev/mapper/x -> dm-0).
func deviceName(src string) string {
	if !strings.HasPrefix(src, "/dev/") {
		return ""
	}
	return filepath.Base(resolve(src))
}

type mountEntry struct {
	dev, Point, FSType, Source string
	rw                         bool // neither the mount nor its superblock is read-only
}

// mounts parses mountinfo (proc(5)).
func (s System) mounts() ([]mountEntry, error) {
	p := s.MountInfo
	if p == "" {
		p = "/proc/self/mountinfo"
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	var out []mountEntry
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		sep := -1
		for i, x := range f {
			if x == "-" && i >= 6 {
				sep = i
				break
			}
		}
		if sep < 0 || len(f) < sep+3 {
			continue
		}
		rw := !slices.Contains(strings.Split(f[5], ","), "ro")
		if len(f) > sep+3 && slices.Contains(strings.Split(f[sep+3], ","), "ro") {
			rw = false
		}
		out = append(out, mountEntry{dev: f[2], Point: unescape(f[4]), FSType: f[sep+1], Source: unescape(f[sep+2]), rw: rw})
	}
	return out, nil
}

func (s System) swaps() []string {
	p := s.Swaps
	if p == "" {
		p = "/proc/swaps"
	}
	b, _ := os.ReadFile(p)
	var out []string
	for i, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); i > 0 && len(f) > 0 {
			out = append(out, unescape(f[0]))
		}
	}
	return out
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// HumanSize formats n bytes with a binary unit.
func HumanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
