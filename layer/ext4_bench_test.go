package layer

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/ext4"
)

// benchImage makes a 64 MiB ext4 data partition with an upper of 10,000
// files (100 directories of 100, 1-4 KiB each).
func benchImage(b *testing.B) string {
	b.Helper()
	if _, err := exec.LookPath("mke2fs"); err != nil {
		b.Skip("mke2fs not installed")
	}
	dir := b.TempDir()
	for d := range 100 {
		p := filepath.Join(dir, "src", "upper", fmt.Sprintf("dir%03d", d))
		if err := os.MkdirAll(p, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := range 100 {
			content := strings.Repeat(fmt.Sprintf("%d/%d\n", d, f), 100+(d*100+f)%400)
			if err := os.WriteFile(filepath.Join(p, fmt.Sprintf("file%03d", f)), []byte(content), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	img := filepath.Join(dir, "data.img")
	out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-N", "12000", "-d", filepath.Join(dir, "src"), img, "64M").CombinedOutput()
	if err != nil {
		b.Fatalf("mke2fs: %v\n%s", err, out)
	}
	return img
}

// BenchmarkReadExt4 reads the whole upper, contents included: our reader
// (ReadExt4 + the tree's digest) against go-diskfs's ext4 reader, which
// ReadExt4 used before.
func BenchmarkReadExt4(b *testing.B) {
	img := benchImage(b)
	f, err := os.Open(img)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	b.Run("ext4fs", func(b *testing.B) {
		for b.Loop() {
			t, err := ReadExt4(f, 0, st.Size(), "upper")
			if err != nil {
				b.Fatal(err)
			}
			if _, err := t.Digest(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("go-diskfs", func(b *testing.B) {
		for b.Loop() {
			efs, err := ext4.Read(file.New(f, true), st.Size(), 0, 512)
			if err != nil {
				b.Fatal(err)
			}
			n, err := diskfsWalk(efs, "upper")
			if err != nil {
				b.Fatal(err)
			}
			if n != 10100 {
				b.Fatalf("%d entries, want 10100", n)
			}
		}
	})
}

func diskfsWalk(efs *ext4.FileSystem, dir string) (int, error) {
	entries, err := efs.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	count := 0
	for _, e := range entries {
		p := path.Join(dir, e.Name())
		count++
		if e.IsDir() {
			n, err := diskfsWalk(efs, p)
			if err != nil {
				return 0, err
			}
			count += n
			continue
		}
		if _, err := efs.Stat(p); err != nil {
			return 0, err
		}
		fh, err := efs.OpenFile(p, os.O_RDONLY)
		if err != nil {
			return 0, err
		}
		if _, err := io.Copy(io.Discard, fh); err != nil {
			return 0, err
		}
	}
	return count, nil
}
