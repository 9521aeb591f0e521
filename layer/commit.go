package layer

import (
	"github.com/rfsbuild/rfs/rootfs"
)

// Commit folds upper into a layer tree that, stacked read-only on the same
// lower (lowerdir=layer:lower), gives the same merged view as upper over
// lower. Whiteouts stay character devices 0/0 (only those that hide
// something); an opaque directory, which a squashfs without xattrs cannot
// mark, becomes a plain directory plus a whiteout for every lower entry it
// hides. Xattrs are not carried (the target kernels read no squashfs
// xattrs). Content is shared with upper, hard links within upper are kept.
func Commit(lower, upper *rootfs.Tree) (*rootfs.Tree, error) {
	c := &copier{links: map[*rootfs.Node]*rootfs.Node{}}
	out := rootfs.New(upper.Root.MTime)
	if err := out.Add("/", c.dirNode(upper.Root)); err != nil {
		return nil, err
	}
	return out, c.commitDir(out, "", lower.Root, upper.Root, true)
}

func (c *copier) commitDir(out *rootfs.Tree, p string, l, u *rootfs.Node, merge bool) error {
	var ldir *rootfs.Node
	if l != nil && l.Type == rootfs.Dir {
		ldir = l
	}
	mergeKids := merge && ldir != nil && !IsOpaque(u)
	for _, e := range u.Children() {
		cp := p + "/" + e.Name
		var lc *rootfs.Node
		if ldir != nil {
			lc = ldir.Child(e.Name)
		}
		switch {
		case IsWhiteout(e.Node):
			if mergeKids && lc != nil {
				if err := out.Add(cp, whiteout(e.Node)); err != nil {
					return err
				}
			}
		case e.Node.Type == rootfs.Dir:
			if err := out.Add(cp, c.dirNode(e.Node)); err != nil {
				return err
			}
			if err := c.commitDir(out, cp, lc, e.Node, mergeKids); err != nil {
				return err
			}
		default:
			if err := out.Add(cp, c.node(e.Node)); err != nil {
				return err
			}
		}
	}
	if ldir != nil && !mergeKids {
		// u hides the lower directory's entries: whiteout each one the
		// upper does not replace.
		for _, e := range ldir.Children() {
			if uc := u.Child(e.Name); uc != nil && !IsWhiteout(uc) {
				continue
			}
			if err := out.Add(p+"/"+e.Name, whiteout(u)); err != nil {
				return err
			}
		}
	}
	return nil
}

// Flatten returns the merged view of upper over lower as one tree (what
// the device shows at /). Nodes are copied; content is shared.
func Flatten(lower, upper *rootfs.Tree) (*rootfs.Tree, error) {
	c := &copier{links: map[*rootfs.Node]*rootfs.Node{}}
	out := rootfs.New(upper.Root.MTime)
	if err := out.Add("/", c.dirNode(upper.Root)); err != nil {
		return nil, err
	}
	return out, c.flattenDir(out, "", lower.Root, upper.Root, true)
}

func (c *copier) flattenDir(out *rootfs.Tree, p string, l, u *rootfs.Node, merge bool) error {
	var ldir *rootfs.Node
	if l != nil && l.Type == rootfs.Dir {
		ldir = l
	}
	mergeKids := merge && ldir != nil && !IsOpaque(u)
	for _, name := range unionNames(ldir, u) {
		cp := p + "/" + name
		var lc, uc *rootfs.Node
		if ldir != nil {
			lc = ldir.Child(name)
		}
		if u != nil {
			uc = u.Child(name)
		}
		switch {
		case IsWhiteout(uc):
			continue
		case uc == nil:
			if !mergeKids {
				continue
			}
			if err := c.copyTree(out, cp, lc); err != nil {
				return err
			}
		case uc.Type == rootfs.Dir:
			if err := out.Add(cp, c.dirNode(uc)); err != nil {
				return err
			}
			if err := c.flattenDir(out, cp, lc, uc, mergeKids); err != nil {
				return err
			}
		default:
			if err := out.Add(cp, c.node(uc)); err != nil {
				return err
			}
		}
	}
	return nil
}

// copyTree copies n (and everything under it) to p in out.
func (c *copier) copyTree(out *rootfs.Tree, p string, n *rootfs.Node) error {
	if n.Type != rootfs.Dir {
		return out.Add(p, c.node(n))
	}
	if err := out.Add(p, c.dirNode(n)); err != nil {
		return err
	}
	for _, e := range n.Children() {
		if err := c.copyTree(out, p+"/"+e.Name, e.Node); err != nil {
			return err
		}
	}
	return nil
}

// copier copies nodes without xattrs, keeping hard links (one copy per
// source node).
type copier struct{ links map[*rootfs.Node]*rootfs.Node }

func (c *copier) node(n *rootfs.Node) *rootfs.Node {
	if cp := c.links[n]; cp != nil {
		return cp
	}
	cp := &rootfs.Node{Type: n.Type, Perm: n.Perm, UID: n.UID, GID: n.GID, MTime: n.MTime,
		Content: n.Content, Target: n.Target, Major: n.Major, Minor: n.Minor}
	c.links[n] = cp
	return cp
}

func (c *copier) dirNode(n *rootfs.Node) *rootfs.Node {
	d := rootfs.NewDir(n.Perm, n.MTime)
	d.UID, d.GID = n.UID, n.GID
	return d
}

// whiteout returns a new whiteout whose time and owner come from like.
func whiteout(like *rootfs.Node) *rootfs.Node {
	return &rootfs.Node{Type: rootfs.CharDev, MTime: like.MTime}
}
