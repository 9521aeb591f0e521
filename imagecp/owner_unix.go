//go:build unix

package imagecp

import (
	"io/fs"
	"syscall"

	"golang.org/x/sys/unix"
)

// owner is a host file's uid and gid.
func owner(fi fs.FileInfo) (uint32, uint32) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Uid, st.Gid
	}
	return 0, 0
}

// rdev is a host device node's major and minor numbers.
func rdev(fi fs.FileInfo) (uint32, uint32) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		d := uint64(st.Rdev)
		return unix.Major(d), unix.Minor(d)
	}
	return 0, 0
}
