package rootfs

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
)

// AddHostXattrs copies the host's xattrs that squashfs can store (user.*,
// trusted.*, security.*) from the directory src into t, whose every path
// came from src (AddHostDir(src, "/")). A file system without xattrs
// contributes none; a host without them (Windows) is an error, so a build
// asked to keep them does not silently drop them.
func (t *Tree) AddHostXattrs(ctx context.Context, src string) error {
	buf := make([]byte, 64<<10)
	val := make([]byte, 64<<10)
	return t.Walk(func(p string, n *Node) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		hp := filepath.Join(src, p)
		names, err := listXattrs(hp, buf)
		if err != nil {
			return fmt.Errorf("xattrs of %s: %w", hp, err)
		}
		for _, name := range names {
			if !strings.HasPrefix(name, "user.") && !strings.HasPrefix(name, "trusted.") && !strings.HasPrefix(name, "security.") {
				continue // system.* (ACLs) and others cannot be stored
			}
			v, err := getXattr(hp, name, val)
			if err != nil {
				return fmt.Errorf("xattr %s of %s: %w", name, hp, err)
			}
			if v == nil {
				continue
			}
			if n.Xattrs == nil {
				n.Xattrs = map[string][]byte{}
			}
			n.Xattrs[name] = append([]byte(nil), v...)
		}
		return nil
	})
}

// HostXattr returns the xattr name of the host file p (a symlink's own),
// nil if it has none or the file system keeps no xattrs.
func HostXattr(p, name string) ([]byte, error) {
	v, err := getXattr(p, name, make([]byte, 256))
	if v == nil || err != nil {
		return nil, err
	}
	return append([]byte(nil), v...), nil
}
