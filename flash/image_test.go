//go:build linux

package flash

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestCheckImage(t *testing.T) {
	dir := t.TempDir()
	img := testImage(t, dir)
	sys := FakeSystem(dir) // no loop devices
	if err := sys.CheckImage(img); err != nil {
		t.Fatalf("a good image: %v", err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good, _ := os.ReadFile(img)
	sq := make([]byte, 8192)
	copy(sq, "hsqs")
	for _, c := range []struct{ name, path, want string }{
		{"random", write("random", []byte(strings.Repeat("not a disk ", 1000))), "not a disk image: no valid GPT or MBR partition table"},
		{"squashfs", write("root.sqfs", sq), "it is a squashfs file system, not a disk image"},
		{"empty", write("empty", nil), "not a disk image"},
		{"truncated", write("cut.img", good[:20<<20]), "partition b (2) ends at 26214400 but the image is only 20971520 bytes: truncated?"},
		{"missing", filepath.Join(dir, "nope"), "image: "},
	} {
		if err := sys.CheckImage(c.path); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

// TestCheckImageLoopMounted: an image behind a loop device with a mounted
// filesystem is refused when the mount is read-write, not when read-only.
// The loop device is simulated in a fake sysfs; its node must exist (any
// block device numbered as the fake says will do: /dev/loop0 is used).
func TestCheckImageLoopMounted(t *testing.T) {
	var st unix.Stat_t
	if err := unix.Stat("/dev/loop0", &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFBLK {
		t.Skip("no /dev/loop0 block device node")
	}
	majmin := strings.Join([]string{strconv.Itoa(int(unix.Major(uint64(st.Rdev)))), strconv.Itoa(int(unix.Minor(uint64(st.Rdev))))}, ":")
	root := t.TempDir()
	img := testImage(t, root)
	w := func(rel, s string) {
		p := filepath.Join(root, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(s+"\n"), 0o644)
	}
	w("sys/block/loop0/dev", majmin)
	w("sys/block/loop0/size", "131072")
	w("sys/block/loop0/loop/backing_file", img)
	sys := FakeSystem(root)
	for _, c := range []struct{ opts, super, want string }{
		{"rw,relatime", "rw", "mounted read-write on /mnt/x"},
		{"ro,relatime", "rw", ""},
		{"rw,relatime", "ro", ""},
	} {
		w("proc/self/mountinfo", "40 26 "+majmin+" / /mnt/x "+c.opts+" - ext4 /dev/loop0 "+c.super)
		err := sys.CheckImage(img)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s/%s: %v", c.opts, c.super, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s/%s: %v, want %q", c.opts, c.super, err, c.want)
		}
	}
	w("sys/block/loop0/loop/backing_file", filepath.Join(root, "other.img"))
	w("proc/self/mountinfo", "40 26 "+majmin+" / /mnt/x rw - ext4 /dev/loop0 rw")
	if err := sys.CheckImage(img); err != nil {
		t.Errorf("a loop device backed by another file: %v", err)
	}
}
