//go:build linux

package squashfs

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rfsbuild/rfs/rootfs"
)

// treeDiff lists the differences between two trees: paths, types,
// metadata, content, symlink targets, device numbers, xattrs and hard-link
// groups (each node is identified by the first path it is seen at).
func treeDiff(t testing.TB, want, got *rootfs.Tree) []string {
	t.Helper()
	var diffs []string
	wm, gm := modelOf(t, want), modelOf(t, got)
	if len(wm) != len(gm) {
		diffs = append(diffs, fmt.Sprintf("%d entries, want %d", len(gm), len(wm)))
	}
	wfirst, gfirst := map[*rootfs.Node]string{}, map[*rootfs.Node]string{}
	for i := range min(len(wm), len(gm)) {
		w, g := wm[i], gm[i]
		if w.path != g.path {
			diffs = append(diffs, fmt.Sprintf("entry %d is %q, want %q", i, g.path, w.path))
			break
		}
		wn, gn := w.node, g.node
		wl, wseen := wfirst[wn]
		gl, gseen := gfirst[gn]
		if !wseen {
			wfirst[wn] = w.path
		}
		if !gseen {
			gfirst[gn] = g.path
		}
		if wseen != gseen || wl != gl {
			diffs = append(diffs, fmt.Sprintf("%s: hard link to %q, want %q", w.path, gl, wl))
			continue
		}
		if wseen {
			continue
		}
		type meta struct {
			Type               rootfs.Type
			Perm, UID, GID     uint32
			MTime              int64
			Target             string
			Major, Minor, Size int64
		}
		mk := func(n *rootfs.Node) meta {
			m := meta{n.Type, n.Perm, n.UID, n.GID, n.MTime, n.Target, 0, 0, n.Size()}
			if n.Type == rootfs.CharDev || n.Type == rootfs.BlockDev {
				m.Major, m.Minor = int64(n.Major), int64(n.Minor)
			}
			return m
		}
		if a, b := mk(wn), mk(gn); a != b {
			diffs = append(diffs, fmt.Sprintf("%s: %+v, want %+v", w.path, b, a))
		}
		if !maps.EqualFunc(wn.Xattrs, gn.Xattrs, bytes.Equal) {
			diffs = append(diffs, fmt.Sprintf("%s: xattrs %q, want %q", w.path, gn.Xattrs, wn.Xattrs))
		}
		if wn.Type == rootfs.Regular && gn.Type == rootfs.Regular && !bytes.Equal(contentOf(t, wn), contentOf(t, gn)) {
			diffs = append(diffs, fmt.Sprintf("%s: content differs", w.path))
		}
	}
	return diffs
}

func openImage(t testing.TB, img string) *Reader {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	r, err := Open(f)
	if err != nil {
		t.Fatalf("Open %s: %v", img, err)
	}
	return r
}

func checkRoundTrip(t testing.TB, img string, tree *rootfs.Tree) *Reader {
	t.Helper()
	r := openImage(t, img)
	got, err := r.ToTree()
	if err != nil {
		t.Fatalf("ToTree: %v", err)
	}
	for _, d := range treeDiff(t, tree, got) {
		t.Error(d)
	}
	return r
}

// TestReaderRoundTrip reads back what the writer wrote, on the randomized
// trees with every compressor and xattrs.
func TestReaderRoundTrip(t *testing.T) {
	seeds := uint64(120)
	if testing.Short() {
		seeds = 30
	}
	for seed := range seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 0x5157))
			tree := randomTree(t, r)
			opts := randomOptions(seed)
			if opts.Xattrs {
				addRandomXattrs(r, tree)
			}
			var w writerAt
			if _, err := Write(&w, tree, opts); err != nil {
				t.Fatal(err)
			}
			rd, err := Open(bytes.NewReader(w.b))
			if err != nil {
				t.Fatal(err)
			}
			got, err := rd.ToTree()
			if err != nil {
				t.Fatalf("ToTree: %v", err)
			}
			for _, d := range treeDiff(t, tree, got) {
				t.Error(d)
			}
			info := rd.Info()
			if info.Compressor != cmp.Or(opts.Compressor, "gzip") || info.BlockSize != opts.BlockSize || info.MTime != opts.MTime {
				t.Errorf("Info %+v, options %+v", info, opts)
			}
		})
	}
}

// TestReaderAPI checks Lookup, Lstat-like fields, nlink and ReadAt on the
// all-types tree.
func TestReaderAPI(t *testing.T) {
	tree := allTypes(t)
	big := make([]byte, 3*4096+100)
	for i := range big {
		big[i] = byte(i * 7)
	}
	copy(big[4096:], make([]byte, 4096)) // a sparse block
	add(t, tree, "/big", &rootfs.Node{Type: rootfs.Regular, Perm: 0o644, Content: rootfs.Bytes(big)})
	var w writerAt
	if _, err := Write(&w, tree, Options{BlockSize: 4096}); err != nil {
		t.Fatal(err)
	}
	r, err := Open(bytes.NewReader(w.b))
	if err != nil {
		t.Fatal(err)
	}
	ls, err := r.Lookup("/usr/bin/ls")
	if err != nil {
		t.Fatal(err)
	}
	ls2, err := r.Lookup("bin/ls")
	if err != nil {
		t.Fatal(err)
	}
	if ls.Number != ls2.Number || ls.Nlink != 3 || ls.Type != rootfs.Regular || ls.Perm != 0o755 {
		t.Errorf("ls: %+v / %+v", ls, ls2)
	}
	dev, err := r.Lookup("/dev/big")
	if err != nil || dev.Major != 4095 || dev.Minor != 1048575 || dev.Type != rootfs.CharDev {
		t.Errorf("/dev/big: %+v %v", dev, err)
	}
	sl, err := r.Lookup("/bin/sh")
	if err != nil || sl.Target != "busybox" || sl.Type != rootfs.Symlink {
		t.Errorf("/bin/sh: %+v %v", sl, err)
	}
	home, err := r.Lookup("/home/user")
	if err != nil || home.UID != 4294967294 || home.GID != 65534 || home.MTime != 4294967295 || home.Nlink != 2 {
		t.Errorf("/home/user: %+v %v", home, err)
	}
	if _, err := r.Lookup("/nope"); err == nil {
		t.Error("Lookup /nope: no error")
	}
	if r.Root().Nlink != 2+uint32(len(modelDirs(tree.Root))) {
		t.Errorf("root nlink %d", r.Root().Nlink)
	}
	bi, err := r.Lookup("/big")
	if err != nil {
		t.Fatal(err)
	}
	f, err := r.OpenFile(bi)
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{0, 100, 4095, 4096, 8191, 12288, 12300} {
		p := make([]byte, 200)
		n, err := f.ReadAt(p, off)
		want := big[off:min(off+200, int64(len(big)))]
		if n != len(want) || !bytes.Equal(p[:n], want) || (n < 200 && err == nil) {
			t.Errorf("ReadAt(%d): %d %v", off, n, err)
		}
	}
	if _, err := r.OpenFile(home); err == nil {
		t.Error("OpenFile(dir): no error")
	}
}

func modelDirs(d *rootfs.Node) []string {
	var out []string
	for _, e := range d.Children() {
		if e.Node.Type == rootfs.Dir {
			out = append(out, e.Name)
		}
	}
	return out
}

// hostXattrs reads the xattrs of a host path (without following symlinks).
func hostXattrs(t testing.TB, p string) map[string][]byte {
	t.Helper()
	buf := make([]byte, 1<<16)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return nil
		}
		t.Fatalf("llistxattr %s: %v", p, err)
	}
	var out map[string][]byte
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" || !strings.HasPrefix(name, "user.") && !strings.HasPrefix(name, "trusted.") && !strings.HasPrefix(name, "security.") {
			continue
		}
		v := make([]byte, 1<<16)
		k, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			t.Fatalf("lgetxattr %s %s: %v", p, name, err)
		}
		if out == nil {
			out = map[string][]byte{}
		}
		out[name] = v[:k]
	}
	return out
}

func checkXattrsAt(t testing.TB, root string, tree *rootfs.Tree, how string) {
	t.Helper()
	for _, e := range modelOf(t, tree) {
		got := hostXattrs(t, filepath.Join(root, e.path))
		want := e.node.Xattrs
		if len(want) == 0 {
			want = nil
		}
		if !maps.EqualFunc(got, want, bytes.Equal) {
			t.Errorf("%s: %s xattrs %q, want %q", e.path, how, slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
		}
	}
}

// checkExtractXattrs extracts the image with unsquashfs -xattrs and
// compares every entry's xattrs (needs root for trusted.*).
func checkExtractXattrs(t testing.TB, img string, tree *rootfs.Tree) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Log("not root: skipping the xattr extraction check (trusted.* needs root)")
		return
	}
	dir := filepath.Join(t.TempDir(), "x")
	run(t, "unsquashfs", "-q", "-n", "-xattrs", "-d", dir, img)
	checkXattrsAt(t, dir, tree, "unsquashfs -xattrs")
}

// kernelHas reports whether the running kernel was built with a config
// option (from /proc/config.gz); unknown counts as yes.
func kernelHas(t testing.TB, opt string) bool {
	out, err := exec.Command("sh", "-c", "zcat /proc/config.gz 2>/dev/null || cat /boot/config-$(uname -r)").Output()
	if err != nil || len(out) == 0 {
		return true
	}
	return bytes.Contains(out, []byte("\n"+opt+"=y")) || bytes.Contains(out, []byte("\n"+opt+"=m"))
}

// TestKernelCompressorsAndXattrs mounts xz, zstd and xattr images, if the
// host kernel supports them, and compares them with the tree.
func TestKernelCompressorsAndXattrs(t *testing.T) {
	needRootMount(t)
	for _, c := range []struct {
		opts Options
		cfg  string
	}{
		{Options{Compressor: "xz", BlockSize: 8192}, "CONFIG_SQUASHFS_XZ"},
		{Options{Compressor: "xz", XZDictSize: 8192}, "CONFIG_SQUASHFS_XZ"},
		{Options{Compressor: "zstd"}, "CONFIG_SQUASHFS_ZSTD"},
		{Options{Compressor: "zstd", Level: 1, BlockSize: 1 << 20}, "CONFIG_SQUASHFS_ZSTD"},
		{Options{Level: 1, Xattrs: true}, "CONFIG_SQUASHFS_XATTR"},
		{Options{Compressor: "zstd", Xattrs: true}, "CONFIG_SQUASHFS_XATTR"},
	} {
		t.Run(fmt.Sprintf("%s-%d-%d-%v", cmp.Or(c.opts.Compressor, "gzip"), c.opts.Level, c.opts.BlockSize, c.opts.Xattrs), func(t *testing.T) {
			if !kernelHas(t, c.cfg) {
				t.Skipf("host kernel lacks %s: skipping the mount check", c.cfg)
			}
			r := rand.New(rand.NewPCG(7, 7))
			tree := randomTree(t, r)
			if c.opts.Xattrs {
				addRandomXattrs(r, tree)
			}
			img := writeImage(t, tree, c.opts)
			checkUnsquashfs(t, img, tree, c.opts)
			checkRoundTrip(t, img, tree)
			checkMount(t, img, tree)
			if c.opts.Xattrs {
				checkXattrsAt(t, mountImage(t, img), tree, "kernel")
				checkExtractXattrs(t, img, tree)
			}
		})
	}
}

// TestReadMksquashfs reads images made by mksquashfs from a host directory
// and compares them with the directory.
func TestReadMksquashfs(t *testing.T) {
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		t.Skip("mksquashfs not installed")
	}
	dir := filepath.Join(t.TempDir(), "src")
	mk := func(p string, data []byte, perm os.FileMode) {
		p = filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, perm); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, perm)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 60 {
		b := randomContent(r, 131072, nil)
		mk(fmt.Sprintf("d%d/f%02d", i%5, i), b, os.FileMode(0o600+i%3*0o44))
	}
	mk("dup1", []byte(strings.Repeat("same", 50000)), 0o644)
	mk("dup2", []byte(strings.Repeat("same", 50000)), 0o644)
	mk("sparse", nil, 0o644)
	if err := os.Truncate(filepath.Join(dir, "sparse"), 5<<20); err != nil {
		t.Fatal(err)
	}
	f, _ := os.OpenFile(filepath.Join(dir, "sparse"), os.O_WRONLY, 0)
	f.WriteAt([]byte("tail"), 5<<20-4)
	f.Close()
	if err := os.Link(filepath.Join(dir, "dup1"), filepath.Join(dir, "d0/hardlink")); err != nil {
		t.Fatal(err)
	}
	os.Symlink("../dup1", filepath.Join(dir, "d1/sym"))
	os.Chmod(filepath.Join(dir, "d2"), 0o1777)
	syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o640)
	os.Chown(filepath.Join(dir, "d3"), 1000, 2000)
	haveX := unix.Setxattr(filepath.Join(dir, "dup2"), "user.test", []byte("value"), 0) == nil
	if haveX {
		unix.Setxattr(filepath.Join(dir, "d4"), "user.dir", bytes.Repeat([]byte("v"), 200), 0)
		unix.Setxattr(filepath.Join(dir, "d0/f00"), "user.dir", bytes.Repeat([]byte("v"), 200), 0) // shared, out-of-line
		unix.Setxattr(filepath.Join(dir, "d1"), "trusted.overlay.opaque", []byte("y"), 0)
	}
	want := hostTree(t, dir)
	// hostTree skips FIFOs; add it and the xattrs.
	add(t, want, "/fifo", &rootfs.Node{Type: rootfs.FIFO, Perm: 0o640, MTime: mtimeOf(t, filepath.Join(dir, "fifo"))})
	for _, e := range modelOf(t, want) {
		if x := hostXattrs(t, filepath.Join(dir, e.path)); len(x) > 0 {
			e.node.Xattrs = x
		}
	}
	for _, args := range [][]string{
		{"-comp", "gzip"},
		{"-comp", "gzip", "-always-use-fragments", "-b", "4096"},
		{"-comp", "gzip", "-no-fragments", "-no-duplicates"},
		{"-comp", "xz"},
		{"-comp", "zstd", "-Xcompression-level", "3"},
		{"-comp", "gzip", "-noI", "-noD", "-noF"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "ms.sqfs")
			run(t, "mksquashfs", append([]string{dir, img, "-noappend", "-quiet", "-no-progress", "-processors", "2"}, args...)...)
			w := want
			if !haveX {
				t.Log("no user xattrs on this filesystem: xattrs not checked")
			}
			checkRoundTrip(t, img, w)
		})
	}
}

func mtimeOf(t testing.TB, p string) int64 {
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.ModTime().Unix()
}
