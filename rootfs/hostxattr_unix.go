//go:build linux || darwin

package rootfs

import (
	"errors"
	"strings"

	"golang.org/x/sys/unix"
)

// listXattrs lists p's xattr names (not following a symlink) into buf;
// none on a file system without xattrs.
func listXattrs(p string, buf []byte) ([]string, error) {
	sz, err := unix.Llistxattr(p, buf)
	if errors.Is(err, unix.ENOTSUP) {
		return nil, nil
	}
	if err != nil || sz == 0 {
		return nil, err
	}
	return strings.Split(strings.TrimSuffix(string(buf[:sz]), "\x00"), "\x00"), nil
}

// getXattr reads p's xattr name into buf: nil when p has none (removed
// since it was listed) or the file system keeps none.
func getXattr(p, name string, buf []byte) ([]byte, error) {
	n, err := unix.Lgetxattr(p, name, buf)
	switch {
	case errors.Is(err, errNoAttr), errors.Is(err, unix.ENOTSUP):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return buf[:n], nil
}
