//go:build unix

package rootfs

import (
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// atCWD is the directory handle scanEntry resolves a path from the
// working directory with.
const atCWD = unix.AT_FDCWD

// dirFD is the handle scanEntry looks up names in directory f with.
func dirFD(f *os.File) int { return int(f.Fd()) }

// scanEntry makes e's node from the file name in the directory dirfd,
// with the same fields and errors as os.Lstat and os.Readlink on e.path
// would give.
func scanEntry(e *hostEntry, dirfd int, name string, opts HostDirOptions) {
	var st unix.Stat_t
	if err := ignoringEINTR(func() error { return unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) }); err != nil {
		e.err = fmt.Errorf("files: %w", &fs.PathError{Op: "lstat", Path: e.path, Err: err})
		return
	}
	n := &Node{Perm: uint32(st.Mode) & 0o7777, UID: st.Uid, GID: st.Gid, MTime: int64(st.Mtim.Sec)}
	if opts.Owner != nil {
		n.UID, n.GID = opts.Owner.UID, opts.Owner.GID
	}
	if opts.MTime != nil {
		n.MTime = *opts.MTime
	}
	switch uint32(st.Mode) & unix.S_IFMT {
	case unix.S_IFDIR:
		n.Type = Dir
	case unix.S_IFREG:
		n.Type = Regular
		n.Content = HostFile{Path: e.path, Len: st.Size}
		if st.Nlink > 1 {
			e.linked, e.ino = true, inode{uint64(st.Dev), uint64(st.Ino)}
		}
	case unix.S_IFLNK:
		n.Type = Symlink
		target, err := readlinkat(dirfd, name)
		if err != nil {
			e.err = fmt.Errorf("files: %w", &fs.PathError{Op: "readlink", Path: e.path, Err: err})
			return
		}
		n.Target = target
	case unix.S_IFIFO:
		n.Type = FIFO
	case unix.S_IFSOCK:
		n.Type = Socket
	case unix.S_IFCHR, unix.S_IFBLK:
		n.Type = BlockDev
		if uint32(st.Mode)&unix.S_IFMT == unix.S_IFCHR {
			n.Type = CharDev
		}
		n.Major, n.Minor = unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev))
	default:
		e.err = fmt.Errorf("files %s: unsupported file type %#o", e.path, uint32(st.Mode)&unix.S_IFMT)
		return
	}
	e.node = n
}

func readlinkat(dirfd int, name string) (string, error) {
	for size := 128; ; size *= 2 {
		b := make([]byte, size)
		var n int
		err := ignoringEINTR(func() (err error) {
			n, err = unix.Readlinkat(dirfd, name, b)
			return err
		})
		if err != nil {
			return "", err
		}
		if n < size {
			return string(b[:n]), nil
		}
	}
}

// ignoringEINTR retries fn when a signal interrupts it, as package os
// does: network and FUSE file systems can return EINTR.
func ignoringEINTR(fn func() error) error {
	for {
		if err := fn(); err != unix.EINTR {
			return err
		}
	}
}
