package ext4fs

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzReadExt4 opens mutated small filesystems and reads them in full
// (every directory, file content, symlink and xattr): it must return,
// with or without an error, never panic or hang. Seeds: 1 MiB filesystems
// made by mke2fs -d from a tiny tree in several layouts, and two of
// 128 KiB. Run with a short -fuzzminimizetime (say 5x): minimizing a
// 1 MiB input otherwise takes the whole minute.
func FuzzReadExt4(f *testing.F) {
	if _, err := exec.LookPath("mke2fs"); err == nil {
		src := f.TempDir()
		os.MkdirAll(filepath.Join(src, "d", "e"), 0o755)
		os.WriteFile(filepath.Join(src, "d", "f"), []byte("hello\n"), 0o644)
		os.WriteFile(filepath.Join(src, "big"), bytes.Repeat([]byte("0123456789"), 3000), 0o644)
		os.Symlink("/short", filepath.Join(src, "s"))
		os.Symlink(strings.Repeat("long/", 20), filepath.Join(src, "l"))
		os.Link(filepath.Join(src, "d", "f"), filepath.Join(src, "d", "e", "hl"))
		for _, seed := range []struct {
			size int64
			opts []string
		}{
			{1 << 20, []string{"-t", "ext4", "-O", "^has_journal"}},
			{1 << 20, []string{"-t", "ext4", "-O", "^has_journal,inline_data"}},
			{1 << 20, []string{"-t", "ext2"}},
			{1 << 20, []string{"-t", "ext4", "-O", "^has_journal,64bit,metadata_csum", "-I", "256"}},
			// Small inputs mutate and run faster.
			{128 << 10, []string{"-t", "ext4", "-O", "^has_journal", "-N", "32"}},
			{128 << 10, []string{"-t", "ext2", "-N", "32"}},
		} {
			img := mkfs(f, seed.size, src, seed.opts...)
			debugfs(f, img, "ea_set /d trusted.overlay.opaque y", "mknod /wh c 0 0")
			b, err := os.ReadFile(img)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fsys, err := Open(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		walkAll(fsys)
	})
}
