package badinput

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf16"
)

// Hostile images at the partition-table, truncation, FAT and rfs.json
// level, flash's image checks, and names from an image in output. The
// hostile images are {image} (a fresh qemu-arm64 GPT image: rfs-boot FAT,
// rfs-root squashfs, rfs-data ext4) with bytes patched by the setup.

var le = binary.LittleEndian

// patchAt overwrites b at off in dir/dev.img.
func patchAt(t tester, dir string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, "dev.img"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// readAt reads n bytes of dir/dev.img at off.
func readAt(t tester, dir string, off int64, n int) []byte {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "dev.img"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	return b
}

func imageSize(t tester, dir string) int64 {
	st, err := os.Stat(filepath.Join(dir, "dev.img"))
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// patchGPT applies edit to the primary and the backup GPT header and their
// entry arrays (128 entries of 128 bytes), then fixes both CRCs, so that
// the reader cannot fall back to the other copy and must judge the values.
func patchGPT(edit func(hdr, ents []byte)) func(t tester, dir string) {
	return func(t tester, dir string) {
		t.Helper()
		last := imageSize(t, dir)/512 - 1
		for _, lba := range []int64{1, last} {
			hdr := readAt(t, dir, lba*512, 512)
			if string(hdr[:8]) != "EFI PART" {
				t.Fatalf("no GPT header at LBA %d", lba)
			}
			entLBA := int64(le.Uint64(hdr[72:]))
			ents := readAt(t, dir, entLBA*512, 128*128)
			edit(hdr, ents)
			le.PutUint32(hdr[88:], crc32.ChecksumIEEE(ents))
			le.PutUint32(hdr[16:], 0)
			le.PutUint32(hdr[16:], crc32.ChecksumIEEE(hdr[:92]))
			patchAt(t, dir, entLBA*512, ents)
			patchAt(t, dir, lba*512, hdr)
		}
	}
}

// gptEntry returns GPT entry n (1-based) of ents.
func gptEntry(ents []byte, n int) []byte { return ents[(n-1)*128 : n*128] }

// gptName sets an entry's name (UTF-16LE, 36 units).
func gptName(e []byte, name string) {
	clear(e[56:128])
	for i, u := range utf16.Encode([]rune(name)) {
		le.PutUint16(e[56+2*i:], u)
	}
}

// partStart returns the byte offset and size of partition n from the
// primary GPT.
func partStart(t tester, dir string, n int) (int64, int64) {
	hdr := readAt(t, dir, 512, 512)
	e := readAt(t, dir, int64(le.Uint64(hdr[72:]))*512+int64(n-1)*128, 128)
	first, last := int64(le.Uint64(e[32:])), int64(le.Uint64(e[40:]))
	return first * 512, (last - first + 1) * 512
}

func truncateTo(size int64) func(t tester, dir string) {
	return func(t tester, dir string) {
		if err := os.Truncate(filepath.Join(dir, "dev.img"), size); err != nil {
			t.Fatal(err)
		}
	}
}

func TestHostileTables(t *testing.T) {
	inspect := []string{"inspect", "{image}"}
	runCases(t, []badCase{
		{name: "gpt 0xffffffff entries", args: inspect, setup: patchGPT(func(h, _ []byte) { le.PutUint32(h[80:], 0xffffffff) }),
			want: []string{"no valid GPT or MBR partition table", "bad entry array (4294967295 x 128)"}, timeout: 20 * time.Second},
		{name: "gpt 0xffffffff entries, diff", args: []string{"diff", "{image}"}, setup: patchGPT(func(h, _ []byte) { le.PutUint32(h[80:], 0xffffffff) }),
			want: []string{"bad entry array"}, timeout: 20 * time.Second},
		{name: "gpt 0xffffffff entries, run", args: []string{"run", "--dry-run", "{image}"}, setup: patchGPT(func(h, _ []byte) { le.PutUint32(h[80:], 0xffffffff) }),
			want: []string{"bad entry array"}, timeout: 20 * time.Second},
		{name: "gpt huge entry size", args: inspect, setup: patchGPT(func(h, _ []byte) { le.PutUint32(h[84:], 0xfffffff8) }),
			want: []string{"bad entry array"}},
		{name: "gpt header size past its sector", args: inspect, setup: patchGPT(func(h, _ []byte) { le.PutUint32(h[12:], 0xffff) }),
			want: []string{"GPT header: bad size 65535"}},
		{name: "gpt usable range reversed", args: inspect, setup: patchGPT(func(h, _ []byte) { le.PutUint64(h[40:], 1<<40); le.PutUint64(h[48:], 34) }),
			want: []string{"GPT header: bad usable range"}},
		{name: "gpt entry LBA 2^63", args: []string{"diff", "{image}"}, setup: patchGPT(func(_, e []byte) { le.PutUint64(gptEntry(e, 3)[40:], 1<<63) }),
			want: []string{"GPT entry 3: LBA out of range"}},
		{name: "gpt entry ends before it starts", args: inspect, setup: patchGPT(func(_, e []byte) {
			p := gptEntry(e, 2)
			le.PutUint64(p[40:], le.Uint64(p[32:])-5)
		}), want: []string{"partition rfs-root (2): impossible position"}},
		{name: "gpt entry past the end", args: []string{"commit", "{image}", "-o", "{dir}/out.sqfs"}, setup: patchGPT(func(_, e []byte) { le.PutUint64(gptEntry(e, 3)[40:], 1<<40) }),
			want: []string{"partition rfs-data (3) ends at", "but the image is only", "truncated?"}},
		{name: "gpt partitions overlap", args: inspect, setup: patchGPT(func(_, e []byte) { le.PutUint64(gptEntry(e, 2)[32:], le.Uint64(gptEntry(e, 1)[40:])-10) }),
			want: []string{"partition rfs-boot (1) and partition rfs-root (2) overlap"}},
		{name: "gpt partition over the table", args: []string{"reset", "{image}"}, setup: patchGPT(func(_, e []byte) { le.PutUint64(gptEntry(e, 1)[32:], 2) }),
			want: []string{"overlaps the gpt partition table"}},
		{name: "gpt partition name with escapes, overlapping", args: inspect, setup: patchGPT(func(_, e []byte) {
			gptName(gptEntry(e, 2), "evil\n\x1b[2J")
			le.PutUint64(gptEntry(e, 2)[32:], le.Uint64(gptEntry(e, 1)[40:])-10)
		}), want: []string{`partition "evil\n\x1b[2J" (2)`, "overlap"},
			check: func(t tester, dir, out string) {
				if strings.Contains(out, "\x1b") {
					t.Errorf("a raw escape reached the output")
				}
			}},
		{name: "no table at all", args: inspect, setup: func(t tester, dir string) {
			patchAt(t, dir, 0, make([]byte, 1<<20))
			patchAt(t, dir, imageSize(t, dir)-1<<20, make([]byte, 1<<20))
		},
			want: []string{"no valid GPT or MBR partition table"}},
		{name: "mbr partition past the end", args: inspect, setup: func(t tester, dir string) {
			// The GPT headers gone, the protective MBR made a plain MBR
			// whose one partition claims 2 TiB.
			patchAt(t, dir, 512, make([]byte, 512))
			patchAt(t, dir, imageSize(t, dir)-512, make([]byte, 512))
			e := make([]byte, 16)
			e[4] = 0x83
			le.PutUint32(e[8:], 2048)
			le.PutUint32(e[12:], 0xffffffff)
			patchAt(t, dir, 446, e)
		}, want: []string{"partition rfs-boot (1) ends at", "truncated?"}},
	})
}

func TestTruncatedImages(t *testing.T) {
	const cut = 100 << 20
	want := []string{"partition rfs-data (3) ends at", "but the image is only 104857600 bytes: truncated?"}
	runCases(t, []badCase{
		{name: "inspect", args: []string{"inspect", "{image}"}, setup: truncateTo(cut), want: want},
		{name: "inspect --json", args: []string{"inspect", "--json", "{image}"}, setup: truncateTo(cut), want: want},
		{name: "diff", args: []string{"diff", "{image}"}, setup: truncateTo(cut), want: want},
		{name: "commit", args: []string{"commit", "{image}", "-o", "{dir}/layer.sqfs"}, setup: truncateTo(cut), want: want},
		{name: "run", args: []string{"run", "--dry-run", "{image}"}, setup: truncateTo(cut), want: want},
		{name: "reset", args: []string{"reset", "{image}"}, setup: truncateTo(cut), want: want},
		{name: "flash", args: []string{"flash", "{image}", "{dir}/card.img", "--to-file"}, setup: truncateTo(cut), want: append([]string{"refusing to flash"}, want...)},
		{name: "cut inside the root", args: []string{"inspect", "{image}"}, setup: func(t tester, dir string) {
			start, size := partStart(t, dir, 2)
			truncateTo(start+size/2)(t, dir)
		}, want: []string{"partition rfs-root (2) ends at", "truncated?"}},
		{name: "cut inside the boot partition", args: []string{"run", "--dry-run", "{image}"}, setup: truncateTo(20 << 20), want: []string{"partition rfs-boot (1) ends at", "truncated?"}},
		{name: "cut one sector short", args: []string{"diff", "{image}"}, setup: func(t tester, dir string) {
			// Only the backup GPT's last sector is lost: the primary is
			// fine and every partition fits: this must still work...
			// so cut into the data partition's last sector instead.
			start, size := partStart(t, dir, 3)
			truncateTo(start+size-512)(t, dir)
		}, want: []string{"partition rfs-data (3) ends at", "truncated?"}},
		{name: "only the table left", args: []string{"inspect", "{image}"}, setup: truncateTo(1 << 20), want: []string{"partition rfs-boot (1) ends at", "truncated?"}},
		{name: "cut inside the table", args: []string{"inspect", "{image}"}, setup: truncateTo(1000), want: []string{"no valid GPT or MBR partition table"}},
		{name: "empty", args: []string{"inspect", "{image}"}, setup: truncateTo(0), want: []string{"no valid GPT or MBR partition table", "read MBR"}},
	})
}

func TestFlashImageChecks(t *testing.T) {
	out := "{dir}/card.img"
	runCases(t, []badCase{
		{name: "random bytes", args: []string{"flash", "{dir}/random.img", out, "--to-file"}, setup: func(t tester, dir string) {
			b := make([]byte, 4<<20)
			for i := range b {
				b[i] = byte(i*7 + i>>9)
			}
			writeFile(t, dir, "random.img", string(b))
		}, want: []string{"refusing to flash", "not a disk image", "no valid GPT or MBR partition table"}},
		{name: "a squashfs", args: []string{"flash", "{dir}/root.sqfs", out, "--to-file"}, setup: func(t tester, dir string) {
			copyFile(t, fixtureImage(t), filepath.Join(dir, "dev.img"))
			start, size := partStart(t, dir, 2)
			b := readAt(t, dir, start, int(size))
			os.Remove(filepath.Join(dir, "dev.img"))
			writeFile(t, dir, "root.sqfs", string(b))
		}, want: []string{"it is a squashfs file system, not a disk image"}},
		{name: "empty file", args: []string{"flash", "{dir}/empty.img", out, "--to-file"}, setup: func(t tester, dir string) { writeFile(t, dir, "empty.img", "") },
			want: []string{"not a disk image", "read MBR"}},
		{name: "a text file", args: []string{"flash", "{dir}/rfs.yaml", out, "--to-file"}, setup: func(t tester, dir string) {
			writeFile(t, dir, "rfs.yaml", strings.Repeat("board: qemu-arm64\n", 100))
		}, want: []string{"not a disk image"}},
		{name: "truncated image", args: []string{"flash", "{image}", out, "--to-file"}, setup: truncateTo(100 << 20), want: []string{"refusing to flash", "truncated?"}},
		{name: "hostile table", args: []string{"flash", "{image}", out, "--to-file"}, setup: patchGPT(func(h, _ []byte) { le.PutUint32(h[80:], 0xffffffff) }),
			want: []string{"not a disk image", "bad entry array"}},
		{name: "image mounted read-write through a loop device", root: true, args: []string{"flash", "{image}", out, "--to-file"},
			setup: loopMount("ext4", 3, "rw,noinit_itable"), want: []string{"refusing to flash", "mounted read-write", "losetup -d"}},
		{name: "image mounted read-write, to a loop device", root: true, args: []string{"flash", "{image}", "{dir}/nothing", "--force", "--yes"},
			setup: loopMount("ext4", 3, "rw,noinit_itable"), want: []string{"mounted read-write"}},
	})
}

// loopMountAt attaches partition n of dir/dev.img to a loop device and
// mounts it (opts) on a directory outside dir. undo unmounts and detaches;
// it also runs when the test ends, if it was not called.
func loopMountAt(t tester, dir, fstype string, n int, opts string) (mnt string, undo func()) {
	start, size := partStart(t, dir, n)
	o, err := exec.Command("losetup", "--find", "--show", "--offset", itoa(start), "--sizelimit", itoa(size), filepath.Join(dir, "dev.img")).CombinedOutput()
	if err != nil {
		t.Skip("losetup: " + err.Error() + " " + string(o))
	}
	dev := strings.TrimSpace(string(o))
	mnt = t.TempDir()
	if o, err := exec.Command("mount", "-t", fstype, "-o", opts, dev, mnt).CombinedOutput(); err != nil {
		exec.Command("losetup", "-d", dev).Run()
		t.Fatalf("mount %s: %v %s", dev, err, o)
	}
	exec.Command("sync").Run()
	done := false
	undo = func() {
		if !done {
			done = true
			exec.Command("umount", mnt).Run()
			exec.Command("losetup", "-d", dev).Run()
		}
	}
	if cl, ok := t.(interface{ Cleanup(func()) }); ok {
		cl.Cleanup(undo)
	}
	return mnt, undo
}

// loopMount is loopMountAt as a case setup: mounted while the case runs.
func loopMount(fstype string, n int, opts string) func(t tester, dir string) {
	return func(t tester, dir string) { loopMountAt(t, dir, fstype, n, opts) }
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// fatGeo is where things are in the boot partition's FAT32.
type fatGeo struct {
	start, cs, fatStart, fatSize, dataStart int64
	nFATs                                   int
	root                                    uint32
}

func bootFAT(t tester, dir string) fatGeo {
	start, _ := partStart(t, dir, 1)
	bs := readAt(t, dir, start, 512)
	bps := int64(le.Uint16(bs[11:]))
	g := fatGeo{start: start, cs: int64(bs[13]) * bps, fatStart: start + int64(le.Uint16(bs[14:]))*bps, root: le.Uint32(bs[44:])}
	g.nFATs, g.fatSize = int(bs[16]), int64(le.Uint32(bs[36:]))*bps
	g.dataStart = g.fatStart + int64(g.nFATs)*g.fatSize
	return g
}

func (g fatGeo) cluster(c uint32) int64 { return g.dataStart + int64(c-2)*g.cs }

// setFAT sets cluster c's entry to v in every FAT (so that no reader can
// notice the damage by comparing the copies).
func (g fatGeo) setFAT(t tester, dir string, c, v uint32) {
	for i := 0; i < g.nFATs; i++ {
		patchAt(t, dir, g.fatStart+int64(i)*g.fatSize+int64(c)*4, u32(v))
	}
}

// dirent returns the offset of the short entry of name in the root
// directory (matched by its long name, as rfs writes lower-case names).
func dirent(t tester, dir string, g fatGeo, name string) int64 {
	t.Helper()
	b := readAt(t, dir, g.cluster(g.root), 64*1024)
	var lfn []uint16
	for i := 0; i+32 <= len(b) && b[i] != 0; i += 32 {
		e := b[i : i+32]
		if e[11] == 0x0f {
			var part []uint16
			for _, p := range []int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30} {
				if u := le.Uint16(e[p:]); u != 0 && u != 0xffff {
					part = append(part, u)
				}
			}
			lfn = append(part, lfn...)
			continue
		}
		if strings.EqualFold(string(utf16.Decode(lfn)), name) {
			return g.cluster(g.root) + int64(i)
		}
		lfn = nil
	}
	t.Fatalf("no %s in the boot partition's root directory", name)
	return 0
}

// patchBootFile rewrites a boot file's bytes in place (same length).
func patchBootFile(name string, edit func(b []byte)) func(t tester, dir string) {
	return func(t tester, dir string) {
		g := bootFAT(t, dir)
		e := readAt(t, dir, dirent(t, dir, g, name), 32)
		c := uint32(le.Uint16(e[20:]))<<16 | uint32(le.Uint16(e[26:]))
		b := readAt(t, dir, g.cluster(c), int(le.Uint32(e[28:]))) // rfs writes files contiguous
		edit(b)
		patchAt(t, dir, g.cluster(c), b)
	}
}

// patchDirent edits a boot file's directory entry.
func patchDirent(name string, edit func(e []byte)) func(t tester, dir string) {
	return func(t tester, dir string) {
		g := bootFAT(t, dir)
		off := dirent(t, dir, g, name)
		e := readAt(t, dir, off, 32)
		edit(e)
		patchAt(t, dir, off, e)
	}
}

func patchBPB(edit func(bs []byte)) func(t tester, dir string) {
	return func(t tester, dir string) {
		start, _ := partStart(t, dir, 1)
		bs := readAt(t, dir, start, 512)
		edit(bs)
		patchAt(t, dir, start, bs)
	}
}

func u32(v uint32) []byte { return le.AppendUint32(nil, v) }

func TestHostileBootPartition(t *testing.T) {
	inspect := []string{"inspect", "{image}"}
	run := []string{"run", "--dry-run", "{image}"}
	garbage := patchBootFile("rfs.json", func(b []byte) {
		for i := range b {
			b[i] = "#!garbage\x00\xff"[i%11]
		}
	})
	runCases(t, []badCase{
		{name: "rfs.json garbage", args: inspect, setup: garbage,
			want: []string{"rfs-boot partition: rfs.json: invalid JSON", "rebuild it with rfs build", "PARTUUID"}},
		{name: "rfs.json garbage, run", args: run, setup: garbage, want: []string{"rfs.json: invalid JSON"}},
		{name: "rfs.json garbage, --json", args: []string{"inspect", "--json", "{image}"}, setup: garbage, want: []string{`"partitions"`, "rfs.json: invalid JSON"}},
		{name: "rfs.json without a board", args: inspect, setup: patchBootFile("rfs.json", func(b []byte) {
			copy(b[bytes.Index(b, []byte(`"board"`)):], `"boarx"`)
		}), want: []string{"rfs.json: no board", "rebuild it"}},
		{name: "rfs.json missing", args: inspect, setup: func(t tester, dir string) {
			g := bootFAT(t, dir)
			off := dirent(t, dir, g, "rfs.json")
			patchAt(t, dir, off-32, []byte{0xe5}) // its long name
			patchAt(t, dir, off, []byte{0xe5})
		}, want: []string{"rfs-boot partition: rfs.json: no such file", "not an rfs image", "rebuild it"}},
		{name: "rfs.json claims 4 GiB", args: inspect, setup: patchDirent("rfs.json", func(e []byte) { copy(e[28:], u32(0xffffffff)) }),
			want: []string{"rfs.json: 4294967295 bytes, more than the 1048576 accepted"}},
		{name: "cmdline.txt claims 2 GiB", args: run, setup: patchDirent("cmdline.txt", func(e []byte) { copy(e[28:], u32(0x7fffffff)) }),
			want: []string{"cmdline.txt: 2147483647 bytes, more than the 1048576 accepted"}},
		{name: "kernel larger than the partition", args: run, setup: patchDirent("vmlinuz", func(e []byte) { copy(e[28:], u32(0xfffffff0)) }),
			want: []string{"vmlinuz: 4294967280 bytes, more than the"}},
		{name: "kernel chain loops", args: run, setup: func(t tester, dir string) {
			g := bootFAT(t, dir)
			e := readAt(t, dir, dirent(t, dir, g, "vmlinuz"), 32)
			c := uint32(le.Uint16(e[20:]))<<16 | uint32(le.Uint16(e[26:]))
			g.setFAT(t, dir, c+5, c)
		}, want: []string{"vmlinuz: cluster chain loops"}},
		{name: "kernel chain cut", args: run, setup: func(t tester, dir string) {
			g := bootFAT(t, dir)
			e := readAt(t, dir, dirent(t, dir, g, "vmlinuz"), 32)
			c := uint32(le.Uint16(e[20:]))<<16 | uint32(le.Uint16(e[26:]))
			g.setFAT(t, dir, c+1, 0)
		}, want: []string{"vmlinuz: cluster chain ends after 2 of"}},
		{name: "root directory loops", args: inspect, setup: func(t tester, dir string) {
			g := bootFAT(t, dir)
			b := readAt(t, dir, g.cluster(g.root), int(g.cs))
			for i := 0; i < len(b); i += 32 {
				if b[i] == 0 {
					b[i] = 0xe5 // no end marker
				}
			}
			patchAt(t, dir, g.cluster(g.root), b)
			g.setFAT(t, dir, g.root, g.root)
		}, want: []string{"directory /: cluster chain loops"}},
		{name: "bytes per sector 0", args: inspect, setup: patchBPB(func(bs []byte) { bs[11], bs[12] = 0, 0 }),
			want: []string{"read FAT of rfs-boot partition: FAT32 boot sector: bytes per sector 0"}},
		{name: "sectors per cluster 0", args: run, setup: patchBPB(func(bs []byte) { bs[13] = 0 }),
			want: []string{"sectors per cluster 0"}},
		{name: "file system larger than its partition", args: inspect, setup: patchBPB(func(bs []byte) { copy(bs[32:], u32(0xfffffff0)) }),
			want: []string{"but the partition is only"}},
		{name: "root cluster out of range", args: run, setup: patchBPB(func(bs []byte) { copy(bs[44:], u32(0x0ffffff0)) }),
			want: []string{"root directory cluster 268435440 out of range"}},
		{name: "board with a terminal escape", args: run, setup: patchBootFile("rfs.json", func(b []byte) {
			copy(b[bytes.Index(b, []byte("qemu-arm64")):], `q\u001b[2J`)
		}), want: []string{`unknown board "q\x1b[2J"`}, check: noRawEscape},
	})
}

func noRawEscape(t tester, dir, out string) {
	if strings.ContainsAny(out, "\x1b\r") {
		t.Errorf("raw control characters reached the output: %q", out)
	}
}

// runOK runs rfs on a copy of the fixture image that setup changed, where
// the right outcome is success (the runner's cases all expect a failure):
// exit 0 within a deadline, no crash, and check on the output.
func runOK(t *testing.T, args []string, setup func(t tester, dir string), check func(t *testing.T, out string)) {
	t.Helper()
	dir := t.TempDir()
	copyFile(t, fixtureImage(t), filepath.Join(dir, "dev.img"))
	setup(t, dir)
	for i := range args {
		args[i] = strings.ReplaceAll(args[i], "{image}", filepath.Join(dir, "dev.img"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, rfsBin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	t.Logf("rfs %s\n%s", strings.Join(args, " "), out)
	if ctx.Err() != nil || err != nil {
		t.Fatalf("rfs %s: %v (deadline: %v)", strings.Join(args, " "), err, ctx.Err())
	}
	check(t, string(out))
}

func TestNamesFromImage(t *testing.T) {
	noForgery := func(t *testing.T, out string, want ...string) {
		t.Helper()
		if strings.ContainsAny(out, "\x1b\r") {
			t.Errorf("raw control characters reached the output")
		}
		for _, line := range strings.Split(out, "\n") {
			if line == "D /etc/shadow" || strings.HasPrefix(line, "board forged") {
				t.Errorf("forged line %q", line)
			}
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("output lacks %s", w)
			}
		}
	}
	t.Run("diff", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root (loop mount to make the names)")
		}
		names := []string{"evil\nD /etc/shadow", "clear\x1b[2Jscreen", "cr\rreturn", `quo"te\back`, "bad\xffutf8", "plain name"}
		runOK(t, []string{"diff", "{image}"}, func(t tester, dir string) {
			mnt, undo := loopMountAt(t, dir, "ext4", 3, "rw")
			for _, d := range []string{"upper", "work"} {
				os.MkdirAll(filepath.Join(mnt, d), 0o755)
			}
			for _, n := range names {
				writeFile(t, filepath.Join(mnt, "upper"), n, "x")
			}
			undo()
		}, func(t *testing.T, out string) {
			noForgery(t, out, `A "/evil\nD /etc/shadow"`, `A "/clear\x1b[2Jscreen"`, `A "/cr\rreturn"`, `A "/quo\"te\\back"`, `A "/bad\xffutf8"`, "A /plain name")
		})
		runOK(t, []string{"diff", "--json", "{image}"}, func(t tester, dir string) {
			mnt, undo := loopMountAt(t, dir, "ext4", 3, "rw")
			os.MkdirAll(filepath.Join(mnt, "upper"), 0o755)
			writeFile(t, filepath.Join(mnt, "upper"), names[0], "x")
			undo()
		}, func(t *testing.T, out string) {
			noForgery(t, out, `"path": "/evil\nD /etc/shadow"`)
		})
	})
	t.Run("inspect partition name", func(t *testing.T) {
		runOK(t, []string{"inspect", "{image}"}, patchGPT(func(_, e []byte) { gptName(gptEntry(e, 3), "data\n\x1b[2J") }), func(t *testing.T, out string) {
			noForgery(t, out, `"data\n\x1b[2J"`)
		})
	})
	t.Run("inspect rfs.json fields", func(t *testing.T) {
		runOK(t, []string{"inspect", "{image}"}, patchBootFile("rfs.json", func(b []byte) {
			copy(b[bytes.Index(b, []byte("qemu-arm64")):], `q\u001b[2J`)
			i := bytes.Index(b, []byte(`"kernel": "`)) + len(`"kernel": "`)
			copy(b[i:], `\nboard forged`)
		}), func(t *testing.T, out string) {
			noForgery(t, out, `board "q\x1b[2J"`, `kernel "\nboard forged`)
		})
	})
}
