//go:build unix

package imagecp

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/rfsbuild/rfs/rootfs"
)

// makeNode makes a fifo, or (as root) a device node, at dst.
func makeNode(dst string, n *rootfs.Node, root bool) error {
	switch n.Type {
	case rootfs.FIFO:
		return unix.Mkfifo(dst, 0o600)
	case rootfs.CharDev, rootfs.BlockDev:
		if !root {
			return fmt.Errorf("%s: a device node (%s %d:%d) needs root to be made", dst, n.Type, n.Major, n.Minor)
		}
		mode := uint32(unix.S_IFCHR)
		if n.Type == rootfs.BlockDev {
			mode = unix.S_IFBLK
		}
		return unix.Mknod(dst, mode|0o600, int(unix.Mkdev(n.Major, n.Minor)))
	}
	return fmt.Errorf("%s: cannot copy a %s", dst, n.Type)
}
