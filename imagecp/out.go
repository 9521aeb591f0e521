package imagecp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/quote"
	"github.com/rfsbuild/rfs/rootfs"
)

// Options are rfs cp's choices.
type Options struct {
	// Archive keeps owners (uid/gid) as docker cp -a does: into an image,
	// the source's; out of one, the image's (only as root). Without it,
	// files copied in are root's and files copied out the caller's.
	Archive bool
	// Log gets one line per notable event (copy-up, replaced whiteout,
	// journal recovery); nil: none.
	Log io.Writer
}

// Result says what a copy did.
type Result struct {
	Path    string // where the copy went (the host path, or the path in the device)
	Entries int    // files, directories, links and nodes written
	Bytes   int64  // file content written
}

// Out copies guestPath of the device's merged view in the image (or card)
// at imgPath to dest on the host, like docker cp: dest missing is the
// copy's name (its parent must exist); an existing directory receives the
// copy under guestPath's base name; an existing file is replaced by a
// file. Directories are copied recursively; symlinks stay symlinks (never
// followed, except in guestPath's parent directories, inside the image);
// modes and modification times are kept, owners with Archive as root.
func Out(ctx context.Context, imgPath, guestPath, dest string, o Options) (*Result, error) {
	img, err := image.OpenImage(imgPath)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	v, err := ReadView(img)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(guestPath, "/") {
		return nil, fmt.Errorf("%s:%s: the path in the image must be absolute", imgPath, guestPath)
	}
	if err := v.checkVolumes(path.Clean(guestPath)); err != nil {
		return nil, err
	}
	p, n, err := Resolve(v.Merged, guestPath, false)
	if err == nil && n == nil {
		err = notExistError{p}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", imgPath, err)
	}
	if err := v.checkVolumes(p); err != nil {
		return nil, err
	}
	target, err := outTarget(dest, p, n)
	if err != nil {
		return nil, err
	}
	w := &outWriter{ctx: ctx, o: o, links: map[*rootfs.Node]string{}, root: os.Geteuid() == 0}
	if err := w.write(target, n); err != nil {
		return nil, err
	}
	return &Result{Path: target, Entries: w.entries, Bytes: w.bytes}, nil
}

// outTarget is where a copy of node n (at p in the device) goes for dest.
func outTarget(dest, p string, n *rootfs.Node) (string, error) {
	st, err := os.Stat(dest)
	switch {
	case errors.Is(err, os.ErrNotExist):
		parent := filepath.Dir(dest)
		if pst, err := os.Stat(parent); err != nil || !pst.IsDir() {
			return "", fmt.Errorf("%s: its directory %s does not exist", dest, parent)
		}
		return dest, nil
	case err != nil:
		return "", err
	case st.IsDir():
		if p == "/" {
			return dest, nil
		}
		return filepath.Join(dest, path.Base(p)), nil
	case n.Type == rootfs.Dir:
		return "", fmt.Errorf("%s is a file: cannot copy the directory %s onto it", dest, quote.Name(p))
	}
	return dest, nil
}

// outWriter writes nodes to the host.
type outWriter struct {
	ctx     context.Context
	o       Options
	root    bool                    // running as root: owners and device nodes can be set
	links   map[*rootfs.Node]string // regular files written, for hard links
	entries int
	bytes   int64
}

// write puts n at dst (recursively for a directory), replacing a
// non-directory there.
func (w *outWriter) write(dst string, n *rootfs.Node) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	if n.Type != rootfs.Dir {
		if st, err := os.Lstat(dst); err == nil {
			if st.IsDir() {
				return fmt.Errorf("%s is a directory: cannot replace it with a %s", dst, n.Type)
			}
			if err := os.Remove(dst); err != nil {
				return err
			}
		}
	}
	var err error
	switch n.Type {
	case rootfs.Dir:
		err = w.dir(dst, n)
	case rootfs.Regular:
		err = w.file(dst, n)
	case rootfs.Symlink:
		err = os.Symlink(n.Target, dst)
	default:
		err = makeNode(dst, n, w.root)
	}
	if err != nil {
		return err
	}
	w.entries++
	return w.attrs(dst, n)
}

// dir makes (or reuses) the directory dst and writes n's children in it.
func (w *outWriter) dir(dst string, n *rootfs.Node) error {
	if err := os.Mkdir(dst, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	if st, err := os.Lstat(dst); err != nil || !st.IsDir() {
		return fmt.Errorf("%s exists and is not a directory: cannot copy a directory onto it", dst)
	}
	for _, e := range n.Children() {
		if err := w.write(filepath.Join(dst, e.Name), e.Node); err != nil {
			return err
		}
	}
	return nil
}

// file writes a regular file (a hard link to an earlier copy of the same
// inode).
func (w *outWriter) file(dst string, n *rootfs.Node) error {
	if first, ok := w.links[n]; ok {
		return os.Link(first, dst)
	}
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if n.Content != nil {
		r, err := n.Content.Open()
		if err != nil {
			f.Close()
			return err
		}
		c, err := io.Copy(f, io.LimitReader(r, n.Content.Size()))
		r.Close()
		w.bytes += c
		if err != nil {
			f.Close()
			return fmt.Errorf("%s: %w", dst, err)
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	w.links[n] = dst
	return nil
}

// attrs sets mode, owner (Archive, as root) and mtime of dst.
func (w *outWriter) attrs(dst string, n *rootfs.Node) error {
	if w.o.Archive && w.root {
		if err := os.Lchown(dst, int(n.UID), int(n.GID)); err != nil {
			return err
		}
	}
	if n.Type == rootfs.Symlink {
		return nil
	}
	if err := os.Chmod(dst, fileMode(n.Perm)); err != nil {
		return err
	}
	t := time.Unix(n.MTime, 0)
	return os.Chtimes(dst, t, t)
}

// fileMode turns permission bits (07777) into an os.FileMode.
func fileMode(perm uint32) os.FileMode {
	m := os.FileMode(perm & 0o777)
	if perm&0o4000 != 0 {
		m |= os.ModeSetuid
	}
	if perm&0o2000 != 0 {
		m |= os.ModeSetgid
	}
	if perm&0o1000 != 0 {
		m |= os.ModeSticky
	}
	return m
}
