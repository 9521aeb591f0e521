//go:build linux

package reset

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/rfsbuild/rfs/ext4fs"
)

// TestNowNeedsRecovery: an image copied from a device that lost power
// (its data partition's journal holds committed changes not yet in
// place) resets: the kernel's mount replays the journal first, so the
// reset sees and removes what the device last wrote.
func TestNowNeedsRecovery(t *testing.T) {
	root(t)
	need(t, "mount", "umount", "cp")
	img := makeImage(t, "gpt", true)
	mnt := t.TempDir()
	sh(t, "mount", "-o", "loop,noatime,offset="+strconv.Itoa(dataStart)+",sizelimit="+strconv.Itoa(dataSize), img, mnt)
	mounted := true
	defer func() {
		if mounted {
			exec.Command("umount", mnt).Run()
		}
	}()
	p := filepath.Join(mnt, "upper/etc/new")
	if err := os.WriteFile(p, []byte("written before the power cut\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{p, filepath.Dir(p)} {
		f, err := os.Open(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	crash := filepath.Join(t.TempDir(), "crash.img")
	sh(t, "cp", "--sparse=always", img, crash)
	sh(t, "umount", mnt)
	mounted = false

	// The copy needs recovery, and only the replayed view has the file.
	f, err := os.Open(crash)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fsys, err := ext4fs.Open(io.NewSectionReader(f, dataStart, dataSize), dataSize)
	if err != nil {
		t.Fatal(err)
	}
	if !fsys.Superblock().NeedsRecovery || fsys.Recovery().Blocks == 0 {
		t.Fatalf("the copy does not need recovery (%+v): the test proves nothing", fsys.Recovery())
	}
	if _, err := fsys.Lookup("/upper/etc/new"); err != nil {
		t.Fatalf("replayed view: %v", err)
	}

	if _, err := Now(context.Background(), crash, false); err != nil {
		t.Fatal(err)
	}
	if got := ls(t, crash, "/upper"); got != "" {
		t.Errorf("upper after reset: %q", got)
	}
	if got := ls(t, crash, "/volumes/app"); got != "y" {
		t.Errorf("volume after reset: %q", got)
	}
}
