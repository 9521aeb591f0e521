package badinput

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rfsbuild/rfs/ext4fs"
	"github.com/rfsbuild/rfs/image"
)

// dataPart is the data partition of {image}, copied out to a file so
// debugfs can populate an upper and the case can corrupt it.
type dataPart struct {
	t    tester
	path string // the partition's bytes
	bs   int64  // block size
}

// debugfs runs debugfs -w commands on the partition and returns the output.
func (p *dataPart) debugfs(cmds ...string) string {
	p.t.Helper()
	f := filepath.Join(p.t.TempDir(), "cmds")
	if err := os.WriteFile(f, []byte(strings.Join(cmds, "\n")+"\n"), 0o644); err != nil {
		p.t.Fatal(err)
	}
	out, err := exec.Command("debugfs", "-w", "-f", f, p.path).CombinedOutput()
	if err != nil {
		p.t.Fatalf("debugfs: %v\n%s", err, out)
	}
	return string(out)
}

// patch writes v (little-endian) at off of the partition.
func (p *dataPart) patch(off int64, v any) {
	p.t.Helper()
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, v)
	f, err := os.OpenFile(p.path, os.O_RDWR, 0)
	if err != nil {
		p.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b.Bytes(), off); err != nil {
		p.t.Fatal(err)
	}
	// A patched superblock field gets a valid checksum again (as a
	// hostile card would have), so rfs must catch the field itself.
	if end := off + int64(b.Len()); off < sbOff+ext4fs.SuperblockSize && end > sbOff && end <= sbOff+0x3fc {
		raw := make([]byte, ext4fs.SuperblockSize)
		if _, err := f.ReadAt(raw, sbOff); err != nil {
			p.t.Fatal(err)
		}
		binary.LittleEndian.PutUint32(raw[0x3fc:], ext4fs.SuperblockChecksum(raw))
		if _, err := f.WriteAt(raw[0x3fc:], sbOff+0x3fc); err != nil {
			p.t.Fatal(err)
		}
	}
}

// number is the first number debugfs prints after re (a regexp with one
// group).
func (p *dataPart) number(out, re string) int64 {
	p.t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(out)
	if m == nil {
		p.t.Fatalf("no %s in %q", re, out)
	}
	n, err := strconv.ParseInt(m[1], 0, 64)
	if err != nil {
		p.t.Fatal(err)
	}
	return n
}

// blockOff is the byte offset of logical block n of path.
func (p *dataPart) blockOff(path string, n int) int64 {
	return p.bs * p.number(p.debugfs(fmt.Sprintf("bmap %s %d", path, n)), `(?m)^(\d+)\s*$`)
}

// inodeOff is the byte offset of path's inode.
func (p *dataPart) inodeOff(path string) int64 {
	out := p.debugfs("imap " + path)
	return p.bs*p.number(out, `located at block (\d+),`) + p.number(out, `offset (0x[0-9a-f]+)`)
}

// upperCase makes a setup that gives {image} a populated upper (files,
// a directory with the opaque xattr, a whiteout, symlinks), then lets
// corrupt change the partition, and writes it back into the image.
func upperCase(corrupt func(p *dataPart)) func(t tester, dir string) {
	return func(t tester, dir string) {
		t.Helper()
		if _, err := exec.LookPath("debugfs"); err != nil {
			t.Skip("debugfs not installed")
		}
		img := filepath.Join(dir, "dev.img")
		disk, err := image.Open(img)
		if err != nil {
			t.Fatal(err)
		}
		data, err := disk.Partition(image.DataPartition)
		disk.Close()
		if err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		p := &dataPart{t: t, path: filepath.Join(t.TempDir(), "data.ext4")}
		if err := os.WriteFile(p.path, raw[data.Start:data.Start+data.Size], 0o644); err != nil {
			t.Fatal(err)
		}
		src := filepath.Join(t.TempDir(), "motd")
		if err := os.WriteFile(src, bytes.Repeat([]byte("welcome\n"), 2000), 0o644); err != nil {
			t.Fatal(err)
		}
		// The image's ext4 has no ext_attr feature until the kernel first
		// sets an xattr; debugfs needs it set to store one.
		p.debugfs("feature ext_attr", "mkdir upper", "mkdir upper/etc", "mkdir upper/srv", "mkdir upper/srv/www",
			"write "+src+" upper/etc/motd", "write "+src+" upper/srv/www/index.html",
			"symlink upper/etc/localtime /usr/share/zoneinfo/UTC",
			"symlink upper/etc/long "+strings.Repeat("long/", 20),
			"ea_set upper/srv trusted.overlay.opaque y", "cd upper/etc", "mknod hostname c 0 0")
		p.bs = p.number(p.debugfs("stats"), `Block size:\s+(\d+)`)
		corrupt(p)
		back, err := os.ReadFile(p.path)
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(img, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt(back, data.Start); err != nil {
			t.Fatal(err)
		}
	}
}

// ext4Cmds runs a corruption through diff, commit and (when the
// superblock itself is bad, which is all inspect reads of the data
// partition) inspect.
func ext4Cmds(name string, corrupt func(p *dataPart), inspect bool, want ...string) []badCase {
	cmds := [][]string{
		{"diff", "{image}"},
		{"commit", "{image}", "-o", "{dir}/x.sqfs"},
	}
	if inspect {
		cmds = append(cmds, []string{"inspect", "{image}"})
	}
	var out []badCase
	for _, args := range cmds {
		out = append(out, badCase{
			name: args[0] + "/" + name, args: args, setup: upperCase(corrupt),
			want: append([]string{"data partition"}, want...), timeout: 30 * time.Second,
		})
	}
	return out
}

const sbOff = 1024 // the ext4 superblock, from the partition's start

// TestHostileDataPartition: an image whose ext4 data partition is
// corrupt (a card from the field) gives a clear error from diff, commit
// and inspect: no panic, no hang, no memory blow-up, nothing left behind.
func TestHostileDataPartition(t *testing.T) {
	var cases []badCase
	add := func(cs []badCase) { cases = append(cases, cs...) }
	// The superblock.
	add(ext4Cmds("inodes per group 0", func(p *dataPart) { p.patch(sbOff+0x28, uint32(0)) }, true, "0 inodes per group"))
	add(ext4Cmds("blocks per group 0", func(p *dataPart) { p.patch(sbOff+0x20, uint32(0)) }, true, "0 blocks per group"))
	add(ext4Cmds("desc size 7", func(p *dataPart) { p.patch(sbOff+0xfe, uint16(7)) }, true, "group descriptor size 7"))
	add(ext4Cmds("blocks past the partition", func(p *dataPart) { p.patch(sbOff+0x04, uint32(0x7fffffff)) }, true, "do not fit in the"))
	add(ext4Cmds("block size 2^40", func(p *dataPart) { p.patch(sbOff+0x18, uint32(30)) }, true, "block size"))
	add(ext4Cmds("superblock checksum", func(p *dataPart) { p.patch(sbOff+0x3fc, uint32(0x12345678)) }, true, "checksum 0x12345678"))
	add(ext4Cmds("unknown feature", func(p *dataPart) {
		p.patch(sbOff+0x60, uint32(0x2c2|0x400)) // + ea_inode
	}, true, "unsupported ext4 features: ea_inode"))
	// Inodes, trees, directories, xattrs in upper/.
	add(ext4Cmds("symlink size 0xffffffff", func(p *dataPart) { p.debugfs("sif upper/etc/localtime size 0xffffffff") }, false,
		"upper/etc/localtime", "symlink of 4294967295 bytes"))
	add(ext4Cmds("file size 2^52", func(p *dataPart) { p.debugfs("sif upper/etc/motd size 0x10000000000000") }, false,
		"upper/etc/motd", "larger than the filesystem"))
	add(ext4Cmds("dir hard-linked into its subtree", func(p *dataPart) { p.debugfs("link upper/srv upper/srv/www/loop") }, false,
		"upper/srv/www/loop", "cycle"))
	add(ext4Cmds("extent past the end", func(p *dataPart) { p.debugfs("sif upper/etc/motd block[5] 0x7fffffff") }, false,
		"upper/etc/motd", "outside the filesystem"))
	add(ext4Cmds("cross-linked files", func(p *dataPart) {
		p.debugfs(fmt.Sprintf("sif upper/srv/www/index.html block[5] %d", p.blockOff("upper/etc/motd", 0)/p.bs))
	}, false, "upper/srv/www/index.html", "used twice"))
	add(ext4Cmds("rec_len 0", func(p *dataPart) { p.patch(p.blockOff("upper/etc", 0)+4, uint16(0)) }, false,
		"upper/etc", "record length 0"))
	add(ext4Cmds("xattr value size huge", func(p *dataPart) {
		p.patch(p.inodeOff("upper/srv")+128+32+4+8, uint32(0xffffffff)) // first in-inode entry's e_value_size
	}, false, "upper/srv", "runs past"))
	add(ext4Cmds("inode links 0", func(p *dataPart) { p.debugfs("sif upper/etc/hostname links_count 0") }, false,
		"upper/etc/hostname", "not in use"))
	runCases(t, cases)
}

// TestHostileDataPartitionControl: the populated upper without a
// corruption reads fine, so the failures above come from the corruptions.
func TestHostileDataPartitionControl(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, fixtureImage(t), filepath.Join(dir, "dev.img"))
	upperCase(func(*dataPart) {})(t, dir)
	out, err := exec.Command(rfsBin, "diff", filepath.Join(dir, "dev.img")).CombinedOutput()
	if err != nil {
		t.Fatalf("rfs diff: %v\n%s", err, out)
	}
	for _, want := range []string{"A /etc/motd", "D /etc/hostname", "A /etc/localtime", "A /srv/www/index.html"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("rfs diff output lacks %q:\n%s", want, out)
		}
	}
}
