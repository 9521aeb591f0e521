package ext4

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestMake(t *testing.T) {
	for _, tool := range []string{"mke2fs", "e2fsck", "dumpe2fs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (e2fsprogs)", tool)
		}
	}
	o := Options{Label: "rfs-data", UUID: "11111111-2222-4333-8444-555555555555", HashSeed: "66666666-2222-4333-8444-555555555555", Epoch: 1767225600}
	var images [][]byte
	for i := 0; i < 2; i++ {
		p := filepath.Join(t.TempDir(), "fs.img")
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(64 << 20); err != nil {
			t.Fatal(err)
		}
		if err := Make(context.Background(), f, 64<<20, o); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if out, err := exec.Command("e2fsck", "-fn", p).CombinedOutput(); err != nil {
			t.Fatalf("e2fsck -fn: %v\n%s", err, out)
		}
		out, err := exec.Command("dumpe2fs", "-h", p).CombinedOutput()
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"volume name:   rfs-data", "UUID:          11111111-2222-4333-8444-555555555555", "Block size:               4096", "extent"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("dumpe2fs lacks %q", want)
			}
		}
		data, _ := os.ReadFile(p)
		images = append(images, data)
	}
	if !bytes.Equal(images[0], images[1]) {
		t.Fatal("two filesystems made with the same options differ")
	}
}
