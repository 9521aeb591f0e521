package image

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/rfsbuild/rfs/image/fat"
	"github.com/rfsbuild/rfs/rootfs"
)

// zeroExt is a disk whose first bytes are b and the rest, up to size,
// zeros: an image as a fuzz input of its interesting prefix.
type zeroExt struct {
	b    []byte
	size int64
}

func (z zeroExt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= z.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), z.size-off))
	clear(p[:n])
	if off < int64(len(z.b)) {
		copy(p[:n], z.b[off:])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (zeroExt) Close() error { return nil }

var testMeta = Meta{Board: "qemu-arm64", Arch: "arm64", RFSVersion: "v0.1.0", BuildID: "abc", Kernel: "k@v1", KernelFile: KernelFile, Upper: "data",
	Layers: []LayerMeta{{File: "a.sqfs", SHA256: "00", Size: 4096, PARTUUID: "11111111-2222-4333-8444-555555555555"}}}

// seedLayout is the layout of seedImage's partitions.
func seedLayout(table string) *LayoutMeta {
	l := &LayoutMeta{Table: table, DiskID: "11111111-2222-4333-8444-555555555555", Partitions: []PartMeta{
		{Role: RoleBoot, Number: 1, Name: BootPartition, PARTUUID: "aaaaaaaa-0000-4000-8000-000000000001", FS: "vfat", Size: 34 * MiB, Policy: SizeFixed},
		{Role: RoleRoot, Number: 2, Name: RootPartition, PARTUUID: "bbbbbbbb-0000-4000-8000-000000000002", FS: "squashfs", Size: MiB, Policy: SizeFit},
		{Role: RoleLayer, Layer: 1, Number: 3, Name: LayerPartition(1), PARTUUID: "cccccccc-0000-4000-8000-000000000003", FS: "squashfs", Size: MiB, Policy: SizeFit},
		{Role: RoleData, Number: 4, Name: DataPartition, PARTUUID: "eeeeeeee-0000-4000-8000-000000000005", FS: "ext4", Size: MiB, Policy: SizeGrow},
	}}
	if table == "mbr" {
		l.DiskID = "12345678"
		for i := range l.Partitions {
			l.Partitions[i].PARTUUID = MBRPartUUID(0x12345678, i+1)
		}
	}
	return l
}

// seedImage writes a small rfs-like image (table: gpt or mbr) with a real
// boot FAT holding rfs.json (with the layout, or without one as rfs wrote
// it before), cmdline.txt and a kernel, and returns its bytes up to the
// last non-zero one, and its size.
func seedImage(t testing.TB, table string, withLayout bool) ([]byte, int64) {
	t.Helper()
	meta := testMeta
	if withLayout {
		meta.Layout = seedLayout(table)
	}
	tr := rootfs.New(0)
	for name, data := range map[string][]byte{MetaFile: meta.Marshal(), CmdlineFile: []byte("console=ttyAMA0\n"), KernelFile: bytes.Repeat([]byte("kernel"), 2000), InitrdFile: []byte("initrd")} {
		if err := tr.Add("/"+name, &rootfs.Node{Type: rootfs.Regular, Perm: 0o644, Content: rootfs.Bytes(data)}); err != nil {
			t.Fatal(err)
		}
	}
	writeFAT := func(_ context.Context, w io.WriterAt) (int64, error) {
		return 34 * MiB, fat.Write(w, 34*MiB, tr, fat.Options{Label: "RFS-BOOT"})
	}
	// The other partitions are left empty so that the interesting bytes
	// (tables, FAT) are a short prefix; one layer on MBR, where two would
	// put EBRs far into the disk.
	empty := func(context.Context, io.WriterAt) (int64, error) { return 0, nil }
	parts := []Partition{
		{Name: BootPartition, Type: TypeESP, GUID: "aaaaaaaa-0000-4000-8000-000000000001", MBRType: MBRTypeFAT32LBA, Bootable: true, Size: 34 * MiB, Write: writeFAT},
		{Name: RootPartition, Type: TypeRootARM64, GUID: "bbbbbbbb-0000-4000-8000-000000000002", MBRType: MBRTypeLinux, Size: MiB, Write: empty},
		{Name: LayerPartition(1), Type: TypeLinuxData, GUID: "cccccccc-0000-4000-8000-000000000003", MBRType: MBRTypeLinux, Size: MiB, Write: empty},
		{Name: DataPartition, Type: TypeLinuxData, GUID: "eeeeeeee-0000-4000-8000-000000000005", MBRType: MBRTypeLinux, Size: MiB, Write: empty},
	}
	if table == "mbr" {
		for i := range parts {
			parts[i].GUID = MBRPartUUID(0x12345678, i+1)
		}
	}
	l := Layout{Table: table, DiskGUID: "11111111-2222-4333-8444-555555555555", DiskID: 0x12345678, Partitions: parts}
	path := filepath.Join(t.TempDir(), "seed.img")
	if _, err := l.WriteFile(context.Background(), path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	size := int64(len(b))
	// Cut the zeros before the backup GPT's MiB: the fuzz input is the
	// front; the backup header is lost, which the reader tolerates.
	end := len(b) - MiB
	for end > 0 && b[end-1] == 0 {
		end--
	}
	return b[:end], size
}

// TestSeedImages: the seeds are real images that read back whole.
func TestSeedImages(t *testing.T) {
	for _, table := range []string{"gpt", "mbr"} {
		for _, withLayout := range []bool{false, true} {
			b, size := seedImage(t, table, withLayout)
			d, err := readDisk(zeroExt{b, size}, size, table, false)
			if err != nil {
				t.Fatalf("%s: %v", table, err)
			}
			boot, err := d.ReadBoot()
			if err != nil || boot.Meta.Board != testMeta.Board || boot.Cmdline != "console=ttyAMA0" || len(boot.Kernel) != 12000 {
				t.Fatalf("%s: ReadBoot = %+v, %v", table, boot, err)
			}
			img, err := d.Image()
			if err != nil || img.Inferred == withLayout || len(img.Layers()) != 1 {
				t.Fatalf("%s, layout %v: Image = %+v, %v", table, withLayout, img, err)
			}
		}
	}
}

// FuzzOpen: image.Open reads the tables and boot partition of whatever
// disk it is given (inspect, diff, commit, run on a card from the field):
// errors, never a panic, hang or an allocation beyond the disk's size.
func FuzzOpen(f *testing.F) {
	for _, table := range []string{"gpt", "mbr"} {
		for _, withLayout := range []bool{false, true} {
			b, size := seedImage(f, table, withLayout)
			f.Add(b, uint32(size-int64(len(b))))
			f.Add(b[:34*512], uint32(size-34*512))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte, extra uint32) {
		size := int64(len(b)) + int64(extra)
		d, err := readDisk(zeroExt{b, size}, size, "fuzz.img", false)
		if err != nil {
			return
		}
		for _, p := range d.Partitions {
			if p.Start < 0 || p.Size <= 0 || p.Start+p.Size > size {
				t.Fatalf("partition %+v outside a %d-byte disk", p, size)
			}
		}
		if boot, err := d.ReadBoot(); err == nil && int64(len(boot.Kernel)+len(boot.Initrd)) > size {
			t.Fatalf("read %d bytes from a %d-byte disk", len(boot.Kernel)+len(boot.Initrd), size)
		}
		img, err := d.Image()
		if err != nil {
			return
		}
		for _, p := range img.Parts {
			if p.Role == RoleLayer && (p.Layer < 1 || p.Layer > len(img.Parts)) {
				t.Fatalf("layer %d of %d partitions", p.Layer, len(img.Parts))
			}
		}
		if lowers, err := img.Lowers(); err == nil && lowers[0].Role != RoleRoot {
			t.Fatalf("lowers %+v", lowers)
		}
	})
}

// FuzzMeta: rfs.json comes from the boot partition: any bytes give a Meta
// with a board or an error.
func FuzzMeta(f *testing.F) {
	f.Add(testMeta.Marshal())
	for _, table := range []string{"gpt", "mbr"} {
		m := testMeta
		m.Layout = seedLayout(table)
		f.Add(m.Marshal())
	}
	f.Add([]byte(`{"board":"x","layout":{"table":"gpt","partitions":[{"role":"layer","layer":-1,"number":1e9}]}}`))
	f.Add([]byte(`{"board":""}`))
	f.Add([]byte(`{"board":"x","layers":[{"size":-1}]}`))
	f.Add([]byte("\xff\xfe{"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMeta(b)
		if err != nil {
			return
		}
		if m.Board == "" {
			t.Fatal("a Meta without a board")
		}
		again, err := ParseMeta(m.Marshal())
		if err != nil || again.Board != m.Board || len(again.Layers) != len(m.Layers) || (again.Layout == nil) != (m.Layout == nil) {
			t.Fatalf("round trip: %+v, %v", again, err)
		}
		if m.Layout != nil {
			m.Layout.Check() // an error or nil, never a panic
		}
	})
}
