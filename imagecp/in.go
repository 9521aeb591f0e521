package imagecp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rfsbuild/rfs/atomicfile"
	"github.com/rfsbuild/rfs/datapart"
	"github.com/rfsbuild/rfs/ext4fs"
	"github.com/rfsbuild/rfs/ext4fs/ext4sb"
	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/layer"
	"github.com/rfsbuild/rfs/quote"
	"github.com/rfsbuild/rfs/reset"
	"github.com/rfsbuild/rfs/rootfs"
)

// In copies src (a host file, directory or symlink) into the upper layer
// of the image (or card) at imgPath, at guestPath of the device's view,
// like docker cp into a stopped container: guestPath missing is the
// copy's name (its parent must exist in the device's view); an existing
// directory receives the copy under src's base name; an existing file or
// symlink is replaced by a file. Modes, mtimes and symlinks are kept;
// owners are root's, or src's with Archive. Parent directories that only
// the lower has are copied up first (their mode, owner and mtime), as
// overlayfs would; a whiteout at the copy's path is replaced (a directory
// that replaces a whiteout over a lower directory is opaque, so the lower's
// entries stay hidden); an opaque directory stays opaque. The image must
// not be mounted or held by a QEMU. A journal that needs recovery is
// replayed with e2fsck -p first (Log says so): cp writes the partition.
func In(ctx context.Context, src, imgPath, guestPath string, o Options) (*Result, error) {
	src, err := filepath.Abs(src)
	if err != nil {
		return nil, err
	}
	fi, err := os.Lstat(src)
	if err != nil {
		return nil, err
	}
	t, err := reset.Inspect(imgPath)
	if err != nil {
		return nil, err
	}
	spec := fsSpec(imgPath, t.Data.Start)
	if err := prepareData(ctx, t, o.Log); err != nil {
		return nil, err
	}
	img, err := image.OpenImage(imgPath)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	v, err := ReadView(img)
	if err != nil {
		return nil, err
	}
	g, err := v.inTarget(src, fi, guestPath)
	if err != nil {
		return nil, fmt.Errorf("%s:%s: %w", imgPath, guestPath, err)
	}
	pl := &inPlan{v: v, o: o}
	if err := pl.upperDir(img); err != nil {
		return nil, err
	}
	pl.copyUp(path.Dir(g))
	if err := pl.entry(src, fi, g); err != nil {
		return nil, err
	}
	if err := runDebugfs(ctx, spec, &pl.s); err != nil {
		return nil, err
	}
	return &Result{Path: g, Entries: pl.entries, Bytes: pl.bytes}, nil
}

// prepareData replays a journal that needs recovery (e2fsck -p).
func prepareData(ctx context.Context, t *reset.Target, log io.Writer) error {
	imgPath := t.Path
	img, err := image.OpenImage(imgPath)
	if err != nil {
		return err
	}
	data, _ := img.Data()
	sb, err := ext4sb.Read(img.Section(data.Placed), 0)
	img.Close()
	if err != nil {
		return fmt.Errorf("%s: data partition: %w", imgPath, err)
	}
	if !sb.NeedsRecovery() {
		return nil
	}
	if log != nil {
		fmt.Fprintf(log, "rfs: the data partition's journal needs recovery (the device was not shut down cleanly): replaying it with e2fsck -p, as a mount would, before writing\n")
	}
	return recoverJournal(ctx, t)
}

// inTarget is the path in the device where a copy of src goes for
// guestPath (docker cp's rules), with the checks that need the view.
func (v *View) inTarget(src string, fi fs.FileInfo, guestPath string) (string, error) {
	if !strings.HasPrefix(guestPath, "/") {
		return "", errors.New("the path in the image must be absolute")
	}
	if err := v.checkPath(path.Clean(guestPath)); err != nil {
		return "", err
	}
	p, n, err := Resolve(v.Merged, guestPath, false)
	if err != nil {
		return "", err
	}
	if n != nil && n.Type == rootfs.Symlink {
		// A symlink to a directory receives the copy, as cp and docker
		// cp do; any other symlink is replaced.
		if p2, n2, err := Resolve(v.Merged, guestPath, true); err == nil && n2 != nil && n2.Type == rootfs.Dir {
			p, n = p2, n2
		}
	}
	g := p
	switch {
	case n == nil && strings.HasSuffix(guestPath, "/"):
		return "", fmt.Errorf("no directory %s in the device's view", quote.Name(p))
	case n != nil && n.Type == rootfs.Dir:
		if filepath.Base(src) == string(filepath.Separator) {
			return "", errors.New("cannot copy the host's root directory")
		}
		g = path.Join(p, filepath.Base(src))
	case n != nil && fi.IsDir():
		return "", fmt.Errorf("%s is a %s in the device's view: cannot copy the directory %s onto it", quote.Name(p), n.Type, src)
	}
	return g, v.checkPath(g)
}

// inPlan builds the debugfs script of a copy into the upper.
type inPlan struct {
	v       *View
	o       Options
	s       script
	entries int
	bytes   int64
}

// upperDir makes upper/ on a data partition that never booted.
func (pl *inPlan) upperDir(img *image.Image) error {
	data, _ := img.Data()
	efs, err := ext4fs.Open(img.Section(data.Placed), data.Size)
	if err != nil {
		return fmt.Errorf("%s: data partition: %w", img.Path, err)
	}
	if _, err := efs.Lookup(datapart.Upper); errors.Is(err, ext4fs.ErrNotExist) {
		pl.s.add("mkdir", q("/"+datapart.Upper))
		pl.s.setAttrs("/"+datapart.Upper, 0o40755, 0, 0, pl.v.Lower.Root.MTime)
	} else if err != nil {
		return fmt.Errorf("%s: data partition: %w", img.Path, err)
	}
	return nil
}

// upperPath is where the device's path g lives on the data partition.
func upperPath(g string) string { return path.Join("/"+datapart.Upper, g) }

// lookupExact returns the node at the resolved path g of t, following
// nothing (nil if missing).
func lookupExact(t *rootfs.Tree, g string) *rootfs.Node {
	n := t.Root
	for _, c := range strings.Split(strings.Trim(g, "/"), "/") {
		if c == "" {
			continue
		}
		if n == nil || n.Type != rootfs.Dir {
			return nil
		}
		n = n.Child(c)
	}
	return n
}

// copyUp makes the directories of dir (a resolved path in the merged
// view) that the upper lacks, with the lower's mode, owner and mtime.
func (pl *inPlan) copyUp(dir string) {
	cur := "/"
	for _, c := range strings.Split(strings.Trim(dir, "/"), "/") {
		if c == "" {
			continue
		}
		cur = path.Join(cur, c)
		if lookupExact(pl.v.Upper, cur) != nil {
			continue
		}
		m := lookupExact(pl.v.Merged, cur)
		pl.s.add("mkdir", q(upperPath(cur)))
		pl.s.setAttrs(upperPath(cur), 0o40000|m.Perm, m.UID, m.GID, m.MTime)
		if pl.o.Log != nil {
			fmt.Fprintf(pl.o.Log, "rfs: copied up %s from the lower\n", quote.Name(cur))
		}
	}
}

// entry adds the copy of src (described by fi) to the device's path g.
func (pl *inPlan) entry(src string, fi fs.FileInfo, g string) error {
	if err := checkName(g); err != nil {
		return err
	}
	if err := checkName(src); err != nil {
		return err
	}
	m, u := lookupExact(pl.v.Merged, g), lookupExact(pl.v.Upper, g)
	isDir := fi.IsDir()
	if m != nil && (m.Type == rootfs.Dir) != isDir {
		return fmt.Errorf("%s is a %s in the device's view: cannot replace it with %s (a %s)", quote.Name(g), m.Type, src, atomicfile.Kind(fi.Mode()))
	}
	up, parent, name := upperPath(g), upperPath(path.Dir(g)), path.Base(g)
	opaque := false
	if u != nil && u.Type != rootfs.Dir {
		// A whiteout or a file of the upper: the copy replaces it.
		pl.s.add("rm", q(up))
		l := lookupExact(pl.v.Lower, g)
		opaque = layer.IsWhiteout(u) && l != nil && l.Type == rootfs.Dir
		if layer.IsWhiteout(u) && pl.o.Log != nil {
			fmt.Fprintf(pl.o.Log, "rfs: %s was deleted on the device (a whiteout): the copy replaces it\n", quote.Name(g))
		}
		u = nil
	}
	uid, gid := uint32(0), uint32(0)
	if pl.o.Archive {
		uid, gid = owner(fi)
	}
	mtime, perm := fi.ModTime().Unix(), hostPerm(fi.Mode())
	pl.entries++
	switch {
	case isDir:
		if u == nil {
			pl.s.add("cd", q(parent))
			pl.s.add("mkdir", q(name))
		}
		if opaque {
			// rfs's mke2fs leaves ext_attr off; the kernel turns it on
			// with the first xattr it writes, and so does this.
			pl.s.add("feature", "ext_attr")
			pl.s.add("ea_set", q(up), layer.OpaqueXattr, "y")
		}
		if err := pl.children(src, g); err != nil {
			return err
		}
		pl.s.setAttrs(up, 0o40000|perm, uid, gid, mtime)
		return nil
	case fi.Mode().IsRegular():
		pl.s.add("cd", q(parent))
		pl.s.add("write", q(src), q(name))
		pl.s.setAttrs(up, 0o100000|perm, uid, gid, mtime)
		pl.bytes += fi.Size()
		return nil
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := checkName(target); err != nil {
			return err
		}
		pl.s.add("cd", q(parent))
		pl.s.add("symlink", q(name), q(target))
		pl.s.setAttrs(up, 0o120777, uid, gid, mtime)
		return nil
	}
	return pl.special(src, fi, up, parent, name, perm, uid, gid, mtime)
}

// children adds the entries of the host directory src below g.
func (pl *inPlan) children(src, g string) error {
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			return err
		}
		if err := pl.entry(filepath.Join(src, e.Name()), fi, path.Join(g, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// special adds a fifo or device node.
func (pl *inPlan) special(src string, fi fs.FileInfo, up, parent, name string, perm, uid, gid uint32, mtime int64) error {
	var typ, kind uint32
	args := []string{"mknod", q(name)}
	switch {
	case fi.Mode()&fs.ModeNamedPipe != 0:
		typ, kind = 0o10000, 'p'
		args = append(args, "p")
	case fi.Mode()&fs.ModeDevice != 0:
		major, minor := rdev(fi)
		if fi.Mode()&fs.ModeCharDevice != 0 && major == 0 && minor == 0 {
			return fmt.Errorf("%s: a character device 0/0 is an overlayfs whiteout: it would delete the path on the device, not copy anything", src)
		}
		typ, kind = 0o60000, 'b'
		if fi.Mode()&fs.ModeCharDevice != 0 {
			typ, kind = 0o20000, 'c'
		}
		args = append(args, string(rune(kind)), strconv.FormatUint(uint64(major), 10), strconv.FormatUint(uint64(minor), 10))
	default:
		return fmt.Errorf("%s: cannot copy a %s into an image", src, atomicfile.Kind(fi.Mode()))
	}
	pl.s.add("cd", q(parent))
	pl.s.add(args...)
	pl.s.setAttrs(up, typ|perm, uid, gid, mtime)
	return nil
}

// hostPerm is the permission bits (07777) of a host file mode.
func hostPerm(m fs.FileMode) uint32 {
	p := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		p |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		p |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		p |= 0o1000
	}
	return p
}
