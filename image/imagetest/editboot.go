package imagetest

import (
	"io"
	"os"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/image/fat"
	"github.com/rfsbuild/rfs/rootfs"
)

// EditBoot rewrites the boot partition of the image at path with its
// files changed by edit (path: content; nil content removes), so a test
// can give an image A/B slots (image/fat.Editor writes top-level files
// only, a slot needs its directory). The new FAT has the same size.
func EditBoot(t testing.TB, path string, edit map[string][]byte) {
	t.Helper()
	img, err := image.OpenImage(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := img.Boot()
	if err != nil {
		t.Fatal(err)
	}
	fs, err := fat.Open(img.Section(p.Placed), p.Size)
	if err != nil {
		t.Fatal(err)
	}
	list, err := fs.Files()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, f := range list {
		if files[f.Path], err = fs.ReadFile(f.Path, p.Size); err != nil {
			t.Fatal(err)
		}
	}
	img.Close()
	for name, b := range edit {
		if b == nil {
			delete(files, name)
		} else {
			files[name] = b
		}
	}
	tree := rootfs.New(0)
	for name, b := range files {
		if i := strings.LastIndex(name, "/"); i > 0 {
			if err := tree.MkdirAll("/"+name[:i], 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := tree.Add("/"+name, &rootfs.Node{Type: rootfs.Regular, Perm: 0o644, Content: rootfs.Bytes(b)}); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := fat.Write(io.NewOffsetWriter(f, p.Start), p.Size, tree, fat.Options{Label: "RFS-BOOT"}); err != nil {
		t.Fatal(err)
	}
}
