package builder

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/rootfs"
	"github.com/rfsbuild/rfs/squashfs"
)

// A --files directory made by mktemp -d (0700) leaves the image's / at
// 0755, read back from the built squashfs; a tree that makes /etc 0700
// builds, with a warning naming /etc and the source.
func TestFilesKeepDestMode(t *testing.T) {
	c := config(t, "qemu-arm64")
	private := t.TempDir()
	os.Chmod(private, 0o700)
	os.WriteFile(filepath.Join(private, "hello"), []byte("hi\n"), 0o644)
	spoiler := t.TempDir()
	os.Mkdir(filepath.Join(spoiler, "etc"), 0o700)
	os.WriteFile(filepath.Join(spoiler, "etc", "motd"), []byte("hi\n"), 0o644)
	c.Files = []Files{{Src: private, Dest: "/"}, {Src: private, Dest: "/opt/app"}, {Src: spoiler, Dest: "/"}}
	c.Origin = map[string]string{"files": "--files"}
	var warnings []string
	c.Warn = func(format string, args ...any) { warnings = append(warnings, fmt.Sprintf(format, args...)) }
	res := build(t, c)

	tree := lowerTree(t, res.Path)
	for p, perm := range map[string]uint32{"/": 0o755, "/opt/app": 0o755, "/etc": 0o700} {
		if n := tree.Lookup(p); n == nil || n.Perm != perm || n.UID != 0 {
			t.Errorf("%s = %+v, want mode %04o owned by root", p, n, perm)
		}
	}
	if tree.Lookup("/hello") == nil || tree.Lookup("/opt/app/hello") == nil || tree.Lookup("/etc/motd") == nil || tree.Lookup("/etc/passwd") == nil {
		t.Error("the --files contents did not merge in")
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "--files "+spoiler+" makes the image's /etc mode 0700") {
		t.Errorf("warnings = %q, want one about /etc naming %s", warnings, spoiler)
	}
}

// lowerTree reads the root partition of an image back as a tree.
func lowerTree(t *testing.T, path string) *rootfs.Tree {
	t.Helper()
	disk, err := image.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer disk.Close()
	rp, err := disk.Partition(image.RootPartition)
	if err != nil {
		t.Fatal(err)
	}
	sq, err := squashfs.Open(disk.Section(rp))
	if err != nil {
		t.Fatal(err)
	}
	tree, err := sq.ToTree()
	if err != nil {
		t.Fatal(err)
	}
	return tree
}
