package layer

import (
	"context"
	"fmt"
	"slices"

	"github.com/rfsbuild/rfs/rootfs"
)

// Compare lists how tree b differs from tree a, path by path: presence,
// type, mode, owner, symlink target, device number, regular file content,
// and with mtime also modification times. Hard-link structure and xattrs
// are not compared (what a process sees through the merged view). No
// differences gives an empty list.
func Compare(a, b *rootfs.Tree, mtime bool) []string {
	var out []string
	var walk func(p string, x, y *rootfs.Node)
	walk = func(p string, x, y *rootfs.Node) {
		if d := nodeDiff(x, y, mtime); d != "" {
			out = append(out, fmt.Sprintf("%s: %s", displayPath(p), d))
			return
		}
		if x.Type != rootfs.Dir {
			return
		}
		names := unionNames(x, y)
		slices.Sort(names)
		for _, name := range names {
			cp := p + "/" + name
			xc, yc := x.Child(name), y.Child(name)
			switch {
			case xc == nil:
				out = append(out, fmt.Sprintf("%s: only in the second tree (%s)", cp, yc.Type))
			case yc == nil:
				out = append(out, fmt.Sprintf("%s: only in the first tree (%s)", cp, xc.Type))
			default:
				walk(cp, xc, yc)
			}
		}
	}
	walk("", a.Root, b.Root)
	return out
}

func displayPath(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

// nodeDiff describes the first difference between two nodes, or "".
func nodeDiff(a, b *rootfs.Node, mtime bool) string {
	switch {
	case a.Type != b.Type:
		return fmt.Sprintf("type %s vs %s", a.Type, b.Type)
	case a.Perm != b.Perm:
		return fmt.Sprintf("mode %04o vs %04o", a.Perm, b.Perm)
	case a.UID != b.UID || a.GID != b.GID:
		return fmt.Sprintf("owner %d:%d vs %d:%d", a.UID, a.GID, b.UID, b.GID)
	case mtime && a.MTime != b.MTime:
		return fmt.Sprintf("mtime %d vs %d", a.MTime, b.MTime)
	case a.Type == rootfs.Symlink && a.Target != b.Target:
		return fmt.Sprintf("target %q vs %q", a.Target, b.Target)
	case (a.Type == rootfs.CharDev || a.Type == rootfs.BlockDev) && (a.Major != b.Major || a.Minor != b.Minor):
		return fmt.Sprintf("device %d:%d vs %d:%d", a.Major, a.Minor, b.Major, b.Minor)
	case a.Type == rootfs.Regular:
		same, err := sameContent(context.Background(), a, b)
		if err != nil {
			return "reading content: " + err.Error()
		}
		if !same {
			return fmt.Sprintf("content differs (%d vs %d bytes)", a.Size(), b.Size())
		}
	}
	return ""
}
