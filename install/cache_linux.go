package install

import (
	"os"

	"golang.org/x/sys/unix"
)

func dropCache(f *os.File) { unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED) }

// StatfsFree is Device.Free on Linux: the bytes an unprivileged writer
// can still put in dir's filesystem.
func StatfsFree(dir string) (int64, error) {
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		return 0, err
	}
	return int64(fs.Bavail) * int64(fs.Bsize), nil
}
