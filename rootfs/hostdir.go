package rootfs

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// HostDirOptions says how files from the build host are taken into a tree.
type HostDirOptions struct {
	// Owner, when set, owns every entry (rfs's default is root, 0:0);
	// nil keeps the host's uid and gid.
	Owner *Owner
	// MTime, when set, is every entry's time (reproducible by default);
	// nil keeps the host's mtimes.
	MTime *int64
}

// Owner is a uid and gid.
type Owner struct{ UID, GID uint32 }

// AddHostDir merges the host directory src into t at dest. Modes are kept,
// symlinks stay symlinks (never followed, so a link pointing anywhere on the
// host copies nothing from there), hard links within src stay hard links.
// dest must stay inside the root.
func (t *Tree) AddHostDir(src, dest string, opts HostDirOptions) error {
	rel, err := Clean(dest)
	if err != nil {
		return fmt.Errorf("files %s: destination: %w", src, err)
	}
	st, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("files: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("files %s: not a directory", src)
	}
	type inode struct{ dev, ino uint64 }
	links := map[inode]*Node{}
	return filepath.WalkDir(src, func(hostPath string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("files: %w", err)
		}
		r, err := filepath.Rel(src, hostPath)
		if err != nil {
			return err
		}
		target := "/" + rel + "/" + filepath.ToSlash(r)
		if r == "." {
			target = "/" + rel
		}
		info, err := os.Lstat(hostPath)
		if err != nil {
			return fmt.Errorf("files: %w", err)
		}
		sys, _ := info.Sys().(*syscall.Stat_t)
		n := &Node{Perm: uint32(info.Mode().Perm())}
		if info.Mode()&fs.ModeSetuid != 0 {
			n.Perm |= 0o4000
		}
		if info.Mode()&fs.ModeSetgid != 0 {
			n.Perm |= 0o2000
		}
		if info.Mode()&fs.ModeSticky != 0 {
			n.Perm |= 0o1000
		}
		switch {
		case opts.Owner != nil:
			n.UID, n.GID = opts.Owner.UID, opts.Owner.GID
		case sys != nil:
			n.UID, n.GID = sys.Uid, sys.Gid
		}
		if opts.MTime != nil {
			n.MTime = *opts.MTime
		} else {
			n.MTime = info.ModTime().Unix()
		}
		mode := info.Mode()
		switch {
		case mode.IsDir():
			n.Type = Dir
		case mode.IsRegular():
			if sys != nil && sys.Nlink > 1 {
				key := inode{uint64(sys.Dev), uint64(sys.Ino)}
				if first := links[key]; first != nil {
					if err := t.Add(target, first); err != nil {
						return fmt.Errorf("files %s: %w", hostPath, err)
					}
					return nil
				}
				links[key] = n
			}
			n.Type = Regular
			n.Content = HostFile{Path: hostPath, Len: info.Size()}
		case mode&fs.ModeSymlink != 0:
			n.Type = Symlink
			if n.Target, err = os.Readlink(hostPath); err != nil {
				return fmt.Errorf("files: %w", err)
			}
		case mode&fs.ModeNamedPipe != 0:
			n.Type = FIFO
		case mode&fs.ModeSocket != 0:
			n.Type = Socket
		case mode&fs.ModeDevice != 0 && sys != nil:
			n.Type = BlockDev
			if mode&fs.ModeCharDevice != 0 {
				n.Type = CharDev
			}
			n.Major, n.Minor = unixMajor(uint64(sys.Rdev)), unixMinor(uint64(sys.Rdev))
		default:
			return fmt.Errorf("files %s: unsupported file type %v", hostPath, mode.Type())
		}
		if err := t.Add(target, n); err != nil {
			return fmt.Errorf("files %s: %w", hostPath, err)
		}
		return nil
	})
}

// Linux's dev_t encoding (glibc's gnu_dev_major/minor).
func unixMajor(dev uint64) uint32 { return uint32((dev>>8)&0xfff | (dev>>32)&^0xfff) }
func unixMinor(dev uint64) uint32 { return uint32(dev&0xff | (dev>>12)&^0xff) }
