package e2e

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/boards"
	"github.com/rfsbuild/rfs/datapart"
	"github.com/rfsbuild/rfs/ext4fs/ext4sb"
	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/ptable"
	"github.com/rfsbuild/rfs/qemu"
)

// dataDisk is an image with a data partition (issue 5 contract: the last
// partition, ext4 labelled rfs-data, holding upper/ work/ volumes/).
type dataDisk struct {
	path    string
	extra   string // kernel parameters to add (only for a hand-made data partition)
	data    ptable.Partition
	boot    ptable.Partition
	handDid bool // the data partition was added by the test, not the builder
}

// ext4Label returns the label of the ext4 filesystem at off, "" if none.
func ext4Label(f io.ReaderAt, off int64) string {
	sb := make([]byte, 1024)
	if _, err := f.ReadAt(sb, off+1024); err != nil || binary.LittleEndian.Uint16(sb[0x38:]) != 0xef53 {
		return ""
	}
	return strings.TrimRight(string(sb[0x78:0x88]), "\x00")
}

// withDataPartition copies img to a new file with extraMiB of free space
// at the end (an image written to a larger medium). If the builder made
// no data partition yet, one is added by hand (sgdisk + mke2fs) as the
// contract says, and the kernel parameters it needs are returned in extra.
func withDataPartition(t *testing.T, img string, extraMiB int64) *dataDisk {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "data.img")
	if out, err := exec.Command("cp", "--sparse=always", img, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	d := &dataDisk{path: dst}
	tbl := readTable(t, dst)
	f, _ := os.Open(dst)
	for _, p := range tbl.Partitions {
		if ext4Label(f, p.Start) == datapart.Label {
			d.data = p
		}
	}
	f.Close()
	d.boot = tbl.Partitions[0]
	if d.data.Size == 0 {
		d.handDid = true
		sg, err := exec.LookPath("sgdisk")
		if err != nil {
			t.Skip("no data partition in the image and no sgdisk to add one")
		}
		st, _ := os.Stat(dst)
		os.Truncate(dst, st.Size()+65<<20)
		r := make([]byte, 16)
		rand.Read(r)
		r[6], r[8] = r[6]&0x0f|0x40, r[8]&0x3f|0x80
		guid := fmt.Sprintf("%x-%x-%x-%x-%x", r[0:4], r[4:6], r[6:8], r[8:10], r[10:16])
		for _, args := range [][]string{{"-e", dst}, {"-n3:0:+64M", "-t3:0fc63daf-8483-4772-8e79-3d69d8477de4", "-u3:" + guid, "-c3:rfs-data", dst}} {
			if out, err := exec.Command(sg, args...).CombinedOutput(); err != nil {
				t.Fatalf("sgdisk %v: %v %s", args, err, out)
			}
		}
		tbl = readTable(t, dst)
		d.data = tbl.Partitions[len(tbl.Partitions)-1]
		seed := t.TempDir()
		for _, s := range []string{"upper", "work", "volumes"} {
			os.Mkdir(filepath.Join(seed, s), 0o755)
		}
		if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-L", datapart.Label, "-d", seed,
			"-E", "offset="+strconv.FormatInt(d.data.Start, 10), dst, strconv.FormatInt(d.data.Size>>10, 10)+"k").CombinedOutput(); err != nil {
			t.Fatalf("mke2fs: %v %s", err, out)
		}
		d.extra = "rfs.data=PARTUUID=" + d.data.PARTUUID + " rfs.boot=PARTUUID=" + d.boot.PARTUUID + " rfs.upper=data"
	}
	if extraMiB > 0 {
		st, _ := os.Stat(dst)
		os.Truncate(dst, st.Size()+extraMiB<<20)
	}
	return d
}

func readTable(t *testing.T, p string) *ptable.Table {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	tbl, err := ptable.ReadTable(f, st.Size(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

// bootDisk starts QEMU on the image with guest writes kept in the file
// (Persist), like `rfs run --persist`. log gets the console.
func bootDisk(t *testing.T, d *dataDisk, extraCmdline string, log io.Writer) *qemu.VM {
	t.Helper()
	disk, err := image.Open(d.path)
	if err != nil {
		t.Fatal(err)
	}
	bf, err := disk.ReadBoot()
	disk.Close()
	if err != nil {
		t.Fatal(err)
	}
	b, err := boards.Lookup(bf.Meta.Board)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	kernel, initrd := filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd")
	os.WriteFile(kernel, bf.Kernel, 0o644)
	os.WriteFile(initrd, bf.Initrd, 0o644)
	cfg := qemu.Config{QEMU: b.QEMU, Arch: b.Arch, Kernel: kernel, Initrd: initrd,
		Append: strings.Join(strings.Fields(bf.Cmdline+" "+d.extra+" "+extraCmdline), " "), Disk: d.path, Persist: true}
	ctx, cancel := context.WithCancel(context.Background())
	vm, err := qemu.Start(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { vm.Close(); cancel() })
	return vm
}

// fsckData checks the data filesystem of a (QEMU-killed) image: on a copy,
// replay the journal, then e2fsck -fn must find nothing. It returns the
// partition and the filesystem size in bytes.
func fsckData(t *testing.T, d *dataDisk) (part, fs int64) {
	t.Helper()
	tbl := readTable(t, d.path)
	p, ok := tbl.Find(d.data.PARTUUID)
	if !ok {
		t.Fatal("data partition gone from the table")
	}
	cp := filepath.Join(t.TempDir(), "data.fs")
	src, _ := os.Open(d.path)
	dst, _ := os.Create(cp)
	io.Copy(dst, io.NewSectionReader(src, p.Start, p.Size))
	src.Close()
	dst.Close()
	exec.Command("e2fsck", "-E", "journal_only", "-y", cp).Run()
	if out, err := exec.Command("e2fsck", "-fn", cp).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn of the data partition: %v\n%s", err, out)
	}
	f, _ := os.Open(cp)
	sb, err := ext4sb.Read(f, 0)
	f.Close()
	os.Remove(cp)
	if err != nil {
		t.Error(err)
		return p.Size, 0
	}
	return p.Size, int64(sb.BlockSize) * int64(sb.BlocksCount)
}
