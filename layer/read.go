package layer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"

	"github.com/rfsbuild/rfs/ext4fs"
	"github.com/rfsbuild/rfs/hostos"
	"github.com/rfsbuild/rfs/rootfs"
)

// ReadDir reads a host directory (an unmounted upper, or a lower) into a
// tree: owners, modes, times, device numbers and hard links as on the
// host, plus the overlay opaque marker of directories (read with
// lgetxattr). trusted.* xattrs are invisible without CAP_SYS_ADMIN, so
// an opaque marker would be silently missed: ReadDir needs root, and
// Linux (other hosts refuse with hostos.NeedsLinuxError).
func ReadDir(dir string) (*rootfs.Tree, error) {
	return ReadDirContext(context.Background(), dir)
}

// ReadDirContext is ReadDir that stops once ctx is done.
func ReadDirContext(ctx context.Context, dir string) (*rootfs.Tree, error) {
	if err := canReadUpperDir(dir); err != nil {
		return nil, err
	}
	t := rootfs.New(0)
	if err := t.AddHostDirContext(ctx, dir, "/", rootfs.HostDirOptions{}); err != nil {
		return nil, err
	}
	err := t.Walk(func(p string, n *rootfs.Node) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if n.Type != rootfs.Dir {
			return nil
		}
		hp := filepath.Join(dir, filepath.FromSlash(p))
		for _, name := range []string{OpaqueXattr, UserOpaqueXattr} {
			v, err := rootfs.HostXattr(hp, name)
			if err != nil {
				return fmt.Errorf("%s: xattr %s: %w", hp, name, err)
			}
			if v != nil {
				if n.Xattrs == nil {
					n.Xattrs = map[string][]byte{}
				}
				n.Xattrs[name] = v
			}
		}
		return nil
	})
	return t, err
}

// upperDirNeedsLinux is ReadDir's refusal on hosts other than Linux.
func upperDirNeedsLinux(dir string) error {
	return hostos.NeedsLinux("reading the upper directory "+dir,
		"its whiteouts are character devices 0/0 and its opaque markers trusted.overlay.* xattrs, which other hosts do not keep; give the image instead: its ext4 upper is read without Linux")
}

// ErrNoDir is returned by ReadExt4 when the directory is not there: for
// an image's upper, the device has not booted yet (the init makes it).
var ErrNoDir = errors.New("no such directory")

// maxDepth bounds directory nesting (PATH_MAX allows about 2048 levels).
const maxDepth = 4096

// ReadExt4 reads the directory sub (e.g. "upper") of the ext4 filesystem
// at [start, start+size) of f into a tree, without mounting it and without
// root, with our own reader (ext4fs: go-diskfs's panicked, looped and
// exhausted memory on hostile filesystems): owners, modes, times, device
// numbers (so whiteouts, char 0/0) and the opaque xattrs; hard links are
// recognised by inode number, and a directory reached twice (hard-linked
// into its own subtree, say) is an error. File contents are read from f
// when opened.
func ReadExt4(f io.ReaderAt, start, size int64, sub string) (*rootfs.Tree, error) {
	efs, err := ext4fs.Open(io.NewSectionReader(f, start, size), size)
	if err != nil {
		return nil, fmt.Errorf("ext4: %w", err)
	}
	root := path.Clean("/" + sub)[1:]
	in, err := efs.Lookup(root)
	if errors.Is(err, ext4fs.ErrNotExist) {
		return nil, fmt.Errorf("ext4 %s: %w", root, ErrNoDir)
	}
	if err != nil {
		return nil, fmt.Errorf("ext4 %s: %w", root, err)
	}
	if in.Type() != ext4fs.TypeDir {
		return nil, fmt.Errorf("ext4 %s: not a directory", root)
	}
	t := rootfs.New(0)
	r := &ext4Reader{fs: efs, t: t, inodes: map[uint32]*rootfs.Node{}, dirs: map[uint32]string{in.Ino: root}}
	n, err := r.node(root, in)
	if err != nil {
		return nil, err
	}
	if err := t.Add("/", n); err != nil {
		return nil, err
	}
	return t, r.dir(root, "", in, 0)
}

type ext4Reader struct {
	fs     *ext4fs.FS
	t      *rootfs.Tree
	inodes map[uint32]*rootfs.Node // regular files by inode: hard links
	dirs   map[uint32]string       // directories seen, by inode: cycles
}

func (r *ext4Reader) dir(src, dst string, in *ext4fs.Inode, depth int) error {
	if depth >= maxDepth {
		return fmt.Errorf("ext4 %.100s...: directories nested deeper than %d", src, maxDepth)
	}
	entries, err := r.fs.ReadDir(in)
	if err != nil {
		return fmt.Errorf("ext4 %s: %w", src, err)
	}
	for _, e := range entries {
		sp, dp := src+"/"+e.Name, dst+"/"+e.Name
		if n := r.inodes[e.Ino]; n != nil {
			if err := r.t.Add(dp, n); err != nil {
				return fmt.Errorf("ext4 %s: %w", sp, err)
			}
			continue
		}
		if prev, ok := r.dirs[e.Ino]; ok {
			return fmt.Errorf("ext4 %s: the directory %s again (a hard-linked directory: a cycle)", sp, prev)
		}
		ci, err := r.fs.Inode(e.Ino)
		if err != nil {
			return fmt.Errorf("ext4 %s: %w", sp, err)
		}
		n, err := r.node(sp, ci)
		if err != nil {
			return err
		}
		if err := r.t.Add(dp, n); err != nil {
			return fmt.Errorf("ext4 %s: %w", sp, err)
		}
		switch ci.Type() {
		case ext4fs.TypeRegular:
			// Hard links, as ReadDir sees them: regular files only (the
			// kernel's overlayfs links its whiteouts to one shared inode;
			// they stay separate nodes).
			r.inodes[e.Ino] = n
			continue
		case ext4fs.TypeDir:
		default:
			continue
		}
		r.dirs[e.Ino] = sp
		if err := r.dir(sp, dp, ci, depth+1); err != nil {
			return err
		}
	}
	return nil
}

func (r *ext4Reader) node(p string, in *ext4fs.Inode) (*rootfs.Node, error) {
	n := &rootfs.Node{Perm: in.Perm(), UID: in.UID, GID: in.GID, MTime: in.MTime}
	switch in.Type() {
	case ext4fs.TypeDir:
		d := rootfs.NewDir(n.Perm, n.MTime)
		d.UID, d.GID = n.UID, n.GID
		n = d
		x, err := r.fs.Xattrs(in)
		if err != nil {
			return nil, fmt.Errorf("ext4 %s: xattrs: %w", p, err)
		}
		for _, k := range []string{OpaqueXattr, UserOpaqueXattr} {
			if v, ok := x[k]; ok {
				if n.Xattrs == nil {
					n.Xattrs = map[string][]byte{}
				}
				n.Xattrs[k] = v
			}
		}
	case ext4fs.TypeRegular:
		n.Type = rootfs.Regular
		c, err := r.fs.Open(in)
		if err != nil {
			return nil, fmt.Errorf("ext4 %s: %w", p, err)
		}
		n.Content = ext4File{c}
	case ext4fs.TypeSymlink:
		n.Type = rootfs.Symlink
		t, err := r.fs.Readlink(in)
		if err != nil {
			return nil, fmt.Errorf("ext4 %s: %w", p, err)
		}
		n.Target = t
	case ext4fs.TypeFIFO:
		n.Type = rootfs.FIFO
	case ext4fs.TypeSocket:
		n.Type = rootfs.Socket
	case ext4fs.TypeChar, ext4fs.TypeBlock:
		n.Type = rootfs.BlockDev
		if in.Type() == ext4fs.TypeChar {
			n.Type = rootfs.CharDev
		}
		n.Major, n.Minor = in.Major, in.Minor
	default:
		return nil, fmt.Errorf("ext4 %s: unsupported file type %#o", p, in.Type())
	}
	return n, nil
}

// ext4File is a regular file's content, read from the partition when
// opened, piece by piece.
type ext4File struct{ f *ext4fs.File }

func (f ext4File) Size() int64 { return f.f.Size() }
func (f ext4File) Open() (io.ReadCloser, error) {
	return io.NopCloser(f.f.NewReader()), nil
}
