//go:build !unix

package imagecp

import (
	"fmt"

	"github.com/rfsbuild/rfs/rootfs"
)

// makeNode: fifos and device nodes are Unix's.
func makeNode(dst string, n *rootfs.Node, root bool) error {
	return fmt.Errorf("%s: cannot make a %s on this host", dst, n.Type)
}
