//go:build linux

package rootfs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// addHostDirSerial is AddHostDir as it was before the scan was made
// parallel: one filepath.WalkDir, an os.Lstat and a t.Add from the root per
// entry. It is the reference the parallel scan must match exactly.
func (t *Tree) addHostDirSerial(src, dest string, opts HostDirOptions) error {
	rel, err := Clean(dest)
	if err != nil {
		return fmt.Errorf("files %s: destination: %w", src, err)
	}
	st, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("files: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("files %s: not a directory", src)
	}
	type inode struct{ dev, ino uint64 }
	links := map[inode]*Node{}
	return filepath.WalkDir(src, func(hostPath string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("files: %w", err)
		}
		r, err := filepath.Rel(src, hostPath)
		if err != nil {
			return err
		}
		target := "/" + rel + "/" + filepath.ToSlash(r)
		if r == "." {
			target = "/" + rel
		}
		info, err := os.Lstat(hostPath)
		if err != nil {
			return fmt.Errorf("files: %w", err)
		}
		sys, _ := info.Sys().(*syscall.Stat_t)
		n := &Node{Perm: uint32(info.Mode().Perm())}
		if info.Mode()&fs.ModeSetuid != 0 {
			n.Perm |= 0o4000
		}
		if info.Mode()&fs.ModeSetgid != 0 {
			n.Perm |= 0o2000
		}
		if info.Mode()&fs.ModeSticky != 0 {
			n.Perm |= 0o1000
		}
		switch {
		case opts.Owner != nil:
			n.UID, n.GID = opts.Owner.UID, opts.Owner.GID
		case sys != nil:
			n.UID, n.GID = sys.Uid, sys.Gid
		}
		if opts.MTime != nil {
			n.MTime = *opts.MTime
		} else {
			n.MTime = info.ModTime().Unix()
		}
		mode := info.Mode()
		switch {
		case mode.IsDir():
			n.Type = Dir
		case mode.IsRegular():
			if sys != nil && sys.Nlink > 1 {
				key := inode{uint64(sys.Dev), uint64(sys.Ino)}
				if first := links[key]; first != nil {
					if err := t.Add(target, first); err != nil {
						return fmt.Errorf("files %s: %w", hostPath, err)
					}
					return nil
				}
				links[key] = n
			}
			n.Type = Regular
			n.Content = HostFile{Path: hostPath, Len: info.Size()}
		case mode&fs.ModeSymlink != 0:
			n.Type = Symlink
			if n.Target, err = os.Readlink(hostPath); err != nil {
				return fmt.Errorf("files: %w", err)
			}
		case mode&fs.ModeNamedPipe != 0:
			n.Type = FIFO
		case mode&fs.ModeSocket != 0:
			n.Type = Socket
		case mode&fs.ModeDevice != 0 && sys != nil:
			n.Type = BlockDev
			if mode&fs.ModeCharDevice != 0 {
				n.Type = CharDev
			}
			n.Major, n.Minor = unix.Major(uint64(sys.Rdev)), unix.Minor(uint64(sys.Rdev))
		default:
			return fmt.Errorf("files %s: unsupported file type %v", hostPath, mode.Type())
		}
		if err := t.Add(target, n); err != nil {
			return fmt.Errorf("files %s: %w", hostPath, err)
		}
		return nil
	})
}

// Names are few so that random trees collide with each other, and chosen
// so that filepath.WalkDir's order differs from the byte order of whole
// paths: "a/x" is visited before "a-b" although "a-b" < "a/x".
var hostNames = []string{"a", "a-b", "a.b", "a b", "B", "b", "z", "ä", "0", "d1", "d2"}

// makeHostTree fills dir with a random tree drawn from seed: nested and
// empty directories, files, symlinks (with targets around readlink's
// buffer sizes), hard links within and across directories and to a file
// outside dir, fifos, sockets, setuid, setgid and sticky modes, negative
// and sub-second times, and as root device nodes and files of other owners.
func makeHostTree(t testing.TB, dir string, seed uint64) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 0))
	asRoot := os.Geteuid() == 0
	var (
		files []string // regular files, to hard link to
		all   []string // every path in creation order, parents first
	)
	outside := filepath.Join(t.TempDir(), "outside")
	if err := os.WriteFile(outside, []byte("shared with a path outside the tree"), 0o644); err != nil {
		t.Fatal(err)
	}
	var fill func(d string, depth int)
	fill = func(d string, depth int) {
		for range 4 + r.IntN(12) {
			name := hostNames[r.IntN(len(hostNames))]
			if r.IntN(3) == 0 {
				name += fmt.Sprint(r.IntN(3))
			}
			p := filepath.Join(d, name)
			if _, err := os.Lstat(p); err == nil {
				continue
			}
			var err error
			switch k := r.IntN(20); {
			case k < 7 && depth < 3:
				if err = os.Mkdir(p, 0o755); err == nil {
					all = append(all, p)
					fill(p, depth+1)
					continue
				}
			case k < 9:
				err = os.WriteFile(p, []byte(strings.Repeat("x", r.IntN(100))), 0o644)
				files = append(files, p)
			case k < 12:
				targets := []string{"a", "../b", "/etc/passwd", "d1/./a b", strings.Repeat("t", 127),
					strings.Repeat("u", 128), strings.Repeat("v", 129), strings.Repeat("w/", 150)}
				err = os.Symlink(targets[r.IntN(len(targets))], p)
			case k < 15:
				if len(files) > 0 && r.IntN(4) > 0 {
					err = os.Link(files[r.IntN(len(files))], p)
				} else {
					err = os.Link(outside, p)
				}
			case k < 16:
				err = unix.Mknod(p, unix.S_IFIFO|0o640, 0)
			case k < 17:
				err = unix.Mknod(p, unix.S_IFSOCK|0o755, 0)
			case k < 19 && asRoot:
				typ := []uint32{unix.S_IFCHR, unix.S_IFBLK}[r.IntN(2)]
				major := []uint32{1, 8, 259, 0x1234}[r.IntN(4)]
				minor := []uint32{0, 3, 300, 0x12345}[r.IntN(4)]
				err = unix.Mknod(p, typ|0o620, int(unix.Mkdev(major, minor)))
				if errors.Is(err, fs.ErrPermission) { // a container's root may not make devices
					err = os.WriteFile(p, nil, 0o600)
				}
			default:
				err = os.WriteFile(p, nil, 0o600)
			}
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, p)
		}
	}
	fill(dir, 0)
	// Owners, modes and times last, children before their directories, so
	// that nothing created later changes them.
	fileModes := []uint32{0o644, 0o755, 0o4755, 0o2755, 0o6711, 0o1644, 0o600, 0, 0o7777}
	dirModes := []uint32{0o755, 0o1777, 0o2755, 0o700, 0o3775, 0o7777}
	for i := len(all) - 1; i >= 0; i-- {
		p := all[i]
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if asRoot && r.IntN(2) == 0 {
			ids := []int{0, 1, 1000, 65534, 1 << 30}
			if err := os.Lchown(p, ids[r.IntN(len(ids))], ids[r.IntN(len(ids))]); err != nil {
				t.Fatal(err)
			}
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0: // symlinks have no mode of their own
		case fi.IsDir():
			err = unix.Chmod(p, dirModes[r.IntN(len(dirModes))])
		default:
			err = unix.Chmod(p, fileModes[r.IntN(len(fileModes))])
		}
		if err != nil {
			t.Fatal(err)
		}
		sec := r.Int64N(6e9) - 2e9
		ts := unix.NsecToTimespec(sec*1e9 + r.Int64N(1e9))
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Fatal(err)
		}
	}
}

// diffTrees describes the first difference between two trees, field by
// field and in which entries share a node, or returns "".
func diffTrees(want, got *Tree) string {
	type entry struct {
		path string
		node *Node
	}
	list := func(t *Tree) []entry {
		var out []entry
		t.Walk(func(p string, n *Node) error {
			out = append(out, entry{p, n})
			return nil
		})
		return out
	}
	show := func(n *Node) string {
		return fmt.Sprintf("%v %#o uid=%d gid=%d mtime=%d content=%#v target=%q dev=%d,%d xattrs=%v entries=%d",
			n.Type, n.Perm, n.UID, n.GID, n.MTime, n.Content, n.Target, n.Major, n.Minor, n.Xattrs, n.NumChildren())
	}
	w, g := list(want), list(got)
	firstW, firstG := map[*Node]string{}, map[*Node]string{}
	for i := range max(len(w), len(g)) {
		switch {
		case i >= len(g):
			return fmt.Sprintf("%s missing", w[i].path)
		case i >= len(w):
			return fmt.Sprintf("%s unexpected", g[i].path)
		case w[i].path != g[i].path:
			return fmt.Sprintf("entry %d is %s, want %s", i, g[i].path, w[i].path)
		}
		p := w[i].path
		if sw, sg := show(w[i].node), show(g[i].node); sw != sg {
			return fmt.Sprintf("%s:\n got %s\nwant %s", p, sg, sw)
		}
		if _, ok := firstW[w[i].node]; !ok {
			firstW[w[i].node] = p
		}
		if _, ok := firstG[g[i].node]; !ok {
			firstG[g[i].node] = p
		}
		if firstW[w[i].node] != firstG[g[i].node] {
			return fmt.Sprintf("%s is the node of %s, want the node of %s", p, firstG[g[i].node], firstW[w[i].node])
		}
	}
	return ""
}

// checkSame adds src at dest to a tree from base with the serial reference
// and with the parallel scan at several worker counts, and fails on any
// difference in the trees or the errors, a partly added tree included. It
// returns the reference's error.
func checkSame(t *testing.T, base func() *Tree, src, dest string, opts HostDirOptions) error {
	t.Helper()
	want := base()
	wantErr := want.addHostDirSerial(src, dest, opts)
	for _, workers := range []int{1, 2, 3, 8, 64} {
		got := base()
		err := got.addHostDir(context.Background(), src, dest, opts, workers)
		if fmt.Sprint(err) != fmt.Sprint(wantErr) {
			t.Fatalf("%d workers, %s at %s: error %v, want %v", workers, src, dest, err, wantErr)
		}
		if d := diffTrees(want, got); d != "" {
			t.Fatalf("%d workers, %s at %s: %s", workers, src, dest, d)
		}
	}
	return wantErr
}

func TestAddHostDirMatchesSerial(t *testing.T) {
	epoch := int64(1700000000)
	optsList := []HostDirOptions{{}, {Owner: &Owner{}, MTime: &epoch}, {Owner: &Owner{UID: 7, GID: 8}}}
	var ok, failed int
	for seed := range uint64(8) {
		src := t.TempDir()
		makeHostTree(t, src, seed)
		other := t.TempDir()
		makeHostTree(t, other, seed+1000)
		empty := func() *Tree { return New(5) }
		bases := []struct {
			name string
			base func() *Tree
			dest string
		}{
			{"empty", empty, "/"},
			{"empty", empty, "/opt/app/"},
			// The same files again: every entry is already there, as
			// the same type.
			{"itself", func() *Tree {
				tr := New(5)
				must(t, tr.addHostDirSerial(src, "/usr", HostDirOptions{}))
				return tr
			}, "/usr"},
			// Another random tree: entries already there, some of
			// another type, which is an error.
			{"other", func() *Tree {
				tr := New(5)
				must(t, tr.addHostDirSerial(other, "/", HostDirOptions{}))
				return tr
			}, "/"},
			// dest reached through a symlink in the tree.
			{"symlinked", func() *Tree {
				tr := New(5)
				must(t, tr.Add("/opt/data", &Node{Type: Symlink, Target: "../srv"}))
				return tr
			}, "/opt/data/x"},
		}
		// The same source named differently: HostFile paths must be the
		// same strings WalkDir makes of them.
		cwd, err := os.Getwd()
		must(t, err)
		relSrc, err := filepath.Rel(cwd, src)
		must(t, err)
		for _, name := range []string{src + "/", src + "//./", relSrc} {
			must(t, checkSame(t, empty, name, "./x/../y", HostDirOptions{}))
		}
		for _, b := range bases {
			for _, opts := range optsList {
				if err := checkSame(t, b.base, src, b.dest, opts); err != nil {
					failed++
				} else {
					ok++
				}
			}
		}
	}
	// Both outcomes must have been compared, or the test proves little.
	if ok == 0 || failed == 0 {
		t.Fatalf("%d merges succeeded and %d failed: want some of each", ok, failed)
	}
	t.Logf("%d merges compared equal after success, %d after an error", ok, failed)
}

// TestAddHostDirGOMAXPROCS runs the exported AddHostDir, whose worker count
// follows GOMAXPROCS, against the reference.
func TestAddHostDirGOMAXPROCS(t *testing.T) {
	src := t.TempDir()
	makeHostTree(t, src, 77)
	want := New(0)
	must(t, want.addHostDirSerial(src, "/", HostDirOptions{}))
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, procs := range []int{1, 2, 4, 16} {
		runtime.GOMAXPROCS(procs)
		for range 5 {
			got := New(0)
			must(t, got.AddHostDir(src, "/", HostDirOptions{}))
			if d := diffTrees(want, got); d != "" {
				t.Fatalf("GOMAXPROCS %d: %s", procs, d)
			}
		}
	}
}

// TestAddHostDirSymlinkThroughDest covers a tree whose path to dest goes
// through a symlink inside dest itself, which the host files replace: each
// entry's path then leads somewhere else than the one before, which only
// adding entries one by one from the root reproduces.
func TestAddHostDirSymlinkThroughDest(t *testing.T) {
	src := t.TempDir()
	must(t, os.Symlink("/f/g", filepath.Join(src, "s")))
	must(t, os.WriteFile(filepath.Join(src, "t"), []byte("t"), 0o644))
	must(t, os.Mkdir(filepath.Join(src, "u"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "u", "v"), []byte("v"), 0o644))
	base := func() *Tree {
		tr := New(3)
		must(t, tr.Add("/d/y/s", &Node{Type: Symlink, Target: "/e"}))
		must(t, tr.Add("/p", &Node{Type: Symlink, Target: "/d/y/s/.."}))
		return tr
	}
	must(t, checkSame(t, base, src, "/p/d/y", HostDirOptions{}))
	tr := base()
	must(t, tr.AddHostDir(src, "/p/d/y", HostDirOptions{}))
	if tr.Lookup("/f/d/y/u/v") == nil {
		t.Fatal("entries after s did not follow the new link")
	}
}

func TestAddHostDirErrors(t *testing.T) {
	src := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(src, "etc/app"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "etc/app/conf"), []byte("x=1\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(src, "file"), nil, 0o644))
	must(t, os.Symlink("file", filepath.Join(src, "file-link")))
	must(t, os.Symlink("etc", filepath.Join(src, "dir-link")))
	empty := func() *Tree { return New(0) }

	for _, dest := range []string{"..", "/../x", "/a/../../b"} {
		if err := checkSame(t, empty, src, dest, HostDirOptions{}); !errors.Is(err, ErrEscapes) {
			t.Errorf("dest %q: %v, want ErrEscapes", dest, err)
		}
	}
	if err := checkSame(t, empty, filepath.Join(src, "missing"), "/", HostDirOptions{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing source: %v", err)
	}
	for _, notDir := range []string{"file", "file-link"} {
		if err := checkSame(t, empty, filepath.Join(src, notDir), "/", HostDirOptions{}); err == nil || !strings.Contains(err.Error(), "not a directory") {
			t.Errorf("source %s: %v, want not a directory", notDir, err)
		}
	}
	// A source that is a symlink to a directory is followed (the
	// reference, like WalkDir, would take the link itself); links inside
	// stay links.
	for _, dest := range []string{"/", "/x"} {
		tr := New(0)
		must(t, tr.AddHostDir(filepath.Join(src, "dir-link"), dest, HostDirOptions{}))
		n := tr.Lookup(filepath.Join(dest, "app/conf"))
		if n == nil || n.Type != Regular {
			t.Errorf("dest %s: symlinked source not followed: %v", dest, n)
		}
	}

	// Entries of another type already in the tree.
	for _, c := range []struct{ path, typ string }{{"/etc", "file"}, {"/etc/app/conf", "dir"}, {"/file", "symlink"}} {
		base := func() *Tree {
			tr := New(0)
			switch c.typ {
			case "file":
				must(t, tr.Add(c.path, &Node{Type: Regular}))
			case "dir":
				must(t, tr.MkdirAll(c.path, 0o700))
			case "symlink":
				must(t, tr.Add(c.path, &Node{Type: Symlink, Target: "x"}))
			}
			return tr
		}
		if err := checkSame(t, base, src, "/", HostDirOptions{}); err == nil || !strings.Contains(err.Error(), "already there") {
			t.Errorf("%s already a %s: %v", c.path, c.typ, err)
		}
	}
	// dest itself is a file.
	fileAtDest := func() *Tree {
		tr := New(0)
		must(t, tr.Add("/opt", &Node{Type: Regular}))
		return tr
	}
	if err := checkSame(t, fileAtDest, src, "/opt", HostDirOptions{}); err == nil {
		t.Error("directory merged onto a file")
	}
	if err := checkSame(t, fileAtDest, src, "/opt/app", HostDirOptions{}); err == nil {
		t.Error("directory added under a file")
	}

	// An unreadable directory: root reads it anyway.
	if os.Geteuid() != 0 {
		locked := filepath.Join(src, "etc", "locked")
		must(t, os.Mkdir(locked, 0o755))
		must(t, os.WriteFile(filepath.Join(locked, "f"), nil, 0o644))
		must(t, os.Chmod(locked, 0))
		defer os.Chmod(locked, 0o755)
		if err := checkSame(t, empty, src, "/", HostDirOptions{}); !errors.Is(err, fs.ErrPermission) {
			t.Errorf("unreadable directory: %v", err)
		}
	}
}

// makeSmallFiles makes dirs directories of files small files each, the
// shape of bench/squashfs.sh's "100k small files" tree.
func makeSmallFiles(b *testing.B, root string, dirs, files int) {
	b.Helper()
	r := rand.New(rand.NewPCG(42, 0))
	text := []byte(strings.Repeat("lorem ipsum dolor sit amet ", 250))
	for d := range dirs {
		dp := filepath.Join(root, fmt.Sprintf("d%03d", d))
		if err := os.Mkdir(dp, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := range files {
			if err := os.WriteFile(filepath.Join(dp, fmt.Sprintf("f%04d.txt", f)), text[:r.IntN(len(text))], 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkAddHostDir scans a tree of 20,000 small files (20 directories
// of 1,000), or the directory named by $RFS_HOSTDIR_BENCH, with the
// parallel scan, with one worker, and with the serial reference.
func BenchmarkAddHostDir(b *testing.B) {
	src := os.Getenv("RFS_HOSTDIR_BENCH")
	if src == "" {
		src = b.TempDir()
		makeSmallFiles(b, src, 20, 1000)
	}
	for _, c := range []struct {
		name string
		add  func(t *Tree) error
	}{
		{"parallel", func(t *Tree) error { return t.AddHostDir(src, "/", HostDirOptions{}) }},
		{"1-worker", func(t *Tree) error { return t.addHostDir(context.Background(), src, "/", HostDirOptions{}, 1) }},
		{"serial-reference", func(t *Tree) error { return t.addHostDirSerial(src, "/", HostDirOptions{}) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if err := c.add(New(0)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// A cancelled scan reads no further and leaves the tree as it was.
func TestAddHostDirCancelled(t *testing.T) {
	src := t.TempDir()
	for i := range 50 {
		if err := os.MkdirAll(filepath.Join(src, fmt.Sprint(i), "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tree := New(0)
	if err := tree.AddHostDirContext(ctx, src, "/", HostDirOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("AddHostDirContext with a cancelled context = %v, want context.Canceled", err)
	}
	if n := len(tree.Root.Children()); n != 0 {
		t.Errorf("tree has %d entries after a cancelled scan", n)
	}
}
