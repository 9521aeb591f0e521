//go:build linux

package reset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/fat32"
	"golang.org/x/sys/unix"

	"github.com/rfsbuild/rfs/datapart"
	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/image/ext4"
	"github.com/rfsbuild/rfs/image/fat"
	"github.com/rfsbuild/rfs/rootfs"
)

const (
	mib       = 1 << 20
	bootStart = 1 * mib
	bootSize  = 40 * mib
	rootStart = bootStart + bootSize
	rootSize  = 1 * mib
	dataStart = rootStart + rootSize
	dataSize  = 16 * mib
	diskSize  = dataStart + dataSize + 2*mib
)

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (apt-get install dosfstools mtools e2fsprogs fdisk)", tool)
		}
	}
}

func sh(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// makeImage writes an rfs-shaped disk (sfdisk, mkfs.fat, mke2fs): p1 FAT32,
// p2 a placeholder root, p3 ext4 rfs-data seeded with upper/etc/x,
// work/, volumes/app/y, unless data is false (no data partition).
func makeImage(t *testing.T, label string, data bool) string {
	t.Helper()
	need(t, "sfdisk", "mkfs.fat", "mke2fs")
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Truncate(img, diskSize)
	typ := map[string][3]string{
		"gpt": {"C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "B921B045-1DF0-41C3-AF44-4C6F280D3FAE", "0FC63DAF-8483-4772-8E79-3D69D8477DE4"},
		"dos": {"c", "83", "83"},
	}[label]
	// GPT partitions carry the names rfs gives them: readers of an image
	// without a layout in rfs.json (this one has no rfs.json) find the
	// partitions by them, on MBR by position.
	names := [3]string{}
	if label == "gpt" {
		for i, n := range []string{image.BootPartition, image.RootPartition, image.DataPartition} {
			if i < 2 || data {
				names[i] = ", name=" + n
			}
		}
	}
	script := "label: " + label + "\n" +
		"start=" + strconv.Itoa(bootStart/512) + ", size=" + strconv.Itoa(bootSize/512) + ", type=" + typ[0] + names[0] + "\n" +
		"start=" + strconv.Itoa(rootStart/512) + ", size=" + strconv.Itoa(rootSize/512) + ", type=" + typ[1] + names[1] + "\n" +
		"start=" + strconv.Itoa(dataStart/512) + ", size=" + strconv.Itoa(dataSize/512) + ", type=" + typ[2] + names[2] + "\n"
	cmd := exec.Command("sfdisk", "-q", img)
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	sh(t, "mkfs.fat", "-F", "32", "-n", "RFS-BOOT", "--offset", strconv.Itoa(bootStart/512), img, strconv.Itoa(bootSize/1024))
	if data {
		seed := filepath.Join(dir, "seed")
		for _, d := range []string{"upper/etc", "work", "volumes/app"} {
			os.MkdirAll(filepath.Join(seed, d), 0o755)
		}
		os.WriteFile(filepath.Join(seed, "upper/etc/x"), []byte("x\n"), 0o644)
		os.WriteFile(filepath.Join(seed, "volumes/app/y"), []byte("y\n"), 0o644)
		sh(t, "mke2fs", "-q", "-F", "-t", "ext4", "-L", datapart.Label, "-d", seed,
			"-E", "offset="+strconv.Itoa(dataStart), img, strconv.Itoa(dataSize/1024)+"k")
	}
	return img
}

// mtype returns the flag file as mtools reads it ("" and false if absent).
func mtype(t *testing.T, img string) (string, bool) {
	t.Helper()
	out, err := exec.Command("mtype", "-i", img+"@@"+strconv.Itoa(bootStart), "::"+datapart.ResetFlagFile).CombinedOutput()
	if err != nil {
		return "", false
	}
	return string(out), true
}

func fsckFAT(t *testing.T, img string) {
	t.Helper()
	f, _ := os.Open(img)
	defer f.Close()
	cp := filepath.Join(t.TempDir(), "boot.fat")
	g, _ := os.Create(cp)
	io.Copy(g, io.NewSectionReader(f, bootStart, bootSize))
	g.Close()
	if out, err := exec.Command("fsck.fat", "-n", cp).CombinedOutput(); err != nil {
		t.Errorf("fsck.fat -n of the boot partition: %v\n%s", err, out)
	}
}

func TestFlag(t *testing.T) {
	need(t, "mtype", "fsck.fat")
	for _, label := range []string{"gpt", "dos"} {
		t.Run(label, func(t *testing.T) {
			t.Parallel()
			img := makeImage(t, label, true)
			if _, ok := mtype(t, img); ok {
				t.Fatal("flag set before")
			}
			res, err := Flag(img, false)
			if err != nil {
				t.Fatal(err)
			}
			if res.All || res.WasSet != "" || res.Target.Boot.Number != 1 || res.Target.Data.Number != 3 {
				t.Errorf("result %+v, boot %+v, data %+v", res, res.Target.Boot, res.Target.Data)
			}
			if got, ok := mtype(t, img); !ok || got != "upper\n" {
				t.Errorf("mtype: %q %v", got, ok)
			}
			fsckFAT(t, img)
			// --all replaces it; a later plain flag keeps "all".
			if res, err = Flag(img, true); err != nil || !res.All || res.WasSet != "upper" {
				t.Fatalf("Flag all: %+v %v", res, err)
			}
			if got, _ := mtype(t, img); got != "all\n" {
				t.Errorf("mtype after --all: %q", got)
			}
			if res, err = Flag(img, false); err != nil || !res.All || res.WasSet != "all" {
				t.Fatalf("Flag after all: %+v %v", res, err)
			}
			if c, ok, err := FlagSet(img); err != nil || !ok || c != "all\n" {
				t.Errorf("FlagSet: %q %v %v", c, ok, err)
			}
			fsckFAT(t, img)
			out := sh(t, "mdir", "-i", img+"@@"+strconv.Itoa(bootStart), "::")
			if strings.Count(strings.ToLower(out), "rfs-reset") != 1 {
				t.Errorf("mdir:\n%s", out)
			}
			// go-diskfs reads it too (an independent reader).
			f, _ := os.Open(img)
			dfs, err := fat32.Read(file.New(f, true), bootSize, bootStart, 512)
			if err != nil {
				t.Fatal(err)
			}
			if b, err := dfs.ReadFile("/" + datapart.ResetFlagFile); err != nil || string(b) != "all\n" {
				t.Errorf("go-diskfs reads %q, %v", b, err)
			}
			f.Close()
			if c, err := Cancel(img); err != nil || c != "all" {
				t.Errorf("Cancel: %q %v", c, err)
			}
			if got, ok := mtype(t, img); ok {
				t.Errorf("flag still there after Cancel: %q", got)
			}
			if c, err := Cancel(img); err != nil || c != "" {
				t.Errorf("Cancel again: %q %v", c, err)
			}
			fsckFAT(t, img)
		})
	}
}

// The root directory's first cluster (512 bytes, 16 slots, one the volume
// label) nearly or completely full: the flag's two slots go in a new
// cluster, or straddle the boundary.
func TestFlagFullRootDir(t *testing.T) {
	need(t, "mtype", "fsck.fat", "mcopy")
	for _, n := range []int{13, 14, 15, 40} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			t.Parallel()
			img := makeImage(t, "gpt", true)
			src := t.TempDir()
			for i := 0; i < n; i++ {
				p := filepath.Join(src, fmt.Sprintf("F%d.TXT", i))
				os.WriteFile(p, []byte("f"), 0o644)
				sh(t, "mcopy", "-i", img+"@@"+strconv.Itoa(bootStart), p, "::")
			}
			if _, err := Flag(img, true); err != nil {
				t.Fatal(err)
			}
			if got, ok := mtype(t, img); !ok || got != "all\n" {
				t.Errorf("mtype: %q %v", got, ok)
			}
			out := sh(t, "mdir", "-i", img+"@@"+strconv.Itoa(bootStart), "-b", "::")
			if got := len(strings.Fields(out)); got != n+1 {
				t.Errorf("mdir -b lists %d files, want %d:\n%s", got, n+1, out)
			}
			fsckFAT(t, img)
			if _, err := Cancel(img); err != nil {
				t.Fatal(err)
			}
			fsckFAT(t, img)
		})
	}
}

func TestNoData(t *testing.T) {
	img := makeImage(t, "gpt", false)
	if _, err := Flag(img, false); !errors.Is(err, ErrNoData) {
		t.Errorf("Flag without a data partition: %v", err)
	}
	if _, err := Inspect(filepath.Join(t.TempDir(), "none.img")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	junk := filepath.Join(t.TempDir(), "junk.img")
	os.WriteFile(junk, make([]byte, 1<<20), 0o644)
	if _, err := Flag(junk, false); err == nil || !strings.Contains(err.Error(), "not an rfs image") {
		t.Errorf("junk: %v", err)
	}
}

func TestNowNeedsRoot(t *testing.T) {
	img := makeImage(t, "gpt", true)
	geteuid = func() int { return 1000 }
	defer func() { geteuid = os.Geteuid }()
	_, err := Now(context.Background(), img, false)
	if !errors.Is(err, ErrNotRoot) || !strings.Contains(err.Error(), "drop --now") {
		t.Errorf("not root: %v", err)
	}
}

// A QEMU running the image holds OFD locks on it; so does this test.
func TestRefuseLocked(t *testing.T) {
	img := makeImage(t, "gpt", true)
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lk := unix.Flock_t{Type: unix.F_RDLCK, Whence: io.SeekStart, Start: 100, Len: 1}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		t.Skipf("OFD locks: %v", err)
	}
	if _, err := Flag(img, false); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Errorf("locked image: %v", err)
	}
}

func root(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (loop devices, mount)")
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Skip("no /dev/loop-control")
	}
	need(t, "debugfs", "e2fsck", "losetup")
}

// ls lists a directory of the image's data filesystem (debugfs, no mount).
func ls(t *testing.T, img, dir string) string {
	t.Helper()
	return lsAt(t, img, dataStart, dataSize, dir)
}

func lsAt(t *testing.T, img string, dataStart, dataSize int64, dir string) string {
	t.Helper()
	cp := filepath.Join(t.TempDir(), "data.fs")
	f, _ := os.Open(img)
	g, _ := os.Create(cp)
	io.Copy(g, io.NewSectionReader(f, dataStart, dataSize))
	f.Close()
	g.Close()
	if out, err := exec.Command("e2fsck", "-fn", cp).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn of the data partition: %v\n%s", err, out)
	}
	out, _ := exec.Command("debugfs", "-R", "ls "+dir, cp).Output()
	var names []string
	for _, n := range strings.Fields(string(out)) {
		if !strings.HasPrefix(n, "(") && n != "." && n != ".." && !strings.ContainsAny(n[:1], "0123456789") {
			names = append(names, n)
		}
	}
	return strings.Join(names, " ")
}

func loopsOf(t *testing.T, img string) []string {
	st, _ := os.Stat(img)
	var out []string
	ents, _ := os.ReadDir("/sys/block")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/sys/block", e.Name(), "loop/backing_file"))
		if err != nil {
			continue
		}
		if bst, err := os.Stat(strings.TrimSpace(string(b))); err == nil && os.SameFile(st, bst) {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestNow(t *testing.T) {
	root(t)
	for _, label := range []string{"gpt", "dos"} {
		t.Run(label, func(t *testing.T) {
			t.Parallel()
			img := makeImage(t, label, true)
			if got := ls(t, img, "/upper"); got != "etc" {
				t.Fatalf("seeded upper: %q", got)
			}
			res, err := Now(context.Background(), img, false)
			if err != nil {
				t.Fatal(err)
			}
			if res.Record == nil || res.Record.Trigger != datapart.TriggerHost || res.Record.All || !strings.HasPrefix(res.Device, "/dev/loop") {
				t.Errorf("result %+v %+v", res, res.Record)
			}
			if got := ls(t, img, "/upper"); got != "" {
				t.Errorf("upper after reset: %q", got)
			}
			if got := ls(t, img, "/volumes/app"); got != "y" {
				t.Errorf("volume after reset: %q", got)
			}
			if got := ls(t, img, "/trash"); got != "" {
				t.Errorf("trash after reset: %q", got)
			}
			if l := loopsOf(t, img); len(l) > 0 {
				t.Errorf("loop devices left attached: %v", l)
			}
			if _, err := Now(context.Background(), img, true); err != nil {
				t.Fatal(err)
			}
			if got := ls(t, img, "/volumes"); got != "" {
				t.Errorf("volumes after reset --all: %q", got)
			}
			if got := ls(t, img, "/"); !strings.Contains(got, "rfs-state.json") || strings.Contains(got, datapart.ResetIntentFile) {
				t.Errorf("data root: %q", got)
			}
		})
	}
}

// A whole block device: here a loop device over the image, for which this
// host kernel makes no partition nodes (the offsets path); mounted, it is
// refused.
func TestDevice(t *testing.T) {
	root(t)
	img := makeImage(t, "dos", true)
	out := sh(t, "losetup", "--find", "--show", img)
	dev := strings.TrimSpace(out)
	defer exec.Command("losetup", "-d", dev).Run()
	if _, err := Flag(dev, true); err != nil {
		t.Fatal(err)
	}
	res, err := Now(context.Background(), dev, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.FlagPending != "all" {
		t.Errorf("FlagPending %q", res.FlagPending)
	}
	exec.Command("losetup", "-d", dev).Run()
	if got, ok := mtype(t, img); !ok || got != "all\n" {
		t.Errorf("flag on the device: %q %v", got, ok)
	}
	if got := ls(t, img, "/upper"); got != "" {
		t.Errorf("upper after reset: %q", got)
	}

	// Mounted (the data partition, through a loop device over its range).
	mnt := t.TempDir()
	sh(t, "mount", "-o", "loop,offset="+strconv.Itoa(dataStart)+",sizelimit="+strconv.Itoa(dataSize), img, mnt)
	defer exec.Command("umount", mnt).Run()
	for _, f := range []func() error{
		func() error { _, err := Flag(img, false); return err },
		func() error { _, err := Now(context.Background(), img, false); return err },
	} {
		if err := f(); err == nil || !strings.Contains(err.Error(), "mounted") || !strings.Contains(err.Error(), mnt) {
			t.Errorf("mounted image: %v", err)
		}
	}
}

// TestBenchNow100k times `rfs reset --now` on a data partition whose upper
// holds 100k files (docs/benchmarks.md, "reset"). Only with RFS_BENCH=1.
func TestBenchNow100k(t *testing.T) {
	if os.Getenv("RFS_BENCH") == "" {
		t.Skip("set RFS_BENCH=1 to run")
	}
	root(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	os.WriteFile(img, nil, 0o644)
	const start, size = 41 * mib, 512 * mib
	os.Truncate(img, start+size+mib)
	cmd := exec.Command("sfdisk", "-q", img)
	cmd.Stdin = strings.NewReader("label: gpt\nstart=2048, size=81920, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=rfs-boot\nstart=83968, size=1048576, name=rfs-data\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	sh(t, "mkfs.fat", "-F", "32", "--offset", "2048", img, "40960")
	sh(t, "mke2fs", "-q", "-F", "-t", "ext4", "-N", "120000", "-L", datapart.Label, "-E", "offset="+strconv.Itoa(start), img, strconv.Itoa(size/1024)+"k")
	mnt := t.TempDir()
	sh(t, "mount", "-o", "loop,offset="+strconv.Itoa(start)+",sizelimit="+strconv.Itoa(size), img, mnt)
	for _, d := range []string{"upper", "work", "volumes"} {
		os.Mkdir(filepath.Join(mnt, d), 0o755)
	}
	for d := 0; d < 100; d++ {
		sub := filepath.Join(mnt, "upper", "many", strconv.Itoa(d))
		os.MkdirAll(sub, 0o755)
		for i := 0; i < 1000; i++ {
			if err := os.WriteFile(filepath.Join(sub, strconv.Itoa(i)), []byte("x"), 0o644); err != nil {
				exec.Command("umount", mnt).Run()
				t.Fatal(err)
			}
		}
	}
	sh(t, "umount", mnt)
	exec.Command("sh", "-c", "sync; echo 3 > /proc/sys/vm/drop_caches").Run()
	res, err := Now(context.Background(), img, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("BENCH rfs reset --now, 100k files (1 byte each) in upper/: %v in all; wipe (renames + fsyncs) %.1f ms", res.Took, res.Record.WipeMS)
	if got := lsAt(t, img, start, size, "/upper"); got != "" {
		t.Errorf("upper after reset: %q", got)
	}
}

// rfsImage writes an image with rfs's own writers (no sfdisk needed):
// boot FAT32, a root placeholder and an ext4 data partition, named as rfs
// names them; it returns the path and the data partition's offset.
func rfsImage(t *testing.T, table string) (string, int64) {
	t.Helper()
	if _, err := exec.LookPath("mke2fs"); err != nil {
		t.Skip("mke2fs not installed")
	}
	guid := func(n int) string { return fmt.Sprintf("%08x-0000-4000-8000-000000000000", n) }
	l := image.Layout{Table: table, DiskGUID: guid(9), DiskID: 0x1234abcd, Partitions: []image.Partition{
		{Name: image.BootPartition, Type: image.TypeESP, GUID: guid(1), MBRType: image.MBRTypeFAT32LBA, Size: 40 * mib,
			Write: func(_ context.Context, w io.WriterAt) (int64, error) {
				return 40 * mib, fat.Write(w, 40*mib, rootfs.New(0), fat.Options{Label: "RFS-BOOT"})
			}},
		{Name: image.RootPartition, Type: image.TypeLinuxData, GUID: guid(2), MBRType: image.MBRTypeLinux, Size: mib,
			Write: func(context.Context, io.WriterAt) (int64, error) { return mib, nil }},
		{Name: image.DataPartition, Type: image.TypeLinuxData, GUID: guid(3), MBRType: image.MBRTypeLinux, Size: 16 * mib,
			Write: func(ctx context.Context, w io.WriterAt) (int64, error) {
				return 16 * mib, ext4.Make(ctx, w, 16*mib, ext4.Options{Label: datapart.Label, UUID: guid(4), HashSeed: guid(5)})
			}},
	}}
	if table == "mbr" {
		for i := range l.Partitions {
			l.Partitions[i].GUID = image.MBRPartUUID(l.DiskID, i+1)
		}
	}
	img := filepath.Join(t.TempDir(), "disk.img")
	parts, err := l.WriteFile(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	return img, parts[2].Start
}

// A data partition whose superblock is damaged is named as such, with
// what to do, not blamed on an old image.
func TestDamagedData(t *testing.T) {
	for _, table := range []string{"gpt", "mbr"} {
		t.Run(table, func(t *testing.T) {
			img, dataAt := rfsImage(t, table)
			if _, err := Inspect(img); err != nil {
				t.Fatalf("the intact image: %v", err)
			}
			f, err := os.OpenFile(img, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteAt([]byte{0, 0}, dataAt+1024+0x38) // the ext4 magic
			f.Close()
			_, err = Flag(img, false)
			if !errors.Is(err, ErrDataDamaged) {
				t.Fatalf("Flag on a damaged data partition: %v", err)
			}
			for _, want := range []string{"superblock is damaged", "partition 3", "e2fsck", "--offset " + strconv.FormatInt(dataAt, 10), "Nothing was changed"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("message %q lacks %q", err, want)
				}
			}
			if strings.Contains(err.Error(), "built before") {
				t.Errorf("message blames an old image: %v", err)
			}
		})
	}
}
