package layer

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/rootfs"
)

// TestReadExt4 makes an ext4 upper with e2fsprogs, without root (debugfs
// writes whiteouts and xattrs into the image file), and reads it back.
func TestReadExt4(t *testing.T) {
	for _, tool := range []string{"mke2fs", "debugfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (e2fsprogs)", tool)
		}
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(filepath.Join(src, "upper", "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "upper", "f"), []byte("hello\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "d.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 16<<20); err != nil {
		t.Fatal(err)
	}
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	run("mke2fs", "-q", "-F", "-t", "ext4", "-d", src, img)
	cmds := filepath.Join(dir, "cmds")
	os.WriteFile(cmds, []byte("cd /upper\nmknod wh c 0 0\nmknod fifo p\nmknod tty c 4 1\nea_set /upper/d trusted.overlay.opaque y\nsymlink sl /target/x\nlink f hl\nsif f uid 1000\n"), 0o644)
	run("debugfs", "-w", "-f", cmds, img)

	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tree, err := ReadExt4(f, 0, 16<<20, "upper")
	if err != nil {
		t.Fatal(err)
	}
	// A directory that is not there (a device that never booted has no
	// upper yet) is ErrNoDir; a file where the directory should be is not.
	if _, err := ReadExt4(f, 0, 16<<20, "never-booted"); !errors.Is(err, ErrNoDir) {
		t.Errorf("missing dir: %v, want ErrNoDir", err)
	}
	if _, err := ReadExt4(f, 0, 16<<20, "upper/f"); err == nil || errors.Is(err, ErrNoDir) {
		t.Errorf("a file as the dir: %v, want an error other than ErrNoDir", err)
	}
	if n := tree.Lookup("/wh"); !IsWhiteout(n) {
		t.Errorf("/wh: %+v, want a whiteout", n)
	}
	if n := tree.Lookup("/tty"); n == nil || n.Type != rootfs.CharDev || n.Major != 4 || n.Minor != 1 || IsWhiteout(n) {
		t.Errorf("/tty: %+v, want char 4/1", n)
	}
	if n := tree.Lookup("/d"); !IsOpaque(n) {
		t.Errorf("/d: %+v, want opaque", n)
	}
	if n := tree.Lookup("/fifo"); n == nil || n.Type != rootfs.FIFO {
		t.Errorf("/fifo: %+v", n)
	}
	if n := tree.Lookup("/sl"); n == nil || n.Type != rootfs.Symlink || n.Target != "/target/x" {
		t.Errorf("/sl: %+v", n)
	}
	fn, hl := tree.Lookup("/f"), tree.Lookup("/hl")
	if fn == nil || fn != hl || fn.Perm != 0o640 || fn.UID != 1000 {
		t.Fatalf("/f %+v, /hl %+v: want one node, 0640, uid 1000", fn, hl)
	}
	rc, err := fn.Content.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b := make([]byte, 64)
	n, _ := rc.Read(b)
	if string(b[:n]) != "hello\n" {
		t.Errorf("/f content %q", b[:n])
	}
}
