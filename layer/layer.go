// Package layer works on overlayfs layers as rootfs trees: what an upper
// layer changed relative to its lower (Diff, docker diff semantics), the
// upper folded into a read-only layer that stacks on the same lower
// (Commit), the merged view as one tree (Flatten), and the diff as an OCI
// image layer (WriteOCI).
//
// An upper is read as the kernel left it (design notes §5): a whiteout is a
// character device 0/0 (recognised by type and device number, never by link
// count: the kernel hard-links whiteouts), an opaque directory carries the
// xattr trusted.overlay.opaque=y (user.overlay.opaque with userxattr).
// The upper must come from an overlay mounted with redirect_dir=off,
// index=off, metacopy=off, as rfs-init does: then it is a plain diff.
package layer

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/rfsbuild/rfs/quote"

	"github.com/rfsbuild/rfs/rootfs"
)

// Xattr names that mark an opaque directory.
const (
	OpaqueXattr     = "trusted.overlay.opaque"
	UserOpaqueXattr = "user.overlay.opaque"
)

// IsWhiteout says whether n is an overlayfs whiteout: a character device
// with device number 0/0.
func IsWhiteout(n *rootfs.Node) bool {
	return n != nil && n.Type == rootfs.CharDev && n.Major == 0 && n.Minor == 0
}

// IsOpaque says whether the directory n is marked opaque.
func IsOpaque(n *rootfs.Node) bool {
	if n == nil || n.Type != rootfs.Dir {
		return false
	}
	for _, k := range []string{OpaqueXattr, UserOpaqueXattr} {
		if v, ok := n.Xattrs[k]; ok && string(v) == "y" {
			return true
		}
	}
	return false
}

// Kind is the kind of a change, as docker diff prints it.
type Kind byte

const (
	Added    Kind = 'A'
	Changed  Kind = 'C'
	Deleted  Kind = 'D'
	noChange Kind = 0
)

func (k Kind) String() string { return string(rune(k)) }

// MarshalText makes Kind a JSON string.
func (k Kind) MarshalText() ([]byte, error) { return []byte{byte(k)}, nil }

// Change is one line of a diff.
type Change struct {
	Kind Kind   `json:"kind"`
	Path string `json:"path"`
}

// String is the line `rfs diff` prints. The path comes from the device, so
// it is quoted when it holds anything unprintable (a newline would forge a
// line, an escape would reach the terminal); JSON keeps it as is.
func (c Change) String() string { return fmt.Sprintf("%c %s", c.Kind, quote.Name(c.Path)) }

// Diff lists what the merged view of upper over lower changed relative to
// lower, with docker diff's rules: A for a path the lower does not have
// (everything under an added directory too), D for a lower path that is
// gone (only the top of a deleted subtree), C for a path whose type,
// mode, owner, mtime, size, content, symlink target or device number
// differs, and for every directory with a change beneath it. A whiteout is
// a D; an opaque directory is C (or A) plus a D for every lower entry it
// hides. A file copied up without any difference (a chown to the same
// owner, say) is not a change: the diff compares what the merged view
// shows, so it equals a diff of the lower against the merged tree.
// The result is sorted by path; "/" is never listed.
func Diff(lower, upper *rootfs.Tree) ([]Change, error) {
	return DiffContext(context.Background(), lower, upper)
}

// DiffContext is Diff that stops once ctx is done (between entries, and
// while comparing contents), returning an error that wraps ctx.Err().
func DiffContext(ctx context.Context, lower, upper *rootfs.Tree) ([]Change, error) {
	d := &differ{ctx: ctx}
	if _, err := d.dir("", lower.Root, upper.Root, true); err != nil {
		return nil, err
	}
	slices.SortFunc(d.out, func(a, b Change) int { return strings.Compare(a.Path, b.Path) })
	return d.out, nil
}

type differ struct {
	ctx context.Context
	out []Change
}

func (d *differ) add(k Kind, p string) { d.out = append(d.out, Change{k, p}) }

// dir compares the directory u of the upper (merging with the lower
// directory l when merge is set and u is not opaque) with l, the lower's
// node at the same path (any type, or nil). It reports whether anything
// beneath changed.
func (d *differ) dir(p string, l, u *rootfs.Node, merge bool) (bool, error) {
	before := len(d.out)
	var ldir *rootfs.Node
	if l != nil && l.Type == rootfs.Dir {
		ldir = l
	}
	mergeKids := merge && ldir != nil && !IsOpaque(u)
	for _, name := range unionNames(ldir, u) {
		if err := d.ctx.Err(); err != nil {
			return false, err
		}
		cp := p + "/" + name
		var lc *rootfs.Node
		if ldir != nil {
			lc = ldir.Child(name)
		}
		uc := u.Child(name)
		whiteout := IsWhiteout(uc)
		if whiteout {
			uc = nil
		}
		switch {
		case uc == nil:
			if lc == nil || (mergeKids && !whiteout) {
				continue // nothing, or the lower entry shows through
			}
			d.add(Deleted, cp)
		case lc == nil:
			d.add(Added, cp)
			if uc.Type == rootfs.Dir {
				d.addAll(cp, uc)
			}
		case uc.Type == rootfs.Dir && lc.Type == rootfs.Dir:
			sub, err := d.dir(cp, lc, uc, mergeKids)
			if err != nil {
				return false, err
			}
			if sub || !sameMeta(lc, uc) {
				d.add(Changed, cp)
			}
		case uc.Type == rootfs.Dir:
			d.add(Changed, cp)
			d.addAll(cp, uc)
		default:
			same, err := same(d.ctx, lc, uc)
			if err != nil {
				return false, fmt.Errorf("%s: %w", cp, err)
			}
			if !same {
				d.add(Changed, cp)
			}
		}
	}
	return len(d.out) > before, nil
}

// addAll lists everything under an added directory as added.
func (d *differ) addAll(p string, dir *rootfs.Node) {
	for _, e := range dir.Children() {
		if IsWhiteout(e.Node) {
			continue
		}
		cp := p + "/" + e.Name
		d.add(Added, cp)
		if e.Node.Type == rootfs.Dir {
			d.addAll(cp, e.Node)
		}
	}
}

func unionNames(a, b *rootfs.Node) []string {
	var names []string
	seen := map[string]bool{}
	for _, n := range []*rootfs.Node{a, b} {
		if n == nil {
			continue
		}
		for _, e := range n.Children() {
			if !seen[e.Name] {
				seen[e.Name] = true
				names = append(names, e.Name)
			}
		}
	}
	slices.Sort(names)
	return names
}

// sameMeta compares what docker diff compares besides content: type, mode,
// owner, mtime, symlink target, device number.
func sameMeta(a, b *rootfs.Node) bool {
	if a.Type != b.Type || a.Perm != b.Perm || a.UID != b.UID || a.GID != b.GID || a.MTime != b.MTime {
		return false
	}
	switch a.Type {
	case rootfs.Symlink:
		return a.Target == b.Target
	case rootfs.CharDev, rootfs.BlockDev:
		return a.Major == b.Major && a.Minor == b.Minor
	}
	return true
}

// Same says whether two non-directory nodes look the same through the
// merged view: metadata (sameMeta) and, for regular files, size and bytes.
func Same(a, b *rootfs.Node) (bool, error) {
	return same(context.Background(), a, b)
}

func same(ctx context.Context, a, b *rootfs.Node) (bool, error) {
	if !sameMeta(a, b) {
		return false, nil
	}
	if a.Type != rootfs.Regular {
		return true, nil
	}
	return sameContent(ctx, a, b)
}

func sameContent(ctx context.Context, a, b *rootfs.Node) (bool, error) {
	if a.Size() != b.Size() {
		return false, nil
	}
	if a.Size() == 0 {
		return true, nil
	}
	ra, err := a.Content.Open()
	if err != nil {
		return false, err
	}
	defer ra.Close()
	rb, err := b.Content.Open()
	if err != nil {
		return false, err
	}
	defer rb.Close()
	ba := make([]byte, 64<<10)
	bb := make([]byte, 64<<10)
	for {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		na, ea := io.ReadFull(ra, ba)
		nb, eb := io.ReadFull(rb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		if ea == io.EOF || ea == io.ErrUnexpectedEOF {
			return eb == io.EOF || eb == io.ErrUnexpectedEOF, nil
		}
		if ea != nil {
			return false, ea
		}
		if eb != nil {
			return false, eb
		}
	}
}
