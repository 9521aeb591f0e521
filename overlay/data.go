package overlay

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/rfsbuild/rfs/datapart"
)

// crashHook, if set (tests only), is called after every durable step of
// the reset, the growth and the seeding; it simulates a power cut by exiting.
var crashHook func(step string)

func step(name string) {
	if crashHook != nil {
		crashHook(name)
	}
}

// dataDir is the data partition mounted at p, its durable steps reported
// to crashHook.
func dataDir(p string) datapart.Dir { return datapart.Dir{Path: p, Step: step} }

// SeedVolume creates dataDir/volumes/NAME if it does not exist, filled
// with a copy of src (the lower's content at the volume's path; "" or
// missing = empty, mode 0755). The copy is made in a temp dir and renamed
// into place, so a volume that exists was seeded completely, once: an
// emptied volume is never seeded again. It reports whether it seeded.
func SeedVolume(dataDir, name, src string) (bool, error) {
	vdir := filepath.Join(dataDir, datapart.Volumes)
	dst := filepath.Join(vdir, name)
	if _, err := os.Lstat(dst); err == nil {
		return false, nil
	}
	tmp := filepath.Join(vdir, ".seed-"+name)
	if err := os.RemoveAll(tmp); err != nil { // a seed cut short by a power loss
		return false, err
	}
	st, err := os.Lstat(src)
	switch {
	case src == "" || errors.Is(err, os.ErrNotExist):
		err = os.Mkdir(tmp, 0o755)
	case err != nil:
		return false, err
	case !st.IsDir():
		return false, fmt.Errorf("%s in the lower is not a directory", src)
	default:
		err = copyTree(src, tmp)
	}
	if err == nil {
		err = syncTree(tmp)
	}
	if err == nil {
		step("seed:copied")
		// Not atomicfile (files only): a whole directory tree is
		// published by this one rename.
		err = os.Rename(tmp, dst)
	}
	if err == nil {
		err = datapart.SyncDir(vdir)
	}
	if err != nil {
		os.RemoveAll(tmp)
		return false, fmt.Errorf("seed volume %s: %v", name, err)
	}
	return true, nil
}

// copyTree copies a directory tree (dirs, regular files, symlinks, device
// nodes, fifos) with owner, mode and mtime. xattrs are not copied (the
// squashfs lowers have none).
func copyTree(src, dst string) error {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := unix.Mkdir(dst, 0o700); err != nil {
			return err
		}
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		names, err := f.Readdirnames(-1)
		f.Close()
		if err != nil {
			return err
		}
		for _, n := range names {
			if err := copyTree(filepath.Join(src, n), filepath.Join(dst, n)); err != nil {
				return err
			}
		}
	case unix.S_IFREG:
		in, err := os.Open(src)
		if err != nil {
			return err
		}
		out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			in.Close()
			return err
		}
		_, err = io.Copy(out, in)
		in.Close()
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	case unix.S_IFLNK:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO, unix.S_IFSOCK:
		if err := unix.Mknod(dst, st.Mode, int(st.Rdev)); err != nil {
			return err
		}
	default:
		return nil
	}
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		if err := unix.Chmod(dst, st.Mode&0o7777); err != nil {
			return err
		}
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	return unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW)
}

// syncTree fsyncs every regular file and directory below (and including)
// dir, so a rename of dir publishes complete content.
func syncTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() && !d.IsDir() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Sync()
	})
}
