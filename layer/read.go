package layer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/ext4"
	"golang.org/x/sys/unix"

	"github.com/rfsbuild/rfs/rootfs"
)

// ReadDir reads a host directory (an unmounted upper, or a lower) into a
// tree: owners, modes, times, device numbers and hard links as on the
// host, plus the overlay opaque marker of directories (read with
// lgetxattr). trusted.* xattrs are invisible without CAP_SYS_ADMIN, so
// an opaque marker would be silently missed: ReadDir needs root.
func ReadDir(dir string) (*rootfs.Tree, error) {
	return ReadDirContext(context.Background(), dir)
}

// ReadDirContext is ReadDir that stops once ctx is done.
func ReadDirContext(ctx context.Context, dir string) (*rootfs.Tree, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%s: reading an upper directory needs root: its opaque markers are trusted.overlay.* xattrs, invisible to other users (an image's ext4 upper is read without root)", dir)
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
			v, err := lgetxattr(hp, name)
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

func lgetxattr(p, name string) ([]byte, error) {
	buf := make([]byte, 256)
	n, err := unix.Lgetxattr(p, name, buf)
	switch {
	case errors.Is(err, unix.ENODATA), errors.Is(err, unix.ENOTSUP):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return buf[:n], nil
}

// ErrNoDir is returned by ReadExt4 when the directory is not there: for
// an image's upper, the device has not booted yet (the init makes it).
var ErrNoDir = errors.New("no such directory")

// ReadExt4 reads the directory sub (e.g. "upper") of the ext4 filesystem
// at [start, start+size) of f into a tree, without mounting it and without
// root: go-diskfs's ext4 reader gives owners, modes, times, device numbers
// (so whiteouts, char 0/0) and xattrs (so the opaque marker); hard links
// are recognised by inode number. File contents are read from f when
// opened.
func ReadExt4(f *os.File, start, size int64, sub string) (*rootfs.Tree, error) {
	efs, err := ext4.Read(file.New(f, true), size, start, 512)
	if err != nil {
		return nil, fmt.Errorf("ext4: %w", err)
	}
	root := path.Clean(sub)
	st, err := efs.Stat(root)
	if err != nil {
		// go-diskfs's error does not say why: look in the parent.
		if missing(efs, root) {
			return nil, fmt.Errorf("ext4 %s: %w", root, ErrNoDir)
		}
		return nil, fmt.Errorf("ext4 %s: %w", root, err)
	}
	t := rootfs.New(0)
	r := &ext4Reader{fs: efs, t: t, inodes: map[uint32]*rootfs.Node{}}
	n, err := r.node(root, st)
	if err != nil {
		return nil, err
	}
	if err := t.Add("/", n); err != nil {
		return nil, err
	}
	return t, r.dir(root, "")
}

// missing says whether p is absent from its parent directory (which is
// there and readable).
func missing(efs *ext4.FileSystem, p string) bool {
	entries, err := efs.ReadDir(path.Dir(p))
	if err != nil {
		return false
	}
	for _, e := range entries {
		if e.Name() == path.Base(p) {
			return false
		}
	}
	return true
}

type ext4Reader struct {
	fs     *ext4.FileSystem
	t      *rootfs.Tree
	inodes map[uint32]*rootfs.Node
}

func (r *ext4Reader) dir(src, dst string) error {
	entries, err := r.fs.ReadDir(src)
	if err != nil {
		return fmt.Errorf("ext4 %s: %w", src, err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	for _, name := range names {
		sp, dp := path.Join(src, name), dst+"/"+name
		st, err := r.fs.Stat(sp)
		if err != nil {
			return fmt.Errorf("ext4 %s: %w", sp, err)
		}
		sys, ok := st.Sys().(*ext4.StatT)
		if !ok {
			return fmt.Errorf("ext4 %s: no inode data", sp)
		}
		if !st.IsDir() {
			if n := r.inodes[sys.Ino]; n != nil {
				if err := r.t.Add(dp, n); err != nil {
					return err
				}
				continue
			}
		}
		n, err := r.node(sp, st)
		if err != nil {
			return err
		}
		if !st.IsDir() {
			r.inodes[sys.Ino] = n
		}
		if err := r.t.Add(dp, n); err != nil {
			return err
		}
		if st.IsDir() {
			if err := r.dir(sp, dp); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *ext4Reader) node(p string, st fs.FileInfo) (*rootfs.Node, error) {
	sys, ok := st.Sys().(*ext4.StatT)
	if !ok {
		return nil, fmt.Errorf("ext4 %s: no inode data", p)
	}
	mode := st.Mode()
	n := &rootfs.Node{Perm: uint32(mode.Perm()), UID: sys.UID, GID: sys.GID, MTime: st.ModTime().Unix()}
	if mode&fs.ModeSetuid != 0 {
		n.Perm |= 0o4000
	}
	if mode&fs.ModeSetgid != 0 {
		n.Perm |= 0o2000
	}
	if mode&fs.ModeSticky != 0 {
		n.Perm |= 0o1000
	}
	switch {
	case mode.IsDir():
		d := rootfs.NewDir(n.Perm, n.MTime)
		d.UID, d.GID = n.UID, n.GID
		n = d
		x, err := r.fs.GetXattr(p)
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
	case mode.IsRegular():
		n.Type = rootfs.Regular
		n.Content = ext4File{fs: r.fs, path: p, size: st.Size()}
	case mode&fs.ModeSymlink != 0:
		n.Type = rootfs.Symlink
		n.Target = sys.LinkTarget
		if n.Target == "" {
			t, err := r.fs.ReadLink(p)
			if err != nil {
				return nil, fmt.Errorf("ext4 %s: %w", p, err)
			}
			n.Target = t
		}
	case mode&fs.ModeNamedPipe != 0:
		n.Type = rootfs.FIFO
	case mode&fs.ModeSocket != 0:
		n.Type = rootfs.Socket
	case mode&fs.ModeDevice != 0:
		n.Type = rootfs.BlockDev
		if mode&fs.ModeCharDevice != 0 {
			n.Type = rootfs.CharDev
		}
		n.Major, n.Minor = sys.Major, sys.Minor
	default:
		return nil, fmt.Errorf("ext4 %s: unsupported file type %v", p, mode.Type())
	}
	return n, nil
}

type ext4File struct {
	fs   *ext4.FileSystem
	path string
	size int64
}

func (f ext4File) Size() int64 { return f.size }
func (f ext4File) Open() (io.ReadCloser, error) {
	fh, err := f.fs.OpenFile(f.path, os.O_RDONLY)
	if err != nil {
		return nil, err
	}
	return fh, nil
}
