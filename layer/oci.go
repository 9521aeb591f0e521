package layer

import (
	"archive/tar"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/rfsbuild/rfs/rootfs"
)

// OCI whiteout names (image-spec layer.md).
const (
	WhiteoutPrefix = ".wh."
	OpaqueMarker   = ".wh..wh..opq"
)

// WriteOCI writes the changes of upper over lower as an uncompressed OCI
// image layer (a tar): added and changed entries with their content, a
// deleted entry as an empty file ".wh.NAME", an opaque directory as the
// directory plus "DIR/.wh..wh..opq". Entries are in tree order with fixed
// headers (no user or group names, no access or change times), so the same
// trees give the same bytes. The root directory itself is not written.
func WriteOCI(w io.Writer, lower, upper *rootfs.Tree) error {
	tw := newTarWriter(w)
	if err := tw.ociDir("", lower.Root, upper.Root, true); err != nil {
		return err
	}
	return tw.Close()
}

// WriteTar writes a whole tree as a plain tar (no whiteouts): the form of
// a base layer.
func WriteTar(w io.Writer, t *rootfs.Tree) error {
	tw := newTarWriter(w)
	err := t.Walk(func(p string, n *rootfs.Node) error {
		if p == "/" {
			return nil
		}
		return tw.entry(p, n)
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

type tarWriter struct {
	*tar.Writer
	links map[*rootfs.Node]string
}

func newTarWriter(w io.Writer) *tarWriter {
	return &tarWriter{Writer: tar.NewWriter(w), links: map[*rootfs.Node]string{}}
}

func (tw *tarWriter) ociDir(p string, l, u *rootfs.Node, merge bool) error {
	var ldir *rootfs.Node
	if l != nil && l.Type == rootfs.Dir {
		ldir = l
	}
	mergeKids := merge && ldir != nil && !IsOpaque(u)
	if merge && ldir != nil && !mergeKids {
		// Opaque over a lower directory. The marker hides every lower
		// entry below, so the subtree needs no other whiteouts.
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(p+"/"+OpaqueMarker, "/"), Mode: 0o644, ModTime: time.Unix(u.MTime, 0)}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
	}
	for _, e := range u.Children() {
		cp := p + "/" + e.Name
		var lc *rootfs.Node
		if ldir != nil {
			lc = ldir.Child(e.Name)
		}
		switch {
		case IsWhiteout(e.Node):
			if mergeKids && lc != nil {
				hdr := &tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(p+"/"+WhiteoutPrefix+e.Name, "/"), Mode: 0o644, ModTime: time.Unix(e.Node.MTime, 0)}
				if err := tw.WriteHeader(hdr); err != nil {
					return err
				}
			}
		case e.Node.Type == rootfs.Dir:
			if err := tw.entry(cp, e.Node); err != nil {
				return err
			}
			if err := tw.ociDir(cp, lc, e.Node, mergeKids); err != nil {
				return err
			}
		default:
			if err := tw.entry(cp, e.Node); err != nil {
				return err
			}
		}
	}
	return nil
}

// entry writes one node at the absolute path p.
func (tw *tarWriter) entry(p string, n *rootfs.Node) error {
	name := strings.TrimPrefix(p, "/")
	if strings.HasPrefix(pathBase(name), WhiteoutPrefix) {
		return fmt.Errorf("%s: a file name starting with %q cannot be stored in an OCI layer", p, WhiteoutPrefix)
	}
	hdr := &tar.Header{Name: name, Mode: int64(n.Perm), Uid: int(n.UID), Gid: int(n.GID), ModTime: time.Unix(n.MTime, 0)}
	if n.Type != rootfs.Dir {
		if first, ok := tw.links[n]; ok {
			hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
			return tw.WriteHeader(hdr)
		}
		tw.links[n] = name
	}
	switch n.Type {
	case rootfs.Dir:
		hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
	case rootfs.Regular:
		hdr.Typeflag, hdr.Size = tar.TypeReg, n.Size()
	case rootfs.Symlink:
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, n.Target
	case rootfs.CharDev:
		hdr.Typeflag, hdr.Devmajor, hdr.Devminor = tar.TypeChar, int64(n.Major), int64(n.Minor)
	case rootfs.BlockDev:
		hdr.Typeflag, hdr.Devmajor, hdr.Devminor = tar.TypeBlock, int64(n.Major), int64(n.Minor)
	case rootfs.FIFO:
		hdr.Typeflag = tar.TypeFifo
	default:
		return fmt.Errorf("%s: a %s cannot be stored in a tar", p, n.Type)
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if n.Type == rootfs.Regular && n.Size() > 0 {
		rc, err := n.Content.Open()
		if err != nil {
			return err
		}
		defer rc.Close()
		if _, err := io.CopyN(tw, rc, n.Size()); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	return nil
}

func pathBase(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

// ReadTar reads a tar (a flattened image, say) into a tree. Hard links
// become shared nodes; content is held in memory.
func ReadTar(r io.Reader) (*rootfs.Tree, error) {
	t := rootfs.New(0)
	tr := tar.NewReader(r)
	type link struct{ name, target string }
	var links []link
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		name := "/" + strings.TrimSuffix(strings.TrimPrefix(hdr.Name, "./"), "/")
		if name == "/." || name == "/" {
			continue
		}
		n := &rootfs.Node{Perm: uint32(hdr.Mode) & 0o7777, UID: uint32(hdr.Uid), GID: uint32(hdr.Gid), MTime: hdr.ModTime.Unix()}
		switch hdr.Typeflag {
		case tar.TypeDir:
			n = rootfs.NewDir(n.Perm, n.MTime)
			n.UID, n.GID = uint32(hdr.Uid), uint32(hdr.Gid)
		case tar.TypeReg:
			b, err := io.ReadAll(tr)
			if err != nil {
				return nil, err
			}
			n.Type, n.Content = rootfs.Regular, rootfs.Bytes(b)
		case tar.TypeSymlink:
			n.Type, n.Target = rootfs.Symlink, hdr.Linkname
		case tar.TypeChar, tar.TypeBlock:
			n.Type = rootfs.CharDev
			if hdr.Typeflag == tar.TypeBlock {
				n.Type = rootfs.BlockDev
			}
			n.Major, n.Minor = uint32(hdr.Devmajor), uint32(hdr.Devminor)
		case tar.TypeFifo:
			n.Type = rootfs.FIFO
		case tar.TypeLink:
			links = append(links, link{name, "/" + strings.TrimPrefix(hdr.Linkname, "./")})
			continue
		default:
			return nil, fmt.Errorf("%s: unsupported tar entry type %q", hdr.Name, hdr.Typeflag)
		}
		if err := addReplacing(t, name, n); err != nil {
			return nil, err
		}
	}
	for _, l := range links {
		target := t.Lookup(l.target)
		if target == nil {
			return nil, fmt.Errorf("%s: hard link to missing %s", l.name, l.target)
		}
		if err := addReplacing(t, l.name, target); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func addReplacing(t *rootfs.Tree, p string, n *rootfs.Node) error {
	if old := t.Lookup(p); old != nil && (old.Type != n.Type) {
		if err := t.Remove(p); err != nil {
			return err
		}
	}
	return t.Add(p, n)
}
