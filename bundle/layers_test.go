package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/image/imagetest"
)

// layeredImage is a small image with Pi-like boot files and two layers.
func layeredImage(t *testing.T) string {
	path, _ := imagetest.Write(t, imagetest.Spec{Table: "mbr", Parts: []imagetest.Part{
		{Role: image.RoleBoot, Files: map[string][]byte{
			image.KernelFile: []byte("kernel"), image.InitrdFile: []byte("initramfs"), image.CmdlineFile: []byte("console=ttyAMA0\n"),
			"config.txt": []byte("arm_64bit=1\n"), "bcm2711-rpi-4-b.dtb": []byte("dtb"),
		}},
		{Role: image.RoleRoot, Tree: imagetest.Tree(t, map[string]string{"/base": "r"})}, {Role: image.RoleData},
		{Role: image.RoleLayer, Layer: 1, Logical: true, Tree: imagetest.Tree(t, map[string]string{"/one": "1"})},
		{Role: image.RoleLayer, Layer: 2, Logical: true, Tree: imagetest.Tree(t, map[string]string{"/two": "2"})},
	}})
	return path
}

// TestLayersAndBootFiles: each layer is a part, in order; boot-files is
// a sorted tar of the boot partition without kernel and initramfs.
func TestLayersAndBootFiles(t *testing.T) {
	img := layeredImage(t)
	ctx := context.Background()
	ref := LayoutPrefix + filepath.Join(t.TempDir(), "oci") + ":t"
	pushed, err := Push(ctx, img, ref, Options{Version: "7"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range pushed.Config.Parts {
		names = append(names, p.Name+"/"+p.Role)
	}
	if got := strings.Join(names, " "); got != "kernel/kernel initramfs/initramfs boot-files/boot-files root/root layer-1/layer layer-2/layer" {
		t.Errorf("parts %s", got)
	}
	dir := t.TempDir()
	if _, err := Fetch(ctx, ref, dir, Options{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "kernel")); string(b) != "kernel" {
		t.Errorf("kernel %q", b)
	}
	f, err := os.Open(filepath.Join(dir, "boot-files"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var tarNames []string
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		tarNames = append(tarNames, h.Name)
	}
	if got := strings.Join(tarNames, " "); got != "bcm2711-rpi-4-b.dtb cmdline.txt config.txt rfs.json" {
		t.Errorf("boot-files holds %s", got)
	}
	for _, n := range []string{"root", "layer-1", "layer-2"} {
		b, _ := os.ReadFile(filepath.Join(dir, n))
		if !bytes.HasPrefix(b, []byte("hsqs")) {
			t.Errorf("%s is not a squashfs", n)
		}
	}
	// A second fetch into the same directory finds every part in place.
	if _, err := Fetch(ctx, ref, dir, Options{}); err != nil {
		t.Fatal(err)
	}
}
