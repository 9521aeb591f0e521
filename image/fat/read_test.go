package fat

import (
	"bytes"
	"encoding/binary"
	"errors"
	"maps"
	"os"
	"strings"
	"testing"
)

// zeroExt is a disk whose first bytes are b and the rest, up to size,
// zeros: a 33 MiB file system as a fuzz input of a few hundred KiB.
type zeroExt struct {
	b    []byte
	size int64
}

func (z zeroExt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= z.size {
		return 0, errors.New("read past the end")
	}
	n := int(min(int64(len(p)), z.size-off))
	clear(p[:n])
	if off < int64(len(z.b)) {
		copy(p[:n], z.b[off:])
	}
	if n < len(p) {
		return n, errors.New("short read")
	}
	return n, nil
}

var readFiles = map[string][]byte{
	"rfs.json":                            []byte(`{"board":"qemu-arm64"}`),
	"cmdline.txt":                         []byte("console=ttyAMA0 rfs.root=PARTUUID=x\n"),
	"EFI/":                                nil,
	"EFI/BOOT/":                           nil,
	"EFI/BOOT/BOOTX64.EFI":                randBytes(7, 5000),
	"overlays/":                           nil,
	"overlays/a-long-name-with-Case.dtbo": randBytes(8, 1),
	"empty":                               {},
}

// fatImage writes readFiles with Write and returns the file system's
// bytes up to its last non-zero byte, and its size.
func fatImage(t testing.TB) ([]byte, int64) {
	t.Helper()
	const size = 40 << 20
	b, err := os.ReadFile(writeImage(t, build(t, readFiles), size, Options{Label: "RFS-BOOT", MTime: testTime}))
	if err != nil {
		t.Fatal(err)
	}
	end := len(b)
	for end > 0 && b[end-1] == 0 {
		end--
	}
	return b[:end], size
}

func TestReadBack(t *testing.T) {
	b, size := fatImage(t)
	fs, err := Open(zeroExt{b, size}, size)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range readFiles {
		if strings.HasSuffix(name, "/") {
			if _, err := fs.ReadFile(name, 1<<20); err == nil || !strings.Contains(err.Error(), "is a directory") {
				t.Errorf("%s: %v, want is a directory", name, err)
			}
			continue
		}
		got, err := fs.ReadFile(strings.ToUpper(name), 1<<20) // FAT ignores case
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes, %v; want %d bytes", name, len(got), err, len(want))
		}
	}
	for _, c := range []struct{ path, want string }{
		{"missing", "no such file"},
		{"rfs.json/x", "not a directory"},
		{"EFI/BOOT/BOOTX64.EFI", "more than the 100 accepted"},
	} {
		if _, err := fs.ReadFile(c.path, 100); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.path, err, c.want)
		}
	}
}

// TestHostile patches a real file system: the reader must return an
// error naming the problem, quickly and without a huge allocation.
func TestHostile(t *testing.T) {
	base, size := fatImage(t)
	fs, err := Open(zeroExt{base, size}, size)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	// The first cluster of EFI/BOOT/BOOTX64.EFI (5000 bytes: several
	// clusters), found through the reader's own directory walk.
	efi, _ := fs.readDir(fs.rootClus, "/")
	var boot dirEntry
	for _, e := range efi {
		if e.name == "EFI" {
			d, _ := fs.readDir(e.cluster, "EFI")
			for _, e := range d {
				if e.name == "BOOT" {
					boot = e
				}
			}
		}
	}
	bootEnts, _ := fs.readDir(boot.cluster, "BOOT")
	first := bootEnts[len(bootEnts)-1].cluster
	fatAt := func(c uint32) int { return int(fs.fatStart) + int(c)*4 }
	for _, c := range []struct {
		name  string
		patch func(b []byte)
		open  string // error from Open
		read  string // error from ReadFile
		path  string
	}{
		{"bytes per sector 0", func(b []byte) { le.PutUint16(b[11:], 0) }, "bytes per sector", "", ""},
		{"sectors per cluster 3", func(b []byte) { b[13] = 3 }, "sectors per cluster", "", ""},
		{"no FATs", func(b []byte) { b[16] = 0 }, "FATs", "", ""},
		{"larger than the partition", func(b []byte) { le.PutUint32(b[32:], 1<<31) }, "partition is only", "", ""},
		{"FATs past the end", func(b []byte) { le.PutUint32(b[36:], 1<<24) }, "past the file system", "", ""},
		{"root cluster out of range", func(b []byte) { le.PutUint32(b[44:], 0x0ffffff0) }, "root directory cluster", "", ""},
		{"file chain loops", func(b []byte) { le.PutUint32(b[fatAt(first+1):], first) }, "", "loops", "EFI/BOOT/BOOTX64.EFI"},
		{"file chain short", func(b []byte) { le.PutUint32(b[fatAt(first):], 0x0fffffff) }, "", "chain ends", "EFI/BOOT/BOOTX64.EFI"},
		{"directory chain loops", func(b []byte) {
			// No end marker in the cluster, and the chain back to itself.
			at := int(fs.dataStart) + int(boot.cluster-2)*int(fs.clusterSz)
			for i := at; i < at+int(fs.clusterSz); i += 32 {
				if b[i] == 0 {
					b[i] = 0xe5
				}
			}
			le.PutUint32(b[fatAt(boot.cluster):], boot.cluster)
		}, "", "loops", "EFI/BOOT/nothing"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := bytes.Clone(base)
			c.patch(b)
			fs, err := Open(zeroExt{b, size}, size)
			if c.open != "" {
				if err == nil || !strings.Contains(err.Error(), c.open) {
					t.Fatalf("Open: %v, want %q", err, c.open)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := fs.ReadFile(c.path, 1<<20); err == nil || !strings.Contains(err.Error(), c.read) {
				t.Fatalf("ReadFile: %v, want %q", err, c.read)
			}
		})
	}
}

// tinyFAT rewrites the file system b (written by Write, 512-byte
// clusters) with one 1-sector FAT, 1 reserved sector and 128 clusters:
// the same files in an 11 KiB seed the fuzzer can mutate quickly (the
// reader does not insist on FAT32's minimum cluster count).
func tinyFAT(t testing.TB, b []byte) []byte {
	le := binary.LittleEndian
	bps, spc := int(le.Uint16(b[11:])), int(b[13])
	if bps != 512 || spc != 1 {
		t.Fatalf("tinyFAT wants 512-byte clusters, got %d x %d", bps, spc)
	}
	fatStart := int(le.Uint16(b[14:])) * bps
	dataStart := fatStart + int(b[16])*int(le.Uint32(b[36:]))*bps
	out := make([]byte, 130*512)
	copy(out, b[:512])
	le.PutUint16(out[14:], 1)   // reserved sectors
	out[16] = 1                 // FATs
	le.PutUint32(out[32:], 130) // total sectors
	le.PutUint32(out[36:], 1)   // sectors per FAT
	le.PutUint16(out[48:], 0)   // no FSInfo
	le.PutUint16(out[50:], 0)   // no backup boot sector
	copy(out[512:1024], b[fatStart:])
	copy(out[1024:], b[dataStart:dataStart+128*512])
	end := len(out)
	for end > 0 && out[end-1] == 0 {
		end--
	}
	fs, err := Open(zeroExt{out[:end], 130 * 512}, 130*512)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := fs.ReadFile("EFI/BOOT/BOOTX64.EFI", 1<<20); err != nil || !bytes.Equal(got, readFiles["EFI/BOOT/BOOTX64.EFI"]) {
		t.Fatalf("tiny FAT: %d bytes, %v", len(got), err)
	}
	return out[:end]
}

// FuzzRead: the boot partition of a card from the field can hold
// anything; reading it must give an error or bytes, never a panic, a hang
// or an allocation beyond the limit and the file system's size.
func FuzzRead(f *testing.F) {
	// Only small seeds: the fuzzer mutates a 600 KiB input too slowly.
	b, _ := fatImage(f)
	tiny := tinyFAT(f, b)
	f.Add(tiny, uint32(130*512-len(tiny)))
	f.Add(b[:1024], uint32(0))
	f.Fuzz(func(t *testing.T, b []byte, extra uint32) {
		size := int64(len(b)) + int64(extra)
		fs, err := Open(zeroExt{b, size}, size)
		if err != nil {
			return
		}
		for _, p := range []string{"rfs.json", "EFI/BOOT/BOOTX64.EFI", "overlays/a-long-name-with-case.dtbo", "empty"} {
			data, err := fs.ReadFile(p, 1<<20)
			if err == nil && int64(len(data)) > min(1<<20, size) {
				t.Fatalf("%s: %d bytes from a %d-byte file system", p, len(data), size)
			}
		}
	})
}

// TestFiles: Files lists every regular file of readFiles, in
// subdirectories too, with its size; directories are not listed.
func TestFiles(t *testing.T) {
	b, size := fatImage(t)
	fs, err := Open(zeroExt{b, size}, size)
	if err != nil {
		t.Fatal(err)
	}
	files, err := fs.Files()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, f := range files {
		got[f.Path] = f.Size
	}
	want := map[string]int64{}
	for name, data := range readFiles {
		if !strings.HasSuffix(name, "/") {
			want[strings.TrimPrefix(name, "/")] = int64(len(data))
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("Files = %v, want %v", got, want)
	}
}
