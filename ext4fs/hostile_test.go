package ext4fs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// hostileBase makes the small filesystem every hostile case mutates:
// 1 KiB blocks (so the tests know the layout), files f and g of 5 blocks,
// symlinks, a directory d with a subdirectory, x with an opaque xattr in
// the inode and x2 with a big one in an xattr block.
func hostileBase(t *testing.T) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	for _, d := range []string{"d/sub", "x", "x2"} {
		if err := os.MkdirAll(filepath.Join(src, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{"f": strings.Repeat("f", 5000), "g": strings.Repeat("g", 5000), "d/a1": "1", "d/a2": "2", "big": strings.Repeat("b", 300)}
	for name, s := range files {
		if err := os.WriteFile(filepath.Join(src, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/target", filepath.Join(src, "sl")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(strings.Repeat("long/", 30), filepath.Join(src, "sl150")); err != nil {
		t.Fatal(err)
	}
	img := mkfs(t, 8<<20, src, "-t", "ext4", "-b", "1024", "-O", "64bit")
	debugfs(t, img, "ea_set /x trusted.overlay.opaque y", "ea_set -f "+filepath.Join(src, "big")+" /x2 user.big")
	return img
}

// patch writes v (little-endian, by its Go size) at off of img.
func patch(t *testing.T, img string, off int64, v any) {
	t.Helper()
	var b bytes.Buffer
	if err := binary.Write(&b, binary.LittleEndian, v); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b.Bytes(), off); err != nil {
		t.Fatal(err)
	}
	// A patched superblock gets a valid checksum again, so the field
	// itself is what the reader must catch (unless the patch is the
	// checksum).
	if end := off + int64(b.Len()); off < sb+SuperblockSize && end > sb && end <= sb+0x3fc {
		raw := make([]byte, SuperblockSize)
		if _, err := f.ReadAt(raw, sb); err != nil {
			t.Fatal(err)
		}
		binary.LittleEndian.PutUint32(raw[0x3fc:], SuperblockChecksum(raw))
		if _, err := f.WriteAt(raw[0x3fc:], sb+0x3fc); err != nil {
			t.Fatal(err)
		}
	}
}

// inodeOff is where path's inode is in img (debugfs imap).
func inodeOff(t *testing.T, img, path string) int64 {
	t.Helper()
	out := debugfs(t, img, "imap "+path)
	m := regexp.MustCompile(`located at block (\d+), offset 0x([0-9a-f]+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("imap %s: %s", path, out)
	}
	blk, _ := strconv.ParseInt(m[1], 10, 64)
	off, _ := strconv.ParseInt(m[2], 16, 64)
	return blk*1024 + off
}

// blockOff is where logical block n of path is in img (debugfs bmap).
func blockOff(t *testing.T, img, path string, n int) int64 {
	t.Helper()
	out := debugfs(t, img, fmt.Sprintf("bmap %s %d", path, n))
	m := regexp.MustCompile(`(?m)^(\d+)\s*$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("bmap %s %d: %q", path, n, out)
	}
	blk, _ := strconv.ParseInt(m[1], 10, 64)
	return blk * 1024
}

// findIn is the offset of s in the block at off.
func findIn(t *testing.T, img string, off int64, s string) int64 {
	t.Helper()
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b[off:off+1024], []byte(s))
	if i < 0 {
		t.Fatalf("%q not in the block at %d", s, off)
	}
	return off + int64(i)
}

const sb = SuperblockOffset

// hostileCases are the corruptions of hostileBase, each with words the
// error must hold.
var hostileCases = []struct {
	name   string
	mutate func(t *testing.T, img string)
	want   string
}{
	// The superblock.
	{"inodes per group 0", func(t *testing.T, img string) { patch(t, img, sb+0x28, uint32(0)) }, "0 inodes per group"},
	{"blocks per group 0", func(t *testing.T, img string) { patch(t, img, sb+0x20, uint32(0)) }, "0 blocks per group"},
	{"desc size 7", func(t *testing.T, img string) { patch(t, img, sb+0xfe, uint16(7)) }, "descriptor size 7"},
	{"desc size 96", func(t *testing.T, img string) { patch(t, img, sb+0xfe, uint16(96)) }, "descriptor size 96"},
	{"block size 2^30", func(t *testing.T, img string) { patch(t, img, sb+0x18, uint32(20)) }, "block size"},
	{"blocks past the partition", func(t *testing.T, img string) { patch(t, img, sb+0x04, uint32(0xffffffff)) }, "do not fit"},
	{"inode count mismatch", func(t *testing.T, img string) { patch(t, img, sb+0x00, uint32(12345)) }, "12345 inodes"},
	{"inode size 100", func(t *testing.T, img string) { patch(t, img, sb+0x58, uint16(100)) }, "inode size 100"},
	{"first data block 5", func(t *testing.T, img string) { patch(t, img, sb+0x14, uint32(5)) }, "first data block 5"},
	{"unknown incompat", func(t *testing.T, img string) { patch(t, img, sb+0x60, uint32(0x2c2|0x80000)) }, "FEATURE_I19"},
	{"encrypt feature", func(t *testing.T, img string) { patch(t, img, sb+0x60, uint32(0x2c2|0x10000)) }, "unsupported ext4 features: encrypt"},
	// needs_recovery: the journal is found and checked (hostile journals
	// themselves are in package jbd2's tests).
	{"needs recovery, no journal inode", func(t *testing.T, img string) {
		patch(t, img, sb+0x60, uint32(0x2c2|0x4))
		patch(t, img, sb+0xe0, uint32(0))
	}, "journal: an external journal"},
	{"needs recovery, journal inode a directory", func(t *testing.T, img string) {
		patch(t, img, sb+0x60, uint32(0x2c2|0x4))
		patch(t, img, sb+0xe0, uint32(2))
	}, "journal inode 2: not a regular file"},
	{"needs recovery, no has_journal", func(t *testing.T, img string) {
		patch(t, img, sb+0x60, uint32(0x2c2|0x4))
		patch(t, img, sb+0x5c, uint32(0x38)) // ext_attr, resize_inode, dir_index
	}, "no journal"},
	{"needs recovery, journal magic", func(t *testing.T, img string) {
		patch(t, img, sb+0x60, uint32(0x2c2|0x4))
		patch(t, img, blockOff(t, img, "<8>", 0), uint32(0x12345678))
	}, "journal: superblock: magic 0x78563412"},
	{"needs recovery, journal longer than its file", func(t *testing.T, img string) {
		patch(t, img, sb+0x60, uint32(0x2c2|0x4))
		patch(t, img, blockOff(t, img, "<8>", 0)+0x10, [4]byte{0xff, 0xff, 0xff, 0xff})
	}, "4294967295 blocks, but the journal file holds"},
	{"bad magic", func(t *testing.T, img string) { patch(t, img, sb+0x38, uint16(0x1234)) }, "no ext2/3/4 superblock"},
	{"superblock checksum", func(t *testing.T, img string) { patch(t, img, sb+0x3fc, uint32(0x12345678)) }, "checksum 0x12345678"},
	{"inode table past the end", func(t *testing.T, img string) { patch(t, img, 2048+8, uint32(0xfffffff0)) }, "inode table"},
	// Inodes.
	{"symlink size 0xffffffff", func(t *testing.T, img string) { debugfs(t, img, "sif /sl size 0xffffffff") }, "symlink of 4294967295 bytes"},
	{"file size 2^52", func(t *testing.T, img string) { debugfs(t, img, "sif /f size 0x10000000000000") }, "larger than the filesystem"},
	{"dir size 2^40", func(t *testing.T, img string) { debugfs(t, img, "sif /d size 0x10000000000") }, "larger than the filesystem"},
	{"dir size not in blocks", func(t *testing.T, img string) { debugfs(t, img, "sif /d size 1000") }, "not a multiple"},
	{"dir with a hole", func(t *testing.T, img string) { debugfs(t, img, "sif /d size 4096") }, "hole"},
	{"links 0", func(t *testing.T, img string) { debugfs(t, img, "sif /f links_count 0") }, "not in use"},
	{"unknown type", func(t *testing.T, img string) { debugfs(t, img, "sif /f mode 0170644") }, "unknown file type"},
	{"inline flag without feature", func(t *testing.T, img string) { debugfs(t, img, "sif /f flags 0x10000000") }, "inline data flag"},
	{"ea_inode flag", func(t *testing.T, img string) { debugfs(t, img, "sif /f flags 0x280000") }, "ea_inode"},
	{"extra isize 1000", func(t *testing.T, img string) { patch(t, img, inodeOff(t, img, "/f")+0x80, uint16(1000)) }, "extra inode size 1000"},
	// Extent trees and block maps.
	{"extent past the end", func(t *testing.T, img string) { debugfs(t, img, "sif /f block[5] 0x7fffffff") }, "outside the filesystem"},
	{"extent at block 0", func(t *testing.T, img string) { debugfs(t, img, "sif /f block[5] 0") }, "outside the filesystem"},
	{"extent bad magic", func(t *testing.T, img string) { debugfs(t, img, "sif /f block[0] 0x1234") }, "bad magic"},
	{"extent depth 7", func(t *testing.T, img string) { debugfs(t, img, "sif /f block[1] 0x70004") }, "depth 7"},
	{"extent entries over max", func(t *testing.T, img string) { debugfs(t, img, "sif /f block[0] 0x9f30a") }, "9 entries"},
	{"extent length 0", func(t *testing.T, img string) { debugfs(t, img, "sif /f block[4] 0") }, "empty"},
	{"cross-linked files", func(t *testing.T, img string) {
		fb := blockOff(t, img, "/f", 0) / 1024
		debugfs(t, img, fmt.Sprintf("sif /g block[5] %d", fb))
	}, "used twice"},
	{"extent tree loop", extentLoop, "used twice"},
	{"extent node of the wrong depth", func(t *testing.T, img string) {
		extentLoop(t, img)
		debugfs(t, img, "sif /f block[1] 0x10004") // root depth 1: its child says 1 too
	}, "depth 1 where 0 belongs"},
	{"slow symlink past the end", func(t *testing.T, img string) { debugfs(t, img, "sif /sl150 block[5] 0x7fffffff") }, "outside the filesystem"},
	// Directories.
	{"rec_len 0", func(t *testing.T, img string) { patch(t, img, blockOff(t, img, "/d", 0)+4, uint16(0)) }, "record length 0"},
	{"rec_len past the block", func(t *testing.T, img string) { patch(t, img, blockOff(t, img, "/d", 0)+4, uint16(2000)) }, "record length 2000"},
	{"rec_len unaligned", func(t *testing.T, img string) { patch(t, img, blockOff(t, img, "/d", 0)+4, uint16(13)) }, "record length 13"},
	{"name longer than the record", func(t *testing.T, img string) { patch(t, img, blockOff(t, img, "/d", 0)+6, uint8(200)) }, "corrupt"},
	{"entry inode out of range", func(t *testing.T, img string) {
		patch(t, img, findIn(t, img, blockOff(t, img, "/d", 0), "a1")-8, uint32(0x7fffffff))
	}, "beyond the"},
	{"name with a slash", func(t *testing.T, img string) {
		patch(t, img, findIn(t, img, blockOff(t, img, "/d", 0), "a1"), []byte("/"))
	}, "not a file name"},
	{"duplicate names", func(t *testing.T, img string) {
		patch(t, img, findIn(t, img, blockOff(t, img, "/d", 0), "a2"), []byte("a1"))
	}, "two entries named"},
	{"dir hard-linked into its subtree", func(t *testing.T, img string) { debugfs(t, img, "link /d /d/sub/loop") }, "cycle"},
	{"dir hard-linked twice", func(t *testing.T, img string) { debugfs(t, img, "link /d /x/d-again") }, "cycle"},
	// Xattrs.
	{"in-inode xattr value size huge", func(t *testing.T, img string) { patch(t, img, inodeOff(t, img, "/x")+160+4+8, uint32(0xffffffff)) }, "runs past"},
	{"in-inode xattr name past the end", func(t *testing.T, img string) { patch(t, img, inodeOff(t, img, "/x")+160+4, uint8(250)) }, "runs past"},
	{"xattr block value size huge", func(t *testing.T, img string) {
		patch(t, img, xattrBlock(t, img, "/x2")+32+8, uint32(0xfffffff0))
	}, "runs past"},
	{"xattr block bad magic", func(t *testing.T, img string) { patch(t, img, xattrBlock(t, img, "/x2"), uint32(1)) }, "bad header"},
	{"xattr block past the end", func(t *testing.T, img string) { debugfs(t, img, "sif /x2 file_acl 0x7fffffff") }, "outside the filesystem"},
}

// extentLoop makes f's extent root (depth 2) point at g's first block,
// rewritten as a depth-1 index node that points at itself.
func extentLoop(t *testing.T, img string) {
	gb := blockOff(t, img, "/g", 0)
	debugfs(t, img, "sif /f block[1] 0x20004", "sif /f block[0] 0x1f30a", "sif /f block[3] 0",
		fmt.Sprintf("sif /f block[4] %d", gb/1024), "sif /f block[5] 0")
	patch(t, img, gb, []uint16{0xf30a, 1, 84, 1, 0, 0})
	patch(t, img, gb+12, []uint32{0, uint32(gb / 1024), 0})
}

// xattrBlock is the offset of path's xattr block.
func xattrBlock(t *testing.T, img, path string) int64 {
	t.Helper()
	out := debugfs(t, img, "stat "+path)
	m := regexp.MustCompile(`File ACL: (\d+)`).FindStringSubmatch(out)
	if m == nil || m[1] == "0" {
		t.Fatalf("stat %s: no xattr block: %s", path, out)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n * 1024
}

// TestHostile reads every corrupted filesystem in full under a deadline:
// each must give an error naming the problem (no panic, no hang).
func TestHostile(t *testing.T) {
	need(t, "mke2fs", "debugfs")
	base := hostileBase(t)
	if fsys, err := openImage(t, base); err != nil {
		t.Fatalf("the base: %v", err)
	} else if _, err := walkAll(fsys); err != nil {
		t.Fatalf("the base: %v", err)
	}
	baseBytes, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range hostileCases {
		t.Run(c.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "h.img")
			if err := os.WriteFile(img, baseBytes, 0o644); err != nil {
				t.Fatal(err)
			}
			c.mutate(t, img)
			done := make(chan error, 1)
			go func() {
				fsys, err := openImage(t, img)
				if err == nil {
					_, err = walkAll(fsys)
				}
				done <- err
			}()
			select {
			case err := <-done:
				t.Log(err)
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Errorf("got %v, want an error with %q", err, c.want)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("no answer in 20 s (hang)")
			}
		})
	}
}
