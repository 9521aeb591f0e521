package fat

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rfsbuild/rfs/rootfs"
)

// piBootFiles lays out ~70 MB shaped like a Raspberry Pi boot partition on
// the host: firmware, two kernels, an initramfs, DTBs and 360 overlays.
func piBootFiles(tb testing.TB) (dir string, tr *rootfs.Tree, total int64) {
	tb.Helper()
	dir = tb.TempDir()
	files := map[string]int{
		"bootcode.bin": 52456, "start.elf": 2975744, "start4.elf": 2253088, "start4x.elf": 2997216,
		"start_x.elf": 3704128, "fixup.dat": 7314, "fixup4.dat": 5399, "fixup4x.dat": 8433, "fixup_x.dat": 10298,
		"kernel8.img": 28 << 20, "kernel_2712.img": 9 << 20, "initramfs8": 18 << 20,
		"config.txt": 412, "cmdline.txt": 96, "LICENCE.broadcom": 1594, "issue.txt": 140,
	}
	for i, d := range []string{"bcm2710-rpi-2-b", "bcm2710-rpi-3-b", "bcm2710-rpi-3-b-plus", "bcm2710-rpi-cm3",
		"bcm2710-rpi-zero-2", "bcm2710-rpi-zero-2-w", "bcm2711-rpi-4-b", "bcm2711-rpi-400", "bcm2711-rpi-cm4",
		"bcm2711-rpi-cm4-io", "bcm2711-rpi-cm4s", "bcm2712-rpi-5-b", "bcm2712-rpi-500", "bcm2712-rpi-cm5-cm4io",
		"bcm2712-rpi-cm5-cm5io", "bcm2712-rpi-cm5l-cm4io", "bcm2712-rpi-cm5l-cm5io", "bcm2712d0-rpi-5-b",
		"bcm2837-rpi-3-a-plus", "bcm2837-rpi-3-b", "bcm2837-rpi-3-b-plus", "bcm2837-rpi-cm3-io3", "bcm2837-rpi-zero-2-w"} {
		files[d+".dtb"] = 30000 + 1117*i
	}
	for i := range 360 {
		files[fmt.Sprintf("overlays/overlay-name-%03d-with-some-length.dtbo", i)] = 600 + (i*7919)%9000
	}
	files["overlays/README"] = 280000
	tr = rootfs.New(testTime)
	for name, size := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, randBytes(uint64(size), size), 0o644); err != nil {
			tb.Fatal(err)
		}
		n := &rootfs.Node{Type: rootfs.Regular, Perm: 0o644, MTime: testTime, Content: rootfs.HostFile{Path: p, Len: int64(size)}}
		if err := tr.Add(name, n); err != nil {
			tb.Fatal(err)
		}
		total += int64(size)
	}
	return dir, tr, total
}

// benchSizes are the partition sizes both benchmarks fill: a tight one
// (512-byte clusters, what MinSize picks) and 512 MiB (4 KiB clusters, the
// size Raspberry Pi OS gives its boot partition).
func benchSizes(tr *rootfs.Tree) map[string]int64 {
	return map[string]int64{"min+16MiB": MinSize(tr) + 16<<20, "512MiB": 512 << 20}
}

func BenchmarkWrite(b *testing.B) {
	_, tr, total := piBootFiles(b)
	for _, name := range []string{"min+16MiB", "512MiB"} {
		size := benchSizes(tr)[name]
		b.Run(name, func(b *testing.B) { benchWrite(b, tr, size, total) })
	}
}

func benchWrite(b *testing.B, tr *rootfs.Tree, size, total int64) {
	out := b.TempDir()
	b.SetBytes(total)
	for i := 0; b.Loop(); i++ {
		img := filepath.Join(out, fmt.Sprint("fat", i, ".img"))
		f, err := os.Create(img)
		if err != nil {
			b.Fatal(err)
		}
		if err := Write(f, size, tr, Options{VolumeID: 1}); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		os.Remove(img)
		b.StartTimer()
	}
}

// BenchmarkMkfsMcopy does the same with mkfs.vfat and mcopy, for comparison.
func BenchmarkMkfsMcopy(b *testing.B) {
	mkfs := needTool(b, "mkfs.vfat")
	mcopy := needTool(b, "mcopy")
	src, tr, total := piBootFiles(b)
	for _, name := range []string{"min+16MiB", "512MiB"} {
		size := benchSizes(tr)[name]
		b.Run(name, func(b *testing.B) { benchMkfsMcopy(b, mkfs, mcopy, src, size, total) })
	}
}

func benchMkfsMcopy(b *testing.B, mkfs, mcopy, src string, size, total int64) {
	ents, err := os.ReadDir(src)
	if err != nil {
		b.Fatal(err)
	}
	args := []string{"-s", "-i", "IMG"}
	for _, e := range ents {
		args = append(args, filepath.Join(src, e.Name()))
	}
	args = append(args, "::/")
	out := b.TempDir()
	b.SetBytes(total)
	for i := 0; b.Loop(); i++ {
		img := filepath.Join(out, fmt.Sprint("fat", i, ".img"))
		if err := os.WriteFile(img, nil, 0o644); err != nil {
			b.Fatal(err)
		}
		if err := os.Truncate(img, size); err != nil {
			b.Fatal(err)
		}
		if out, err := exec.Command(mkfs, "-F", "32", "-n", "BOOT", "-i", "00000001", img).CombinedOutput(); err != nil {
			b.Fatalf("mkfs.vfat: %v\n%s", err, out)
		}
		args[2] = img
		cmd := exec.Command(mcopy, args...)
		cmd.Env = mtoolsEnv()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("mcopy: %v\n%s", err, out)
		}
		b.StopTimer()
		os.Remove(img)
		b.StartTimer()
	}
}
