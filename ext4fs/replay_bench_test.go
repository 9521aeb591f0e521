//go:build linux

package ext4fs

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// BenchmarkNeedsRecovery opens and walks an upper of 10,000 files whose
// journal needs recovery (the last changes, a chmod of every file, only
// in the journal): in memory (Open replays), against what a user could
// do otherwise (copy the image, e2fsck -p the copy, read it), and
// reading the same tree already recovered (the replay's cost).
func BenchmarkNeedsRecovery(b *testing.B) {
	need(b, "mke2fs", "e2fsck", "mount", "cp")
	if os.Geteuid() != 0 {
		b.Skip("needs root (loop mounts)")
	}
	img := mkfs(b, 256<<20, "", append([]string{"-t", "ext4"}, crashVariants[0].mkfs...)...)
	mnt := b.TempDir()
	runTool(b, "mount", "-o", "loop,noatime", img, mnt)
	mounted := true
	defer func() {
		if mounted {
			exec.Command("umount", mnt).Run()
		}
	}()
	for d := range 100 {
		dir := filepath.Join(mnt, "upper", fmt.Sprintf("d%02d", d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := range 100 {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("file-%03d", f)), []byte(fmt.Sprintf("content %d/%d\n", d, f)), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	runTool(b, "sync")
	runTool(b, "chmod", "-R", "go-w", filepath.Join(mnt, "upper"))
	f, err := os.Open(mnt)
	if err != nil {
		b.Fatal(err)
	}
	f.Sync() // commits the chmods to the journal; they stay there
	f.Close()
	crash := filepath.Join(b.TempDir(), "crash.img")
	runTool(b, "cp", "--sparse=always", img, crash)
	runTool(b, "umount", mnt)
	mounted = false

	walk := func(b *testing.B, img string, wantRecovery bool) {
		f, err := os.Open(img) // as rfs reads an image: no copy in memory
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			b.Fatal(err)
		}
		fsys, err := Open(f, st.Size())
		if err != nil {
			b.Fatal(err)
		}
		if fsys.Superblock().NeedsRecovery != wantRecovery {
			b.Fatalf("needs recovery %v", fsys.Superblock().NeedsRecovery)
		}
		got, err := walkAll(fsys)
		if err != nil {
			b.Fatal(err)
		}
		if len(got) < 10000 {
			b.Fatalf("%d paths", len(got))
		}
	}
	b.Run("replay-in-memory", func(b *testing.B) {
		for range b.N {
			walk(b, crash, true)
		}
	})
	// The same tree already recovered: what the replay adds.
	fixed := filepath.Join(b.TempDir(), "fixed.img")
	runTool(b, "cp", "--sparse=always", crash, fixed)
	if out, err := exec.Command("e2fsck", "-p", fixed).CombinedOutput(); exitCode(err) > 1 {
		b.Fatalf("e2fsck -p: %v\n%s", err, out)
	}
	b.Run("recovered-no-replay", func(b *testing.B) {
		for range b.N {
			walk(b, fixed, false)
		}
	})
	b.Run("copy-e2fsck-p", func(b *testing.B) {
		for range b.N {
			cp := filepath.Join(b.TempDir(), "fixed.img")
			runTool(b, "cp", "--sparse=always", crash, cp)
			if out, err := exec.Command("e2fsck", "-p", cp).CombinedOutput(); exitCode(err) > 1 {
				b.Fatalf("e2fsck -p: %v\n%s", err, out)
			}
			walk(b, cp, false)
			os.Remove(cp)
		}
	})
}
