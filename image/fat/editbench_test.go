package fat

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// BenchmarkEditorWrite50M writes a 50 MiB file (a kernel-sized slot file,
// from a file on disk) into slot-b/ of a fresh boot partition with the
// Editor, syncs included; BenchmarkMcopy50M does the same with mcopy and
// then syncs the image, for comparison. 256MiB has 512-byte clusters,
// 512MiB 4 KiB ones.
func BenchmarkEditorWrite50M(b *testing.B) {
	src := bench50M(b)
	for _, size := range []int64{256 << 20, 512 << 20} {
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
			b.SetBytes(50 << 20)
			for b.Loop() {
				b.StopTimer()
				img := writeImage(b, build(b, map[string][]byte{"slot-b/": nil}), size, Options{})
				b.StartTimer()
				f, err := os.OpenFile(img, os.O_RDWR, 0)
				if err != nil {
					b.Fatal(err)
				}
				in, err := os.Open(src)
				if err != nil {
					b.Fatal(err)
				}
				ed, err := OpenEditor(f, 0)
				if err != nil {
					b.Fatal(err)
				}
				if err := ed.WriteFile("slot-b/vmlinuz", in, 50<<20, editAt); err != nil {
					b.Fatal(err)
				}
				in.Close()
				f.Close()
				b.StopTimer()
				os.Remove(img)
				b.StartTimer()
			}
		})
	}
}

func BenchmarkMcopy50M(b *testing.B) {
	mcopy := needTool(b, "mcopy")
	src := bench50M(b)
	for _, size := range []int64{256 << 20, 512 << 20} {
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
			b.SetBytes(50 << 20)
			for b.Loop() {
				b.StopTimer()
				img := writeImage(b, build(b, map[string][]byte{"slot-b/": nil}), size, Options{})
				b.StartTimer()
				cmd := exec.Command(mcopy, "-i", img, src, "::/slot-b/vmlinuz")
				cmd.Env = mtoolsEnv()
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("mcopy: %v\n%s", err, out)
				}
				f, err := os.OpenFile(img, os.O_RDWR, 0)
				if err != nil {
					b.Fatal(err)
				}
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
				f.Close()
				b.StopTimer()
				os.Remove(img)
				b.StartTimer()
			}
		})
	}
}

func bench50M(b *testing.B) string {
	src := filepath.Join(b.TempDir(), "vmlinuz")
	if err := os.WriteFile(src, randBytes(50, 50<<20), 0o644); err != nil {
		b.Fatal(err)
	}
	return src
}
