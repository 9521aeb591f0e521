//go:build !unix

package rootfs

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Hosts without Unix file metadata (Windows) scan by path: no directory
// handles to look names up in.
const atCWD = -1

func dirFD(*os.File) int { return -1 }

// scanEntry makes e's node from os.Lstat of e.path. Windows keeps no Unix
// owners or modes: entries are owned by root unless opts.Owner says
// otherwise, directories are 0755, files 0644 (0444 when read-only), and
// hard links are separate files. A file that must be executable in the
// image needs an app or a build on a Unix host.
func scanEntry(e *hostEntry, _ int, _ string, opts HostDirOptions) {
	st, err := os.Lstat(e.path)
	if err != nil {
		e.err = fmt.Errorf("files: %w", err)
		return
	}
	n := &Node{Perm: uint32(st.Mode().Perm()) &^ 0o022, MTime: st.ModTime().Unix()}
	if opts.Owner != nil {
		n.UID, n.GID = opts.Owner.UID, opts.Owner.GID
	}
	if opts.MTime != nil {
		n.MTime = *opts.MTime
	}
	switch m := st.Mode(); {
	case m.IsDir():
		n.Type = Dir
		n.Perm = 0o755
	case m.IsRegular():
		n.Type = Regular
		n.Content = HostFile{Path: e.path, Len: st.Size()}
		n.Perm &^= 0o111
	case m&fs.ModeSymlink != 0:
		n.Type = Symlink
		target, err := os.Readlink(e.path)
		if err != nil {
			e.err = fmt.Errorf("files: %w", err)
			return
		}
		n.Target = filepath.ToSlash(target) // the image is Linux's
	default:
		e.err = fmt.Errorf("files %s: unsupported file type %v", e.path, m.Type())
		return
	}
	e.node = n
}
