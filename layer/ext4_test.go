//go:build linux

package layer

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

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

// TestReadExt4MatchesKernel: real uppers written by the kernel's overlayfs
// on a loop-mounted ext4 (whiteouts, opaque dirs, copied-up files, hard
// links, as the seeded scripts of TestKernelOracle make them) read the
// same through ReadExt4 (from the image, unmounted) as through ReadDir
// (the mounted upper).
func TestReadExt4MatchesKernel(t *testing.T) {
	needKernel(t)
	if _, err := exec.LookPath("mke2fs"); err != nil {
		t.Skip("mke2fs not installed")
	}
	for seed := range 12 {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(seed), 0x65787434))
			dir := t.TempDir()
			lower := randomLower(r)
			for _, d := range []string{"lower", "data", "merged"} {
				if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			writeSquashfs(t, filepath.Join(dir, "lower.sqfs"), lower)
			mountSquashfs(t, filepath.Join(dir, "lower.sqfs"), filepath.Join(dir, "lower"))
			defer unix.Unmount(filepath.Join(dir, "lower"), 0)
			img := filepath.Join(dir, "data.img")
			opts := []string{"-b", "4096"}
			if seed%2 == 1 {
				opts = []string{"-b", "1024", "-O", "inline_data"}
			}
			if out, err := exec.Command("mke2fs", append(append([]string{"-q", "-F", "-t", "ext4"}, opts...), img, "32M")...).CombinedOutput(); err != nil {
				t.Fatalf("mke2fs: %v\n%s", err, out)
			}
			data := filepath.Join(dir, "data")
			if out, err := exec.Command("mount", "-o", "loop", img, data).CombinedOutput(); err != nil {
				t.Fatalf("mount: %v\n%s", err, out)
			}
			mounted := true
			defer func() {
				if mounted {
					unix.Unmount(data, 0)
				}
			}()
			for _, d := range []string{"upper", "work"} {
				if err := os.Mkdir(filepath.Join(data, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			merged := filepath.Join(dir, "merged")
			o := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s,%s", filepath.Join(dir, "lower"), filepath.Join(data, "upper"), filepath.Join(data, "work"), ovlOpts)
			if err := unix.Mount("overlay", merged, "overlay", 0, o); err != nil {
				t.Fatalf("mount overlay: %v", err)
			}
			applyScript(t, r, merged, 10+r.IntN(30))
			if err := unix.Unmount(merged, 0); err != nil {
				t.Fatal(err)
			}
			want, err := ReadDir(filepath.Join(data, "upper"))
			if err != nil {
				t.Fatal(err)
			}
			wantDiff, err := Diff(lower, want)
			if err != nil {
				t.Fatal(err)
			}
			wantSum, err := want.Digest()
			if err != nil {
				t.Fatal(err)
			}
			if err := unix.Unmount(data, 0); err != nil {
				t.Fatal(err)
			}
			mounted = false
			f, err := os.Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, _ := f.Stat()
			got, err := ReadExt4(f, 0, st.Size(), "upper")
			if err != nil {
				t.Fatal(err)
			}
			gotDiff, err := Diff(lower, got)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(gotDiff, wantDiff) {
				t.Fatalf("Diff from ReadExt4:\n%s\nfrom ReadDir of the mounted upper:\n%s", fmtChanges(gotDiff), fmtChanges(wantDiff))
			}
			if gotSum, err := got.Digest(); err != nil || gotSum != wantSum {
				t.Errorf("tree digest %x (%v), mounted upper's %x", gotSum, err, wantSum)
				logTreeDiff(t, got, want)
			}
			if len(wantDiff) == 0 {
				t.Errorf("the script changed nothing: the test proves nothing")
			}
		})
	}
}

// logTreeDiff logs the nodes whose metadata differ between two trees.
func logTreeDiff(t *testing.T, got, want *rootfs.Tree) {
	t.Helper()
	meta := func(n *rootfs.Node) string {
		return fmt.Sprintf("%v %o %d:%d t=%d size=%d %q %d:%d %q", n.Type, n.Perm, n.UID, n.GID, n.MTime, n.Size(), n.Target, n.Major, n.Minor, n.Xattrs)
	}
	seen := map[string]bool{}
	links := func(tr *rootfs.Tree) map[string]string {
		first, out := map[*rootfs.Node]string{}, map[string]string{}
		tr.Walk(func(p string, n *rootfs.Node) error {
			if f, ok := first[n]; ok && n.Type != rootfs.Dir {
				out[p] = f
			} else {
				first[n] = p
			}
			return nil
		})
		return out
	}
	if g, w := links(got), links(want); !maps.Equal(g, w) {
		t.Logf("hard links: ReadExt4 %v, mounted %v", g, w)
	}
	want.Walk(func(p string, n *rootfs.Node) error {
		seen[p] = true
		if g := got.Lookup(p); g == nil {
			t.Logf("%s: missing from ReadExt4", p)
		} else if meta(g) != meta(n) {
			t.Logf("%s: ReadExt4 %s, mounted %s", p, meta(g), meta(n))
		}
		return nil
	})
	got.Walk(func(p string, n *rootfs.Node) error {
		if !seen[p] {
			t.Logf("%s: only in ReadExt4", p)
		}
		return nil
	})
}

// TestReadExt4TooDeep: directories nested past maxDepth are an error, not
// a stack overflow.
func TestReadExt4TooDeep(t *testing.T) {
	for _, tool := range []string{"mke2fs", "debugfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (e2fsprogs)", tool)
		}
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "d.img")
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext4", "-N", "5000", img, "32M").CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	cmds := strings.Repeat("mkdir a\ncd a\n", maxDepth+2)
	if err := os.WriteFile(filepath.Join(dir, "cmds"), []byte("mkdir upper\ncd upper\n"+cmds), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("debugfs", "-w", "-f", filepath.Join(dir, "cmds"), img).CombinedOutput(); err != nil {
		t.Fatalf("debugfs: %v\n%s", err, out)
	}
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := ReadExt4(f, 0, 32<<20, "upper"); err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Errorf("got %v, want an error about the nesting", err)
	}
}
