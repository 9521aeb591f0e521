//go:build linux

package layer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"

	"github.com/rfsbuild/rfs/rootfs"
	"github.com/rfsbuild/rfs/squashfs"
)

// ovlOpts are rfs-init's overlay options (design notes §5).
const ovlOpts = "redirect_dir=off,index=off,metacopy=off"

func needKernel(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts squashfs (loop) and overlayfs; run the suite as root (make test)")
	}
	fss, _ := os.ReadFile("/proc/filesystems")
	for _, fs := range []string{"overlay", "squashfs", "tmpfs"} {
		if !bytes.Contains(fss, []byte("\t"+fs+"\n")) {
			t.Skipf("kernel has no %s", fs)
		}
	}
}

// TestKernelOracle: the kernel's overlayfs decides what is right. A random
// squashfs lower, a real overlay with a fresh tmpfs upper, a random script
// of operations through the merged view; then Diff, Commit (mounted by the
// kernel), Flatten and the OCI export (applied by go-containerregistry)
// must all agree with the merged view the kernel showed.
func TestKernelOracle(t *testing.T) {
	needKernel(t)
	seeds := 50
	if testing.Short() {
		seeds = 10
	}
	if s := os.Getenv("RFS_LAYER_SEEDS"); s != "" {
		fmt.Sscan(s, &seeds)
	}
	base := t.TempDir()
	if err := unix.Mount("tmpfs", base, "tmpfs", 0, "mode=0755"); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(base, unix.MNT_DETACH)
	stats := map[string]int{}
	for seed := range seeds {
		dir := filepath.Join(base, fmt.Sprint(seed))
		if !t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) { oracleRun(t, uint64(seed), dir, stats) }) {
			break
		}
		os.RemoveAll(dir)
	}
	t.Logf("changes seen over %d seeds: %v", seeds, stats)
}

func oracleRun(t *testing.T, seed uint64, dir string, stats map[string]int) {
	r := rand.New(rand.NewPCG(seed, 0x6c61796572))
	lower := randomLower(r)
	for _, d := range []string{"lower", "upper", "work", "merged", "layer", "stack", "w"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	lowerImg := filepath.Join(dir, "lower.sqfs")
	writeSquashfs(t, lowerImg, lower)
	mountSquashfs(t, lowerImg, filepath.Join(dir, "lower"))
	defer unix.Unmount(filepath.Join(dir, "lower"), 0)

	merged := filepath.Join(dir, "merged")
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s,%s", filepath.Join(dir, "lower"), filepath.Join(dir, "upper"), filepath.Join(dir, "work"), ovlOpts)
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		t.Fatalf("mount overlay %s: %v", opts, err)
	}
	script := applyScript(t, r, merged, 5+r.IntN(25))
	snap := snapshot(t, merged)
	if err := unix.Unmount(merged, 0); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("seed %d script:\n  %s", seed, strings.Join(script, "\n  "))
		}
	}()

	upper, err := ReadDir(filepath.Join(dir, "upper"))
	if err != nil {
		t.Fatal(err)
	}

	// (1) Diff from the upper equals an independent diff of lower vs merged.
	got, err := Diff(lower, upper)
	if err != nil {
		t.Fatal(err)
	}
	want := oracleDiff(t, lower, snap)
	if !slices.Equal(got, want) {
		t.Fatalf("Diff:\n%s\nwant (lower vs merged view):\n%s", fmtChanges(got), fmtChanges(want))
	}
	for _, c := range got {
		stats[c.Kind.String()]++
	}

	// (2) The committed layer, stacked read-only by the kernel on the lower.
	committed, err := Commit(lower, upper)
	if err != nil {
		t.Fatal(err)
	}
	layerImg := filepath.Join(dir, "layer.sqfs")
	writeSquashfs(t, layerImg, committed)
	mountSquashfs(t, layerImg, filepath.Join(dir, "layer"))
	defer unix.Unmount(filepath.Join(dir, "layer"), 0)
	stack := filepath.Join(dir, "stack")
	if err := unix.Mount("overlay", stack, "overlay", unix.MS_RDONLY, fmt.Sprintf("lowerdir=%s:%s,%s", filepath.Join(dir, "layer"), filepath.Join(dir, "lower"), ovlOpts)); err != nil {
		t.Fatal(err)
	}
	stacked := snapshot(t, stack)
	unix.Unmount(stack, 0)
	if d := Compare(snap, stacked, true); len(d) > 0 {
		t.Fatalf("lower + committed layer (kernel) differs from the merged view:\n  %s", strings.Join(d, "\n  "))
	}

	// (3) Flatten.
	flat, err := Flatten(lower, upper)
	if err != nil {
		t.Fatal(err)
	}
	if d := Compare(snap, flat, true); len(d) > 0 {
		t.Fatalf("Flatten differs from the merged view:\n  %s", strings.Join(d, "\n  "))
	}

	// (4) OCI: lower as a base layer, our export on top, applied by
	// go-containerregistry.
	var base, diff bytes.Buffer
	// The base without hard links: mutate.Extract flattens all layers into
	// one tar, where a lower hard link would resolve to an upper file that
	// replaced its target (applied layer by layer it would not).
	if err := WriteTar(&base, unlinked(lower)); err != nil {
		t.Fatal(err)
	}
	if err := WriteOCI(&diff, lower, upper); err != nil {
		t.Fatal(err)
	}
	var again bytes.Buffer
	if err := WriteOCI(&again, lower, upper); err != nil || !bytes.Equal(again.Bytes(), diff.Bytes()) {
		t.Fatalf("OCI export is not deterministic (err %v)", err)
	}
	extracted := extractOCI(t, base.Bytes(), diff.Bytes())
	// tar has no root entry: take the merged root's metadata.
	extracted.Root.Perm, extracted.Root.UID, extracted.Root.GID, extracted.Root.MTime = snap.Root.Perm, snap.Root.UID, snap.Root.GID, snap.Root.MTime
	if d := Compare(snap, extracted, true); len(d) > 0 {
		t.Fatalf("OCI layer applied by mutate.Extract differs from the merged view:\n  %s", strings.Join(d, "\n  "))
	}
}

func writeSquashfs(t *testing.T, path string, tree *rootfs.Tree) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := squashfs.Write(f, tree, squashfs.Options{}); err != nil {
		t.Fatal(err)
	}
}

func mountSquashfs(t *testing.T, img, dir string) {
	t.Helper()
	if out, err := exec.Command("mount", "-t", "squashfs", "-o", "loop,ro", img, dir).CombinedOutput(); err != nil {
		t.Fatalf("mount %s: %v\n%s", img, err, out)
	}
}

func extractOCI(t *testing.T, layers ...[]byte) *rootfs.Tree {
	t.Helper()
	img := empty.Image
	for _, b := range layers {
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	tree, err := ReadTar(rc)
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// snapshot reads a mounted view with every file's content in memory.
func snapshot(t *testing.T, dir string) *rootfs.Tree {
	t.Helper()
	tree := rootfs.New(0)
	if err := tree.AddHostDir(dir, "/", rootfs.HostDirOptions{}); err != nil {
		t.Fatal(err)
	}
	seen := map[*rootfs.Node]bool{}
	err := tree.Walk(func(p string, n *rootfs.Node) error {
		if n.Type != rootfs.Regular || seen[n] {
			return nil
		}
		seen[n] = true
		b, err := os.ReadFile(filepath.Join(dir, p))
		n.Content = rootfs.Bytes(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// oracleDiff is docker diff computed from two plain trees: the lower and
// the merged view. Written independently of Diff, which reads the upper.
func oracleDiff(t *testing.T, lower, merged *rootfs.Tree) []Change {
	var out []Change
	var all func(p string, n *rootfs.Node)
	all = func(p string, n *rootfs.Node) {
		for _, e := range n.Children() {
			out = append(out, Change{Added, p + "/" + e.Name})
			if e.Node.Type == rootfs.Dir {
				all(p+"/"+e.Name, e.Node)
			}
		}
	}
	var cmp func(p string, l, m *rootfs.Node) bool
	cmp = func(p string, l, m *rootfs.Node) bool {
		n := len(out)
		names := map[string]bool{}
		for _, e := range l.Children() {
			names[e.Name] = true
		}
		for _, e := range m.Children() {
			names[e.Name] = true
		}
		for name := range names {
			cp := p + "/" + name
			lc, mc := l.Child(name), m.Child(name)
			switch {
			case mc == nil:
				out = append(out, Change{Deleted, cp})
			case lc == nil:
				out = append(out, Change{Added, cp})
				if mc.Type == rootfs.Dir {
					all(cp, mc)
				}
			case lc.Type == rootfs.Dir && mc.Type == rootfs.Dir:
				if cmp(cp, lc, mc) || lc.Perm != mc.Perm || lc.UID != mc.UID || lc.GID != mc.GID || lc.MTime != mc.MTime {
					out = append(out, Change{Changed, cp})
				}
			case mc.Type == rootfs.Dir:
				out = append(out, Change{Changed, cp})
				all(cp, mc)
			default:
				if d := nodeDiff(lc, mc, true); d != "" {
					out = append(out, Change{Changed, cp})
				}
			}
		}
		return len(out) > n
	}
	cmp("", lower.Root, merged.Root)
	slices.SortFunc(out, func(a, b Change) int { return strings.Compare(a.Path, b.Path) })
	if out == nil {
		out = []Change{}
	}
	return out
}

func fmtChanges(cs []Change) string {
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "  %s\n", c)
	}
	return b.String()
}

// randomLower builds a tree of dirs, files (some hard-linked), symlinks,
// FIFOs and device nodes with various owners and modes. No relative
// symlink climbs out of the root: mutate.Extract drops such links.
func randomLower(r *rand.Rand) *rootfs.Tree {
	const mtime = 1700000000
	t := rootfs.New(mtime)
	dirs := []string{""}
	var files []*rootfs.Node
	for i := 0; i < 10+r.IntN(40); i++ {
		parent := dirs[r.IntN(len(dirs))]
		p := parent + "/" + fmt.Sprintf("%c%d", 'a'+rune(r.IntN(6)), i)
		uid, gid := uint32(r.IntN(3)*1000), uint32(r.IntN(3)*1000)
		switch k := r.IntN(10); {
		case k < 3:
			d := rootfs.NewDir([]uint32{0o755, 0o700, 0o1777, 0o750}[r.IntN(4)], mtime+int64(r.IntN(100)))
			d.UID, d.GID = uid, gid
			t.Add(p, d)
			dirs = append(dirs, p)
		case k < 7:
			n := &rootfs.Node{Type: rootfs.Regular, Perm: []uint32{0o644, 0o600, 0o755, 0o4755}[r.IntN(4)], UID: uid, GID: gid, MTime: mtime, Content: rootfs.Bytes(randBytes(r))}
			t.Add(p, n)
			files = append(files, n)
		case k == 7 && len(files) > 0:
			t.Add(p, files[r.IntN(len(files))])
		case k == 7 || k == 8:
			t.Add(p, &rootfs.Node{Type: rootfs.Symlink, Perm: 0o777, UID: uid, GID: gid, MTime: mtime, Target: []string{"x/../y", "/etc/passwd", "a0", "nowhere"}[r.IntN(4)]})
		default:
			if r.IntN(2) == 0 {
				t.Add(p, &rootfs.Node{Type: rootfs.FIFO, Perm: 0o644, MTime: mtime})
			} else {
				t.Add(p, &rootfs.Node{Type: rootfs.CharDev, Perm: 0o666, MTime: mtime, Major: 1, Minor: 3})
			}
		}
	}
	return t
}

func randBytes(r *rand.Rand) []byte {
	n := []int{0, 1, 100, 5000, 140000}[r.IntN(5)]
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + r.IntN(4))
	}
	return b
}

// applyScript runs n random operations on the mounted merged view and
// returns them as text (for a failure message).
func applyScript(t *testing.T, r *rand.Rand, root string, n int) []string {
	var log []string
	for i := 0; len(log) < n && i < 10*n; i++ {
		var dirs, regs, all []string
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || p == root {
				return nil
			}
			all = append(all, p)
			if d.IsDir() {
				dirs = append(dirs, p)
			} else if d.Type().IsRegular() {
				regs = append(regs, p)
			}
			return nil
		})
		dirs = append(dirs, root)
		pick := func(s []string) string {
			if len(s) == 0 {
				return ""
			}
			return s[r.IntN(len(s))]
		}
		newName := func() string { return filepath.Join(pick(dirs), fmt.Sprintf("%c%d", 'a'+rune(r.IntN(6)), 100+i)) }
		rel := func(p string) string { return "/" + strings.TrimPrefix(strings.TrimPrefix(p, root), "/") }
		var op string
		var err error
		switch r.IntN(13) {
		case 0:
			p := newName()
			op, err = "create "+rel(p), os.WriteFile(p, randBytes(r), 0o644)
		case 1, 2:
			p := pick(regs)
			if p == "" {
				continue
			}
			op = "modify " + rel(p)
			if r.IntN(2) == 0 {
				err = os.WriteFile(p, randBytes(r), 0o644)
			} else {
				var f *os.File
				if f, err = os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0); err == nil {
					_, err = f.Write([]byte("more"))
					f.Close()
				}
			}
		case 3:
			p := pick(all)
			if p == "" {
				continue
			}
			if st, e := os.Lstat(p); e == nil && st.Mode()&os.ModeSymlink != 0 {
				continue
			}
			m := []os.FileMode{0o600, 0o755, 0o711, 0o644}[r.IntN(4)]
			op, err = fmt.Sprintf("chmod %o %s", m, rel(p)), os.Chmod(p, m)
		case 4:
			p := pick(all)
			if p == "" {
				continue
			}
			uid, gid := r.IntN(3)*1000, r.IntN(3)*1000
			op, err = fmt.Sprintf("chown %d:%d %s", uid, gid, rel(p)), os.Lchown(p, uid, gid)
		case 5, 6:
			p := pick(all)
			if p == "" {
				continue
			}
			op, err = "rm -rf "+rel(p), os.RemoveAll(p)
		case 7:
			p := pick(dirs[:len(dirs)-1])
			if p == "" {
				continue
			}
			op = "replace dir " + rel(p)
			if err = os.RemoveAll(p); err == nil {
				if r.IntN(2) == 0 {
					if err = os.Mkdir(p, 0o755); err == nil {
						err = os.WriteFile(filepath.Join(p, "new"), []byte("new"), 0o644)
					}
				} else {
					err = os.WriteFile(p, []byte("was a dir"), 0o644)
				}
			}
		case 8:
			src, dst := pick(all), newName()
			if src == "" || strings.HasPrefix(dst+"/", src+"/") {
				continue
			}
			op = "mv " + rel(src) + " " + rel(dst)
			if err = os.Rename(src, dst); errors.Is(err, syscall.EXDEV) {
				op += " (EXDEV: copy + rm -rf, like mv)"
				if err = copyAll(src, dst); err == nil {
					err = os.RemoveAll(src)
				}
			}
		case 9:
			p := newName()
			tgt := []string{"x/../y", "/etc/passwd", "a0", "nowhere"}[r.IntN(4)]
			op, err = "ln -s "+tgt+" "+rel(p), os.Symlink(tgt, p)
		case 10:
			src, dst := pick(regs), newName()
			if src == "" {
				continue
			}
			op, err = "ln "+rel(src)+" "+rel(dst), os.Link(src, dst)
		case 11:
			p := newName()
			op, err = "mkfifo "+rel(p), unix.Mkfifo(p, 0o640)
		case 12:
			p := newName()
			op, err = "mkdir "+rel(p), os.Mkdir(p, 0o750)
		}
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v (after %v)", op, err, log)
		}
		log = append(log, op)
	}
	return log
}

// copyAll copies a tree like mv across filesystems: modes, owners, times.
func copyAll(src, dst string) error {
	st, err := os.Lstat(src)
	if err != nil {
		return err
	}
	sys := st.Sys().(*syscall.Stat_t)
	switch {
	case st.IsDir():
		if err := os.Mkdir(dst, 0o700); err != nil {
			return err
		}
		ents, err := os.ReadDir(src)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if err := copyAll(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
				return err
			}
		}
	case st.Mode().IsRegular():
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			return err
		}
	case st.Mode()&os.ModeSymlink != 0:
		tgt, err := os.Readlink(src)
		if err != nil {
			return err
		}
		return errors.Join(os.Symlink(tgt, dst), os.Lchown(dst, int(sys.Uid), int(sys.Gid)))
	default:
		if err := unix.Mknod(dst, uint32(sys.Mode), int(sys.Rdev)); err != nil {
			return err
		}
	}
	if err := os.Lchown(dst, int(sys.Uid), int(sys.Gid)); err != nil {
		return err
	}
	if err := os.Chmod(dst, st.Mode()&(os.ModePerm|os.ModeSetuid|os.ModeSetgid|os.ModeSticky)); err != nil {
		return err
	}
	return os.Chtimes(dst, time.Now(), st.ModTime())
}

// unlinked copies a tree with every hard link broken into separate nodes.
func unlinked(t *rootfs.Tree) *rootfs.Tree {
	out := rootfs.New(t.MTime)
	t.Walk(func(p string, n *rootfs.Node) error {
		if n.Type == rootfs.Dir {
			d := rootfs.NewDir(n.Perm, n.MTime)
			d.UID, d.GID = n.UID, n.GID
			return out.Add(p, d)
		}
		c := *n
		return out.Add(p, &c)
	})
	return out
}
