package flash

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeTree builds a fake sysfs + mountinfo under a temp dir.
type fakeTree struct {
	t    *testing.T
	root string
}

func newFakeTree(t *testing.T) *fakeTree {
	f := &fakeTree{t: t, root: t.TempDir()}
	f.write("proc/self/mountinfo", "")
	f.write("proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n")
	return f
}

func (f *fakeTree) write(rel, content string) {
	p := filepath.Join(f.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content+"\n"), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeTree) symlink(target, rel string) {
	p := filepath.Join(f.root, rel)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.Symlink(target, p); err != nil {
		f.t.Fatal(err)
	}
}

// disk adds /sys/block/NAME -> ../devices/BUS/block/NAME with attributes.
func (f *fakeTree) disk(name, bus, majmin, sectors string, attrs map[string]string) {
	dir := "sys/devices/" + bus + "/block/" + name
	f.write(dir+"/dev", majmin)
	f.write(dir+"/size", sectors)
	f.write(dir+"/ro", "0")
	f.write(dir+"/removable", "0")
	for k, v := range attrs {
		f.write(dir+"/"+k, v)
	}
	f.symlink("../devices/"+bus+"/block/"+name, "sys/block/"+name)
	f.symlink("../../devices/"+bus+"/block/"+name, "sys/class/block/"+name)
	os.MkdirAll(filepath.Join(f.root, dir, "holders"), 0o755)
}

func (f *fakeTree) part(disk, name, majmin string) {
	dir := filepath.Join(f.realDir(disk), name)
	rel, _ := filepath.Rel(f.root, dir)
	f.write(rel+"/dev", majmin)
	f.write(rel+"/partition", "1")
	os.MkdirAll(filepath.Join(dir, "holders"), 0o755)
	f.symlink(filepath.Join("../../", strings.TrimPrefix(rel, "sys/")), "sys/class/block/"+name)
}

func (f *fakeTree) realDir(name string) string {
	d, err := filepath.EvalSymlinks(filepath.Join(f.root, "sys/class/block", name))
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

// holder stacks holder (a virtual disk such as dm-0) on dev.
func (f *fakeTree) holder(dev, holder, majmin string) {
	if _, err := os.Stat(filepath.Join(f.root, "sys/block", holder)); err != nil {
		f.disk(holder, "virtual", majmin, "1000", nil)
	}
	rel, _ := filepath.Rel(f.root, filepath.Join(f.realDir(dev), "holders", holder))
	f.symlink("../../"+holder, rel)
}

func (f *fakeTree) mounts(lines ...string) {
	f.write("proc/self/mountinfo", strings.Join(lines, "\n"))
}

func (f *fakeTree) system() System { return FakeSystem(f.root) }

// A laptop: internal NVMe with / and /home, a USB stick with a mounted
// partition, an SD card, a USB disk holding an open LUKS volume, an empty
// card reader, a write-protected card, a loop device.
func standardTree(t *testing.T) *fakeTree {
	f := newFakeTree(t)
	f.disk("nvme0n1", "pci0000:00/0000:00:1d.0/nvme/nvme0", "259:0", "1000215216", map[string]string{"device/model": "Samsung SSD 970"})
	f.part("nvme0n1", "nvme0n1p1", "259:1")
	f.part("nvme0n1", "nvme0n1p2", "259:2")
	f.holder("nvme0n1p2", "dm-1", "254:1")
	f.disk("sdb", "pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.0/host6/target6:0:0/6:0:0:0", "8:16", "60437492", map[string]string{"removable": "1", "device/vendor": "SanDisk", "device/model": "Ultra"})
	f.part("sdb", "sdb1", "8:17")
	f.part("sdb", "sdb2", "8:18")
	f.disk("mmcblk0", "platform/fe340000.mmc/mmc_host/mmc0/mmc0:aaaa", "179:0", "62333952", map[string]string{"device/type": "SD", "device/name": "SC32G"})
	f.part("mmcblk0", "mmcblk0p1", "179:1")
	f.disk("sdc", "pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host7/target7:0:0/7:0:0:0", "8:32", "1953525168", map[string]string{"device/vendor": "WD", "device/model": "Elements"})
	f.part("sdc", "sdc1", "8:33")
	f.holder("sdc1", "dm-0", "254:0")
	f.disk("sdd", "pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/host8/target8:0:0/8:0:0:0", "8:48", "0", map[string]string{"removable": "1", "device/model": "Card Reader"})
	f.disk("sde", "pci0000:00/0000:00:14.0/usb1/1-3/1-3:1.0/host9/target9:0:0/9:0:0:0", "8:64", "15523840", map[string]string{"removable": "1", "ro": "1"})
	f.disk("loop0", "virtual", "7:0", "131072", nil)
	f.mounts(
		"26 1 254:1 / / rw,relatime shared:1 - ext4 /dev/mapper/root rw",
		"27 26 259:1 / /boot/efi rw,relatime shared:2 - vfat /dev/nvme0n1p1 rw",
		`40 26 8:18 / /media/me/MY\040STICK rw,nosuid shared:30 - vfat /dev/sdb2 rw`,
		"41 26 254:0 / /mnt/backup rw shared:31 - ext4 /dev/mapper/backup rw",
		"42 26 0:45 / /tmp rw shared:32 - tmpfs tmpfs rw",
	)
	return f
}

func TestListAndDescribe(t *testing.T) {
	sys := standardTree(t).system()
	cands, err := sys.List(false)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range cands {
		names = append(names, d.Name)
	}
	// sdc is a USB disk (removable by transport), sdd has no medium.
	if got := strings.Join(names, " "); got != "mmcblk0 sdb sdc sde" {
		t.Errorf("candidates = %q", got)
	}
	all, _ := sys.List(true)
	if len(all) != 9 {
		t.Errorf("List(all) = %d disks, want 9", len(all))
	}
	byName := map[string]*Disk{}
	for _, d := range all {
		byName[d.Name] = d
	}
	sdb := byName["sdb"]
	if sdb.Transport != "usb" || !sdb.Removable || sdb.Model != "SanDisk Ultra" || sdb.Size != 60437492*512 || sdb.System {
		t.Errorf("sdb = %+v", sdb)
	}
	if len(sdb.Mounts) != 1 || sdb.Mounts[0].Point != "/media/me/MY STICK" || sdb.Mounts[0].On != "sdb2" {
		t.Errorf("sdb mounts = %+v", sdb.Mounts)
	}
	if d := byName["mmcblk0"]; d.Transport != "sd" || !d.Removable || d.Model != "SC32G" {
		t.Errorf("mmcblk0 = %+v", d)
	}
	if d := byName["nvme0n1"]; !d.System || !strings.Contains(d.SystemWhy, "holds / ") || d.Removable {
		t.Errorf("nvme0n1 = %+v", d)
	}
	if d := byName["sdc"]; len(d.Holders) != 1 || d.Holders[0] != "dm-0" || len(d.Mounts) != 1 || d.Mounts[0].On != "dm-0" {
		t.Errorf("sdc = %+v", d)
	}
	if d := byName["loop0"]; d.Transport != "loop" || d.Removable {
		t.Errorf("loop0 = %+v", d)
	}
}

func TestCheckRefusals(t *testing.T) {
	f := standardTree(t)
	f.write("proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n/dev/mmcblk0p1 partition 100 0 -2")
	sys := f.system()
	disk := func(name string) *Disk {
		d, err := sys.disk(name)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	const img = 64 << 20
	cases := []struct {
		disk string
		pol  Policy
		size int64
		want string // "" = allowed
	}{
		{"nvme0n1", Policy{Force: true, Unmount: true, Yes: true}, img, "disk of the running system: it holds / (ext4 on dm-1)"},
		{"mmcblk0", Policy{Force: true, Yes: true}, img, "active swap (mmcblk0p1)"},
		{"sdb", Policy{}, img, "mounted filesystems: sdb2 on /media/me/MY STICK (add --unmount"},
		{"sdb", Policy{Unmount: true}, img, ""},
		{"sdb", Policy{}, 40 << 30, ""}, // mounted wins over size: first reason first
		{"sdc", Policy{Force: true, Unmount: true}, img, "in use by dm-0"},
		{"sdd", Policy{}, img, "no medium"},
		{"sde", Policy{}, img, "read-only"},
		{"loop0", Policy{}, img, "not a removable disk"},
		{"loop0", Policy{Force: true}, img, ""},
		{"loop0", Policy{Force: true}, img + 1, "smaller than the image: 64.0 MiB < 64.0 MiB (67108864 < 67108865 bytes)"},
	}
	for _, c := range cases {
		err := Check(disk(c.disk), c.size, c.pol)
		if c.disk == "sdb" && c.size == 40<<30 {
			if err == nil || !strings.Contains(err.Error(), "mounted") {
				t.Errorf("sdb, 40 GiB: %v", err)
			}
			continue
		}
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s %+v: refused: %v", c.disk, c.pol, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s %+v: got %v, want %q", c.disk, c.pol, err, c.want)
		}
		var r *Refusal
		if err != nil && !errors.As(err, &r) {
			t.Errorf("%s: error is not a *Refusal: %T", c.disk, err)
		}
	}
}

func TestLookupPartitionAndNotBlock(t *testing.T) {
	if _, err := (System{}).Lookup("/dev/null"); !errors.Is(err, ErrNotBlock) {
		t.Errorf("/dev/null: %v", err)
	}
	if _, err := (System{}).Lookup(t.TempDir()); !errors.Is(err, ErrNotBlock) {
		t.Errorf("a directory: %v", err)
	}
	if _, err := (System{}).Lookup("/nonexistent/sdz"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
}

func TestConfirm(t *testing.T) {
	sys := standardTree(t).system()
	sdb, _ := sys.disk("sdb")
	loop, _ := sys.disk("loop0")
	var out strings.Builder
	ask := func(d *Disk, p Policy, interactive bool, input string) error {
		out.Reset()
		return Confirm(d, "x.img", 1<<20, p, interactive, strings.NewReader(input), &out)
	}
	if err := ask(sdb, Policy{}, false, ""); err == nil || !strings.Contains(err.Error(), "add --yes") {
		t.Errorf("non-interactive without --yes: %v", err)
	}
	if err := ask(loop, Policy{Force: true}, false, ""); err == nil || !strings.Contains(err.Error(), "add --force --yes") {
		t.Errorf("non-interactive non-removable without --yes: %v", err)
	}
	if err := ask(sdb, Policy{Yes: true}, false, ""); err != nil {
		t.Errorf("non-interactive --yes: %v", err)
	}
	if err := ask(sdb, Policy{}, true, "y\n"); err != nil || !strings.Contains(out.String(), "EVERYTHING ON /dev/sdb WILL BE LOST") || !strings.Contains(out.String(), "sdb2 on /media/me/MY STICK") {
		t.Errorf("interactive y: %v\n%s", err, out.String())
	}
	if err := ask(sdb, Policy{}, true, "\n"); err == nil || !strings.Contains(err.Error(), "not confirmed") {
		t.Errorf("interactive default no: %v", err)
	}
	if err := ask(loop, Policy{Force: true, Yes: true}, true, "sda\n"); err == nil || !strings.Contains(err.Error(), `"sda" does not match "loop0"`) {
		t.Errorf("wrong typed name: %v", err)
	}
	if err := ask(loop, Policy{Force: true}, true, "loop0\n"); err != nil || !strings.Contains(out.String(), "NOT a removable disk") {
		t.Errorf("typed name: %v\n%s", err, out.String())
	}
	if err := ask(loop, Policy{Force: true}, true, "/dev/loop0\n"); err != nil {
		t.Errorf("typed path: %v", err)
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{`/a\040b`: "/a b", `/x\011y\134`: "/x\ty\\", `/p\0`: `/p\0`, "/plain": "/plain"} {
		if got := unescape(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}
