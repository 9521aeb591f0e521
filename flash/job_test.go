//go:build linux

package flash

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/image"
)

// testImage writes a 64 MiB sparse GPT image: partition "a" (16 MiB) with
// 3 MiB of random data at its start and 64 KiB at 10 MiB, partition "b"
// (8 MiB) with 100 KiB at 5 MiB; the rest are holes.
func testImage(t *testing.T, dir string) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32()) | 1 // never zero, so a zeroed byte shows
		}
		return b
	}
	l := image.Layout{
		DiskGUID: "11111111-2222-3333-4444-555555555555",
		Size:     64 * MiB,
		Partitions: []image.Partition{
			{Name: "a", Type: image.TypeLinuxData, GUID: "11111111-2222-3333-4444-000000000001", Size: 16 * MiB,
				Write: func(_ context.Context, w io.WriterAt) (int64, error) {
					w.WriteAt(random(3*MiB), 0)
					w.WriteAt(random(64<<10), 10*MiB)
					return 10*MiB + 64<<10, nil
				}},
			{Name: "b", Type: image.TypeLinuxData, GUID: "11111111-2222-3333-4444-000000000002", Size: 8 * MiB,
				Write: func(_ context.Context, w io.WriterAt) (int64, error) {
					w.WriteAt(random(100<<10), 5*MiB)
					return 5*MiB + 100<<10, nil
				}},
		},
	}
	p := filepath.Join(dir, "test.img")
	if _, err := l.WriteFile(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPlan(t *testing.T) {
	img := testImage(t, t.TempDir())
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := MakePlan(f, 64*MiB, 100*MiB)
	if err != nil {
		t.Fatal(err)
	}
	if p.Table == nil || len(p.Table.Partitions) != 2 {
		t.Fatalf("table: %+v", p.Table)
	}
	// a: 1..17 MiB, b: 17..25 MiB.
	want := []Extent{
		{Off: 0, Len: 4 * MiB},                // MBR+GPT, a's first MiB and its 3 MiB of data
		{Off: 11 * MiB, Len: 64 << 10},        // a's data at 10 MiB
		{Off: 16 * MiB, Len: 2 * MiB},         // a's last MiB, b's first MiB
		{Off: 22 * MiB, Len: 100 << 10},       // b's data at 5 MiB
		{Off: 24 * MiB, Len: MiB},             // b's last MiB
		{Off: 63 * MiB, Len: MiB},             // backup GPT
		{Off: 99 * MiB, Len: MiB, Zero: true}, // the target's tail
	}
	if len(p.Extents) != len(want) {
		t.Fatalf("extents = %+v\nwant %+v", p.Extents, want)
	}
	for i := range want {
		if p.Extents[i] != want[i] {
			t.Errorf("extent %d = %+v, want %+v", i, p.Extents[i], want[i])
		}
	}
	if p.Data > 4*MiB || p.Data < 3*MiB {
		t.Errorf("data = %d", p.Data)
	}
	// Chunks never cross 4 MiB boundaries nor the first MiB.
	for _, c := range p.chunks(4 * MiB) {
		if c.off/(4*MiB) != (c.off+int64(c.n)-1)/(4*MiB) || c.off < MiB && c.off+int64(c.n) > MiB {
			t.Errorf("chunk %d+%d crosses a boundary", c.off, c.n)
		}
	}
}

func TestNormalize(t *testing.T) {
	got := Normalize([]Extent{{Off: 5000, Len: 10}, {Off: 100, Len: 1}, {Off: 200000, Len: 5}, {Off: 120000, Len: 4096}, {Off: 1 << 30, Len: 1}}, 210000)
	// 118784..126976 and 196608..200704 are 68 KiB apart: not merged.
	want := []Extent{{Off: 0, Len: 8192}, {Off: 118784, Len: 8192}, {Off: 196608, Len: 4096}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("Normalize = %+v, want %+v", got, want)
	}
}

// equalRanges checks that target equals the image over every extent of
// plan (beyond the image: zeros).
func equalRanges(t *testing.T, img, target string, p *Plan) {
	t.Helper()
	a, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(target)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, e := range p.Extents {
		got := make([]byte, e.Len)
		if _, err := f.ReadAt(got, e.Off); err != nil {
			t.Fatal(err)
		}
		want := make([]byte, e.Len)
		if !e.Zero {
			want = a[e.Off:e.End()]
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the image in %d+%d", target, e.Off, e.Len)
		}
	}
}

func TestToFile(t *testing.T) {
	dir := t.TempDir()
	img := testImage(t, dir)
	out := filepath.Join(dir, "copy.img")
	os.WriteFile(out, bytes.Repeat([]byte{0xAA}, 80*MiB), 0o644) // overwritten, then cut to size
	if _, err := Open(img, out, Options{}); !errors.Is(err, ErrNotBlock) {
		t.Errorf("a file without ToFile: %v", err)
	}
	if _, err := Open(img, img, Options{ToFile: true}); err == nil || !strings.Contains(err.Error(), "the image itself") {
		t.Errorf("the image onto itself: %v", err)
	}
	j, err := Open(img, out, Options{ToFile: true})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	ctx := context.Background()
	if err := j.Write(ctx); err != nil {
		t.Fatal(err)
	}
	if err := j.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(img)
	b, _ := os.ReadFile(out)
	if !bytes.Equal(a, b) {
		t.Error("the copy differs from the image")
	}
	if j.Written != j.Plan.Bytes() || j.Written > 12*MiB {
		t.Errorf("wrote %d bytes, plan %d", j.Written, j.Plan.Bytes())
	}

	// A wrapper over the target that flips one bit: verify names the byte.
	const bad = 16*MiB + 12345
	err = j.verify(ctx, flipReader{f: mustOpen(t, out), at: bad})
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.Offset != bad || ve.Got != ve.Want^0x10 {
		t.Fatalf("verify over a flipped bit: %v", err)
	}
	if !strings.Contains(err.Error(), "at byte 16789561 (0x1003039") || !strings.Contains(err.Error(), "may be failing or fake") {
		t.Errorf("message: %v", err)
	}

	// Bits flipped in two chunks: the lower one is reported.
	err = j.verify(ctx, flipReader{f: mustOpen(t, out), at: 22*MiB + 5, at2: bad})
	if !errors.As(err, &ve) || ve.Offset != bad {
		t.Fatalf("verify over two flipped bits: %v", err)
	}

	// The image modified after Open: the target differs from it now, and
	// the message says the image changed rather than blame the card.
	img2, err := os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := img2.WriteAt([]byte{0}, 22*MiB+5); err != nil { // b's data, never zero in the image
		t.Fatal(err)
	}
	img2.Close()
	err = j.Verify(ctx)
	if !errors.As(err, &ve) || ve.Offset != 22*MiB+5 || ve.Want != 0 || !ve.ImageChanged || !strings.Contains(err.Error(), "the image was modified") {
		t.Fatalf("verify after modifying the image: %v", err)
	}
}

// flipReader flips bit 4 of the bytes at and at2 (when not 0) of f.
type flipReader struct {
	f       *os.File
	at, at2 int64
}

func (r flipReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := r.f.ReadAt(p, off)
	for _, at := range []int64{r.at, r.at2} {
		if at > 0 && at >= off && at < off+int64(n) {
			p[at-off] ^= 0x10
		}
	}
	return n, err
}

func mustOpen(t *testing.T, p string) *os.File {
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// An interrupted write leaves no partition table: the first MiB is zero.
func TestInterrupted(t *testing.T) {
	dir := t.TempDir()
	img := testImage(t, dir)
	out := filepath.Join(dir, "copy.img")
	j, err := Open(img, out, Options{ToFile: true})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	ctx, cancel := context.WithCancel(context.Background())
	j.opts.Progress = cancelAfter{cancel: cancel, after: 2 * MiB, n: new(int64)}
	err = j.Write(ctx)
	if !errors.Is(err, ErrIncomplete) || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "no partition table") {
		t.Fatalf("interrupted write: %v", err)
	}
	b, _ := os.ReadFile(out)
	if !bytes.Equal(b[:MiB], make([]byte, MiB)) {
		t.Error("the first MiB of an interrupted write is not zero")
	}
}

type cancelAfter struct {
	cancel func()
	after  int64
	n      *int64
}

func (c cancelAfter) Start(string, int64) {}
func (c cancelAfter) Done(bool)           {}
func (c cancelAfter) Add(n int64) {
	if *c.n += n; *c.n >= c.after {
		c.cancel()
	}
}

// --- on loop devices (root) ---

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for loop devices (losetup); run the tests as root (CI does)")
	}
	if _, err := exec.LookPath("losetup"); err != nil {
		t.Skip("needs losetup (util-linux)")
	}
}

// loopDev attaches a backing file of size bytes filled with fill (a
// pattern, so a region left unwritten shows) and returns the device.
func loopDev(t *testing.T, dir string, size int64, fill byte) string {
	t.Helper()
	back := filepath.Join(dir, "back-"+strings.ReplaceAll(t.Name(), "/", "_"))
	if err := os.WriteFile(back, bytes.Repeat([]byte{fill}, int(size)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "--find", "--show", "--partscan", back).CombinedOutput()
	if err != nil {
		t.Skipf("losetup failed (no loop devices here?): %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	return dev
}

func TestLoopFlashVerify(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	img := testImage(t, dir)
	for _, tc := range []struct {
		name     string
		buffered bool
		fill     byte
	}{{"direct-garbage", false, 0x5A}, {"buffered-garbage", true, 0xFF}, {"direct-zeros", false, 0}} {
		t.Run(tc.name, func(t *testing.T) {
			dev := loopDev(t, dir, 80*MiB, tc.fill)
			d, err := System{}.Lookup(dev)
			if err != nil {
				t.Fatal(err)
			}
			if d.Size != 80*MiB || d.Removable || d.Transport != "loop" {
				t.Errorf("loop disk = %+v", d)
			}
			if err := Check(d, 64*MiB, Policy{Yes: true}); err == nil || !strings.Contains(err.Error(), "not a removable disk") {
				t.Errorf("loop without --force: %v", err)
			}
			if err := Check(d, 64*MiB, Policy{Force: true, Yes: true}); err != nil {
				t.Fatal(err)
			}
			j, err := Open(img, dev, Options{Buffered: tc.buffered})
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			if j.Direct == tc.buffered {
				t.Errorf("Direct = %v", j.Direct)
			}
			ctx := context.Background()
			if err := j.Write(ctx); err != nil {
				t.Fatal(err)
			}
			if err := j.Verify(ctx); err != nil {
				t.Fatal(err)
			}
			if err := j.Reread(); err != nil {
				t.Errorf("BLKRRPART on a --partscan loop device: %v", err)
			}
			j.Close()
			equalRanges(t, img, dev, j.Plan)
			if tc.fill == 0 {
				// Over zeros, the device is the image, byte for byte.
				if out, err := exec.Command("cmp", "-n", "67108864", img, dev).CombinedOutput(); err != nil {
					t.Errorf("cmp: %v %s", err, out)
				}
			}
			// The backup GPT stays where the image has it (as with dd): on a
			// larger device sgdisk notes exactly that, and nothing else.
			if out, err := exec.Command("sgdisk", "-v", dev).CombinedOutput(); err == nil && !strings.Contains(string(out), "No problems found") &&
				!(strings.Contains(string(out), "Identified 1 problems") && strings.Contains(string(out), "secondary header's self-pointer")) {
				t.Errorf("sgdisk -v %s:\n%s", dev, out)
			}
		})
	}
}

// Corrupt bytes on the device after the write: verify finds the first,
// in the image's data as in the zeros written beyond the image's end.
func TestLoopVerifyFindsCorruption(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	img := testImage(t, dir)
	dev := loopDev(t, dir, 72*MiB, 0x33)
	j, err := Open(img, dev, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	ctx := context.Background()
	if err := j.Write(ctx); err != nil {
		t.Fatal(err)
	}
	if err := j.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	invert := func(off int64) {
		t.Helper()
		f, err := os.OpenFile(dev, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		b := []byte{0}
		f.ReadAt(b, off)
		f.WriteAt([]byte{^b[0]}, off)
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	const bad, badTail = 2*MiB + 777, 72*MiB - 3 // the target's last MiB: zeros
	invert(badTail)
	invert(bad)
	err = j.Verify(ctx)
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.Offset != bad || ve.ImageChanged {
		t.Fatalf("verify after corrupting byte %d: %v", bad, err)
	}
	t.Log(err)
	invert(bad)
	err = j.Verify(ctx)
	if !errors.As(err, &ve) || ve.Offset != badTail || ve.Got != 0xFF || ve.Want != 0 {
		t.Fatalf("verify after corrupting byte %d: %v", badTail, err)
	}
}

// Refusals with the real sysfs and mount table: a mounted loop device, a
// too small one, a partition.
func TestLoopRefusals(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	img := testImage(t, dir)

	small := loopDev(t, dir, 32*MiB, 0)
	d, err := System{}.Lookup(small)
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(d, 64*MiB, Policy{Force: true, Yes: true}); err == nil || !strings.Contains(err.Error(), "smaller than the image") {
		t.Errorf("too small: %v", err)
	}
	if _, err := Open(img, small, Options{}); err == nil || !strings.Contains(err.Error(), "smaller than the image") {
		t.Errorf("Open too small: %v", err)
	}

	if _, err := exec.LookPath("mkfs.ext2"); err != nil {
		t.Skip("mounted-disk refusals need mkfs.ext2 (e2fsprogs)")
	}
	mounted := loopDev(t, dir, 64*MiB, 0)
	if out, err := exec.Command("mkfs.ext2", "-q", "-F", mounted).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext2: %v %s", err, out)
	}
	mnt := filepath.Join(dir, "mnt point")
	os.Mkdir(mnt, 0o755)
	if out, err := exec.Command("mount", mounted, mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount ext2 here: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	d, err = System{}.Lookup(mounted)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Mounts) != 1 || d.Mounts[0].Point != mnt {
		t.Fatalf("mounts of %s = %+v", mounted, d.Mounts)
	}
	err = Check(d, 64*MiB, Policy{Force: true, Unmount: true, Yes: true})
	if err == nil || !strings.Contains(err.Error(), "mounted filesystems") || !strings.Contains(err.Error(), "--unmount only applies to removable disks") {
		t.Errorf("mounted, not removable: %v", err)
	}
	// The kernel's own guard: an O_EXCL open of a mounted device fails.
	if _, err := Open(img, mounted, Options{}); err == nil || !strings.Contains(err.Error(), "busy") {
		t.Errorf("Open of a mounted device: %v", err)
	}

	// The same device, with a fake sysfs saying it is a removable USB
	// stick, and the real mount table: --unmount unmounts, then it flashes.
	name := filepath.Base(mounted)
	f := newFakeTree(t)
	f.disk(name, "pci0000:00/usb1/1-1/host0/target0:0:0/0:0:0:0", d.Dev, "131072", map[string]string{"removable": "1"})
	sys := System{SysDir: filepath.Join(f.root, "sys")}
	d, err = sys.Lookup(mounted)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Removable || d.Transport != "usb" || len(d.Mounts) != 1 {
		t.Fatalf("fake removable %s = %+v", mounted, d)
	}
	if err := Check(d, 64*MiB, Policy{Yes: true}); err == nil || !strings.Contains(err.Error(), "add --unmount") {
		t.Errorf("mounted removable without --unmount: %v", err)
	}
	if err := Check(d, 64*MiB, Policy{Yes: true, Unmount: true}); err != nil {
		t.Fatal(err)
	}
	if err := Unmount(d); err != nil {
		t.Fatal(err)
	}
	j, err := Open(img, mounted, Options{})
	if err != nil {
		t.Fatalf("after --unmount: %v", err)
	}
	defer j.Close()
	if err := j.Write(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := j.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}

	// A partition is refused with the whole disk's name (fake sysfs: this
	// kernel may not parse partition tables).
	f.symlink("../../devices/virtual/block/"+name+"/"+name+"p1", "sys/dev/block/"+d.Dev)
	f.write("sys/devices/virtual/block/"+name+"/"+name+"p1/partition", "1")
	f.symlink("../../devices/virtual/block/"+name+"/"+name+"p1", "sys/class/block/"+name+"p1")
	if _, err := sys.Lookup(mounted); err == nil || !strings.Contains(err.Error(), "is a partition of "+name+": give the whole disk") {
		t.Errorf("partition: %v", err)
	}
}

// A device-mapper target whose sectors at 2 MiB come from dm-zero: writes
// there are dropped, reads give zeros. Verify must report the first byte.
func TestDeviceMapperCorruption(t *testing.T) {
	needRoot(t)
	if _, err := exec.LookPath("dmsetup"); err != nil {
		exec.Command("apt-get", "install", "-y", "dmsetup").Run()
	}
	if out, err := exec.Command("dmsetup", "version").CombinedOutput(); err != nil {
		t.Skipf("device-mapper unavailable (dmsetup version: %v: %s); TestLoopVerifyFindsCorruption covers corruption on a loop device instead",
			err, strings.TrimSpace(string(out)))
	}
	dir := t.TempDir()
	img := testImage(t, dir)
	under := loopDev(t, dir, 64*MiB, 0x77)
	const sectors = 64 * MiB / 512
	const badSector = 2 * MiB / 512
	table := strings.Join([]string{
		"0 " + itoa(badSector) + " linear " + under + " 0",
		itoa(badSector) + " 8 zero",
		itoa(badSector+8) + " " + itoa(sectors-badSector-8) + " linear " + under + " " + itoa(badSector+8),
	}, "\n")
	name := "rfs-flash-test-" + itoa(int64(os.Getpid()))
	cmd := exec.Command("dmsetup", "create", name)
	cmd.Stdin = strings.NewReader(table + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("dmsetup create: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("dmsetup", "remove", "--retry", name).Run() })
	dev := "/dev/mapper/" + name
	j, err := Open(img, dev, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if err := j.Write(context.Background()); err != nil {
		t.Fatal(err)
	}
	err = j.Verify(context.Background())
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.Offset != 2*MiB || ve.Got != 0 {
		t.Fatalf("verify through dm-zero at 2 MiB: %v", err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
