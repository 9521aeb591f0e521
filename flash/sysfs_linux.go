package flash

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Lookup describes the whole disk at path (a device node such as /dev/sdb or
// a symlink to one, e.g. /dev/disk/by-id/...). It returns ErrNotBlock for
// anything that is not a block device, and an error naming the whole disk
// when path is a partition.
func (s System) Lookup(path string) (*Disk, error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Stat(real, &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return nil, fmt.Errorf("%s: %w", path, ErrNotBlock)
	}
	majmin := fmt.Sprintf("%d:%d", unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev)))
	name := filepath.Base(real)
	if l, err := os.Readlink(s.sys("dev/block", majmin)); err == nil {
		name = filepath.Base(l)
	}
	if _, err := os.Stat(s.sys("class/block", name, "partition")); err == nil {
		parent := filepath.Base(filepath.Dir(resolve(s.sys("class/block", name))))
		return nil, fmt.Errorf("%s is a partition of %s: give the whole disk, %s", path, parent, filepath.Join(s.devDir(), parent))
	}
	if _, err := os.Stat(s.sys("block", name)); err != nil {
		return nil, fmt.Errorf("%s (%s, %s): not found in %s", path, name, majmin, s.sys("block"))
	}
	d, err := s.disk(name)
	if err != nil {
		return nil, err
	}
	d.Path = path
	return d, nil
}
