//go:build linux

package squashfs

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/rfsbuild/rfs/rootfs"
)

func timeUTC(sec int64) time.Time { return time.Unix(sec, 0).UTC() }

const t0 = 1700000000

func add(t testing.TB, tree *rootfs.Tree, p string, n *rootfs.Node) {
	t.Helper()
	if err := tree.Add(p, n); err != nil {
		t.Fatal(err)
	}
}

func file(perm uint32, content string) *rootfs.Node {
	return &rootfs.Node{Type: rootfs.Regular, Perm: perm, MTime: t0, Content: rootfs.Bytes(content)}
}

// allTypes is a small tree with every inode type, special mode bits,
// several owners and hard links.
func allTypes(t testing.TB) *rootfs.Tree {
	tree := rootfs.New(t0)
	add(t, tree, "/bin/busybox", &rootfs.Node{Type: rootfs.Regular, Perm: 0o4755, MTime: t0 + 1, Content: rootfs.Bytes(strings.Repeat("busybox\x00", 5000))})
	add(t, tree, "/bin/sh", &rootfs.Node{Type: rootfs.Symlink, Perm: 0o777, MTime: t0 + 2, Target: "busybox"})
	add(t, tree, "/etc/passwd", &rootfs.Node{Type: rootfs.Regular, Perm: 0o644, MTime: t0 + 3, Content: rootfs.Bytes("root:x:0:0:root:/root:/bin/sh\n")})
	add(t, tree, "/etc/shadow", &rootfs.Node{Type: rootfs.Regular, Perm: 0o640, GID: 42, MTime: t0 + 4, Content: rootfs.Bytes("root::0:::::\n")})
	add(t, tree, "/etc/empty", &rootfs.Node{Type: rootfs.Regular, Perm: 0o600, MTime: t0})
	add(t, tree, "/dev/null", &rootfs.Node{Type: rootfs.CharDev, Perm: 0o666, MTime: t0, Major: 1, Minor: 3})
	add(t, tree, "/dev/sda1", &rootfs.Node{Type: rootfs.BlockDev, Perm: 0o660, GID: 6, MTime: t0, Major: 8, Minor: 1})
	add(t, tree, "/dev/big", &rootfs.Node{Type: rootfs.CharDev, Perm: 0o600, MTime: t0, Major: 4095, Minor: 1048575})
	add(t, tree, "/dev/initctl", &rootfs.Node{Type: rootfs.FIFO, Perm: 0o600, MTime: t0})
	add(t, tree, "/dev/log", &rootfs.Node{Type: rootfs.Socket, Perm: 0o666, MTime: t0})
	add(t, tree, "/tmp", &rootfs.Node{Type: rootfs.Dir, Perm: 0o1777, MTime: t0 + 5})
	add(t, tree, "/usr/bin/sgid", &rootfs.Node{Type: rootfs.Regular, Perm: 0o2711, UID: 1000, GID: 1000, MTime: 0, Content: rootfs.Bytes("x")})
	add(t, tree, "/home/user", &rootfs.Node{Type: rootfs.Dir, Perm: 0o700, UID: 4294967294, GID: 65534, MTime: 4294967295})
	ls := &rootfs.Node{Type: rootfs.Regular, Perm: 0o755, MTime: t0, Content: rootfs.Bytes("same inode")}
	add(t, tree, "/bin/ls", ls)
	add(t, tree, "/usr/bin/ls", ls)
	add(t, tree, "/usr/bin/dir", ls)
	fifo := &rootfs.Node{Type: rootfs.FIFO, Perm: 0o644, MTime: t0}
	add(t, tree, "/run/fifo", fifo)
	add(t, tree, "/run/fifo2", fifo)
	sl := &rootfs.Node{Type: rootfs.Symlink, Perm: 0o777, MTime: t0, Target: "/etc/passwd"}
	add(t, tree, "/run/sl", sl)
	add(t, tree, "/run/sl2", sl)
	dev := &rootfs.Node{Type: rootfs.CharDev, Perm: 0o600, MTime: t0, Major: 5, Minor: 1}
	add(t, tree, "/dev/console", dev)
	add(t, tree, "/run/console", dev)
	return tree
}

func TestSmallTrees(t *testing.T) {
	needUnsquashfs(t)
	cases := []struct {
		name string
		tree func(testing.TB) *rootfs.Tree
		opts Options
	}{
		{"empty root", func(testing.TB) *rootfs.Tree { return rootfs.New(t0) }, Options{}},
		{"root mode and owner", func(t testing.TB) *rootfs.Tree {
			tr := rootfs.New(t0)
			add(t, tr, "/", &rootfs.Node{Type: rootfs.Dir, Perm: 0o1750, UID: 7, GID: 9, MTime: 12345})
			return tr
		}, Options{}},
		{"one empty file", func(t testing.TB) *rootfs.Tree {
			tr := rootfs.New(t0)
			add(t, tr, "/e", file(0o644, ""))
			return tr
		}, Options{}},
		{"all types", allTypes, Options{}},
		{"all types 4K blocks", allTypes, Options{BlockSize: 4096, Level: 1}},
		{"all types 1M blocks", allTypes, Options{BlockSize: 1 << 20}},
		{"block boundaries", func(t testing.TB) *rootfs.Tree {
			tr := rootfs.New(t0)
			r := rand.New(rand.NewPCG(1, 2))
			for _, n := range []int{1, 4095, 4096, 4097, 8192, 3*4096 + 17} {
				b := make([]byte, n)
				for i := range b {
					b[i] = byte(r.IntN(256))
				}
				add(t, tr, fmt.Sprintf("/rand%d", n), file(0o644, string(b)))
				add(t, tr, fmt.Sprintf("/zero%d", n), file(0o644, string(make([]byte, n))))
				add(t, tr, fmt.Sprintf("/text%d", n), file(0o644, strings.Repeat("a", n)))
			}
			// zero blocks in the middle of data
			add(t, tr, "/holes", file(0o644, "start"+string(make([]byte, 5*4096))+"end"))
			return tr
		}, Options{BlockSize: 4096}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tree := c.tree(t)
			img := writeImage(t, tree, c.opts)
			checkUnsquashfs(t, img, tree, c.opts)
			if os.Geteuid() == 0 {
				checkMount(t, img, tree)
			}
		})
	}
}

// TestLargeDirectory makes directories whose listings span many metadata
// blocks, so they need extended inodes with a directory index, and checks
// that the kernel finds every name (lookups go through the index).
func TestLargeDirectory(t *testing.T) {
	needUnsquashfs(t)
	tree := rootfs.New(t0)
	for i := range 2000 {
		name := fmt.Sprintf("/big/%04d-%s", i, strings.Repeat("n", i%200))
		add(t, tree, name, file(0o644, fmt.Sprint(i)))
	}
	for i := range 300 {
		add(t, tree, fmt.Sprintf("/many/%d", i), &rootfs.Node{Type: rootfs.Dir, Perm: 0o755, MTime: t0})
	}
	img := writeImage(t, tree, Options{})
	checkUnsquashfs(t, img, tree, Options{})
	if os.Geteuid() == 0 {
		checkMount(t, img, tree)
	}
}

// zeroSource is a large file of zeros with a marker at the end.
type zeroSource struct{ n int64 }

func (z zeroSource) Size() int64 { return z.n }
func (z zeroSource) Open() (io.ReadCloser, error) {
	return io.NopCloser(io.MultiReader(io.LimitReader(zeros{}, z.n-3), strings.NewReader("end"))), nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestHugeSparseFile writes a file over 4 GiB (extended file inode, 64-bit
// size), made of zero blocks stored as holes.
func TestHugeSparseFile(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the 4 GiB file")
	}
	needUnsquashfs(t)
	const size = 4<<30 + 5000
	tree := rootfs.New(t0)
	add(t, tree, "/huge", &rootfs.Node{Type: rootfs.Regular, Perm: 0o644, MTime: t0, Content: zeroSource{size}})
	add(t, tree, "/small", file(0o644, "small"))
	opts := Options{BlockSize: 1 << 20}
	img := writeImage(t, tree, opts)
	st, _ := os.Stat(img)
	if st.Size() > 1<<20 {
		t.Errorf("image is %d bytes: zero blocks were not stored sparse", st.Size())
	}
	model := modelOf(t, tree)
	checkLLN(t, img, model)
	checkSuper(t, img, model, opts)
	if os.Geteuid() != 0 {
		return
	}
	mnt := mountImage(t, img)
	f, err := os.Open(mnt + "/huge")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	if fi.Size() != size {
		t.Errorf("size %d, want %d", fi.Size(), int64(size))
	}
	buf := make([]byte, 8)
	if _, err := f.ReadAt(buf, size-8); err != nil || string(buf) != "\x00\x00\x00\x00\x00end" {
		t.Errorf("tail %q %v", buf, err)
	}
	if _, err := f.ReadAt(buf, 3<<30); err != nil || string(buf) != "\x00\x00\x00\x00\x00\x00\x00\x00" {
		t.Errorf("middle %q %v", buf, err)
	}
}

// TestDeterministic writes the same trees with different worker counts.
func TestDeterministic(t *testing.T) {
	for seed := range uint64(5) {
		tree := randomTree(t, rand.New(rand.NewPCG(seed, 99)))
		var first []byte
		for _, w := range []int{1, 2, 3, 8} {
			var buf writerAt
			if _, err := Write(&buf, tree, Options{BlockSize: 4096, Workers: w, MTime: 42}); err != nil {
				t.Fatal(err)
			}
			if first == nil {
				first = buf.b
			} else if !bytes.Equal(first, buf.b) {
				t.Fatalf("seed %d: output with %d workers differs from 1 worker", seed, w)
			}
		}
	}
}

// writerAt is an in-memory io.WriterAt.
type writerAt struct{ b []byte }

func (w *writerAt) WriteAt(p []byte, off int64) (int, error) {
	if end := int(off) + len(p); end > len(w.b) {
		w.b = append(w.b, make([]byte, end-len(w.b))...)
	}
	copy(w.b[off:], p)
	return len(p), nil
}

func TestDuplicatesStoredOnce(t *testing.T) {
	// Read ahead (hashed in memory) and too large for that (hashed ahead,
	// read again when written).
	for _, size := range []int{300000, prefetchMax + 300000} {
		t.Run(fmt.Sprint(size), func(t *testing.T) { testDuplicates(t, size) })
	}
}

func testDuplicates(t *testing.T, size int) {
	content := make([]byte, size)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range content {
		content[i] = byte(r.IntN(256))
	}
	one := rootfs.New(t0)
	add(t, one, "/a", file(0o644, string(content)))
	many := rootfs.New(t0)
	for i := range 5 {
		add(t, many, fmt.Sprintf("/d%d/copy", i), file(0o644, string(content)))
	}
	// Same size, different content: must not be taken for a duplicate.
	other := bytes.Clone(content)
	other[size/2] ^= 1
	add(t, one, "/b", file(0o644, string(other)))
	add(t, many, "/other", file(0o644, string(other)))
	var b1, b5 writerAt
	if _, err := Write(&b1, one, Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(&b5, many, Options{}); err != nil {
		t.Fatal(err)
	}
	if len(b5.b) > len(b1.b)+4096 {
		t.Errorf("5 copies take %d bytes, 1 copy %d: duplicates not detected", len(b5.b), len(b1.b))
	}
	if _, err := exec.LookPath("unsquashfs"); err == nil {
		dir := t.TempDir()
		if err := os.WriteFile(dir+"/img", b5.b, 0o644); err != nil {
			t.Fatal(err)
		}
		checkUnsquashfs(t, dir+"/img", many, Options{})
	}
}

// failingSource fails or lies about its size.
type failingSource struct {
	size int64
	data string
	err  error
}

func (f failingSource) Size() int64 { return f.size }
func (f failingSource) Open() (io.ReadCloser, error) {
	if f.err != nil {
		return nil, f.err
	}
	return io.NopCloser(strings.NewReader(f.data)), nil
}

func TestBadInput(t *testing.T) {
	long := strings.Repeat("x", 257)
	cases := []struct {
		name string
		tree func(testing.TB) *rootfs.Tree
		opts Options
		want string
	}{
		{"empty symlink", func(t testing.TB) *rootfs.Tree {
			tr := rootfs.New(t0)
			add(t, tr, "/l", &rootfs.Node{Type: rootfs.Symlink, Perm: 0o777})
			return tr
		}, Options{}, "empty target"},
		{"NUL in name", func(t testing.TB) *rootfs.Tree {
			tr := rootfs.New(t0)
			add(t, tr, "/a\x00b", file(0o644, ""))
			return tr
		}, Options{}, "NUL"},
		{"long name", func(t testing.TB) *rootfs.Tree {
			tr := rootfs.New(t0)
			add(t, tr, "/"+long, file(0o644, ""))
			return tr
		}, Options{}, "257 bytes"},
		{"xattrs", func(t testing.TB) *rootfs.Tree {
			tr := rootfs.New(t0)
			add(t, tr, "/x", &rootfs.Node{Type: rootfs.Regular, Perm: 0o644, Xattrs: map[string][]byte{"user.a": []byte("b")}})
			return tr
		}, Options{}, "does not support squashfs xattrs"},
		{"bad perm", func(t testing.TB) *rootfs.Tree {
			tr := rootfs.New(t0)
			add(t, tr, "/x", file(0o10644, ""))
			return tr
		}, Options{}, "permission"},
		{"negative mtime", func(t testing.TB) *rootfs.Tree {
			tr := rootfs.New(t0)
			add(t, tr, "/x", &rootfs.Node{Type: rootfs.FIFO, MTime: -1})
			return tr
		}, Options{}, "mtime"},
		{"device too big", func(t testing.TB) *rootfs.Tree {
			tr := rootfs.New(t0)
			add(t, tr, "/x", &rootfs.Node{Type: rootfs.CharDev, Major: 4096})
			return tr
		}, Options{}, "device"},
		{"hard-linked dir", func(t testing.TB) *rootfs.Tree {
			tr := rootfs.New(t0)
			d := rootfs.NewDir(0o755, t0)
			add(t, tr, "/a", d)
			add(t, tr, "/b", d)
			return tr
		}, Options{}, "hard link"},
		{"short content", func(t testing.TB) *rootfs.Tree {
			tr := rootfs.New(t0)
			add(t, tr, "/x", &rootfs.Node{Type: rootfs.Regular, Content: failingSource{size: 10, data: "abc"}})
			return tr
		}, Options{}, "/x: content is shorter"},
		{"long content", func(t testing.TB) *rootfs.Tree {
			tr := rootfs.New(t0)
			add(t, tr, "/x", &rootfs.Node{Type: rootfs.Regular, Content: failingSource{size: 2, data: "abc"}})
			return tr
		}, Options{}, "/x: content is longer"},
		{"short content, dedup path", func(t testing.TB) *rootfs.Tree {
			tr := rootfs.New(t0)
			add(t, tr, "/x", &rootfs.Node{Type: rootfs.Regular, Content: failingSource{size: 10, data: "abc"}})
			add(t, tr, "/y", &rootfs.Node{Type: rootfs.Regular, Content: failingSource{size: 10, data: "abc"}})
			return tr
		}, Options{}, "content is shorter"},
		{"open fails", func(t testing.TB) *rootfs.Tree {
			tr := rootfs.New(t0)
			add(t, tr, "/x", &rootfs.Node{Type: rootfs.Regular, Content: failingSource{size: 2, err: os.ErrPermission}})
			return tr
		}, Options{}, "/x: open content: permission denied"},
		{"block size", func(testing.TB) *rootfs.Tree { return rootfs.New(t0) }, Options{BlockSize: 3000}, "block size"},
		{"compressor", func(testing.TB) *rootfs.Tree { return rootfs.New(t0) }, Options{Compressor: "lzo"}, `compressor "lzo" is not supported`},
		{"xz level", func(testing.TB) *rootfs.Tree { return rootfs.New(t0) }, Options{Compressor: "xz", Level: 3}, "xz has no level"},
		{"xz dict", func(testing.TB) *rootfs.Tree { return rootfs.New(t0) }, Options{Compressor: "xz", XZDictSize: 100000}, "dictionary size"},
		{"xz dict > block", func(testing.TB) *rootfs.Tree { return rootfs.New(t0) }, Options{Compressor: "xz", XZDictSize: 1 << 18}, "dictionary size"},
		{"gzip dict", func(testing.TB) *rootfs.Tree { return rootfs.New(t0) }, Options{XZDictSize: 8192}, "xz only"},
		{"zstd level", func(testing.TB) *rootfs.Tree { return rootfs.New(t0) }, Options{Compressor: "zstd", Level: 23}, "zstd level"},
		{"zstd smallest", func(testing.TB) *rootfs.Tree { return rootfs.New(t0) }, Options{Compressor: "zstd", Smallest: true}, "gzip only"},
		{"xattr namespace", func(t testing.TB) *rootfs.Tree {
			tr := rootfs.New(t0)
			add(t, tr, "/x", &rootfs.Node{Type: rootfs.Regular, Perm: 0o644, Xattrs: map[string][]byte{"system.posix_acl_access": []byte("b")}})
			return tr
		}, Options{Xattrs: true}, "user.*, trusted.* and security.*"},
		{"xattr empty suffix", func(t testing.TB) *rootfs.Tree {
			tr := rootfs.New(t0)
			add(t, tr, "/x", &rootfs.Node{Type: rootfs.Regular, Perm: 0o644, Xattrs: map[string][]byte{"user.": []byte("b")}})
			return tr
		}, Options{Xattrs: true}, "user.*"},
		{"xattr value size", func(t testing.TB) *rootfs.Tree {
			tr := rootfs.New(t0)
			add(t, tr, "/x", &rootfs.Node{Type: rootfs.Regular, Perm: 0o644, Xattrs: map[string][]byte{"user.a": make([]byte, 65537)}})
			return tr
		}, Options{Xattrs: true}, "65537 bytes"},
		{"level", func(testing.TB) *rootfs.Tree { return rootfs.New(t0) }, Options{Level: 10}, "level"},
		{"sb mtime", func(testing.TB) *rootfs.Tree { return rootfs.New(t0) }, Options{MTime: 1 << 33}, "mtime"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf writerAt
			_, err := Write(&buf, c.tree(t), c.opts)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Write error %v, want one containing %q", err, c.want)
			}
		})
	}
	if _, err := Write(&writerAt{}, nil, Options{}); err == nil {
		t.Error("nil tree: no error")
	}
}

// errWriter fails after n bytes.
type errWriter struct{ n int64 }

func (e *errWriter) WriteAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > e.n {
		return 0, fmt.Errorf("disk full")
	}
	return len(p), nil
}

func TestWriterError(t *testing.T) {
	tree := randomTree(t, rand.New(rand.NewPCG(7, 7)))
	var full writerAt
	size, err := Write(&full, tree, Options{BlockSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int64{0, 100, size / 3, size / 2, size - 5000, size - 1} {
		if _, err := Write(&errWriter{n}, tree, Options{BlockSize: 4096, Workers: 2}); err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Errorf("limit %d of %d: error %v, want disk full", n, size, err)
		}
	}
}

// TestName256 checks the longest name squashfs allows (one more than the
// host's NAME_MAX, so it cannot be extracted, only listed and mounted).
func TestName256(t *testing.T) {
	needUnsquashfs(t)
	tree := rootfs.New(t0)
	name := strings.Repeat("é", 128)
	add(t, tree, "/"+name, file(0o644, "long"))
	add(t, tree, "/d/"+name, &rootfs.Node{Type: rootfs.Symlink, Perm: 0o777, Target: name})
	img := writeImage(t, tree, Options{})
	model := modelOf(t, tree)
	checkLLN(t, img, model)
	checkPF(t, img, model)
	if os.Geteuid() == 0 {
		checkMount(t, img, tree)
	}
}
