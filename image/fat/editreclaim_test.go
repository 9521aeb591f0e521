package fat

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

func TestEditorReclaim(t *testing.T) {
	if _, err := exec.LookPath("mkfs.vfat"); err != nil {
		t.Skip("mkfs.vfat not installed (apt-get install dosfstools)")
	}
	img := filepath.Join(t.TempDir(), "boot.img")
	if out, err := exec.Command("mkfs.vfat", "-F", "32", "-C", img, "65536").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.vfat: %v\n%s", err, out)
	}
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ed, err := OpenEditor(f, 0)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1767225600, 0)
	content := bytes.Repeat([]byte("k"), 300<<10)
	if err := ed.MkdirAll("slot-b", now); err != nil {
		t.Fatal(err)
	}
	if err := ed.WriteFile("slot-b/vmlinuz", bytes.NewReader(content), int64(len(content)), now); err != nil {
		t.Fatal(err)
	}
	if n, err := ed.Reclaim(); err != nil || n != 0 {
		t.Fatalf("Reclaim of a clean file system = %d, %v; want 0", n, err)
	}
	free := ed.Free()
	// A write cut before its entry was switched: clusters marked used,
	// reached by nothing.
	cs, err := ed.alloc(40)
	if err != nil {
		t.Fatal(err)
	}
	if err := ed.commitFAT(); err != nil {
		t.Fatal(err)
	}
	ed, err = OpenEditor(f, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ed.Free() != free-int64(len(cs))*ed.ClusterSize() {
		t.Fatalf("the lost chain is not counted as used: free %d, was %d", ed.Free(), free)
	}
	n, err := ed.Reclaim()
	if err != nil || n != int64(len(cs))*ed.ClusterSize() {
		t.Fatalf("Reclaim = %d, %v; want %d", n, err, int64(len(cs))*ed.ClusterSize())
	}
	if ed.Free() != free {
		t.Errorf("free after Reclaim %d, want %d", ed.Free(), free)
	}
	if got, ok, err := ed.ReadFile("slot-b/vmlinuz"); err != nil || !ok || !bytes.Equal(got, content) {
		t.Errorf("the file is damaged after Reclaim: %v %v", ok, err)
	}
	f.Sync()
	if _, err := exec.LookPath("fsck.vfat"); err == nil {
		if out, err := exec.Command("fsck.vfat", "-n", img).CombinedOutput(); err != nil {
			t.Errorf("fsck.vfat -n after Reclaim: %v\n%s", err, out)
		}
	}
}
