//go:build unix && !linux

package reset

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// lockHolder says whether a process holds a POSIX lock that conflicts with
// writing path (QEMU's on hosts without open file description locks).
func lockHolder(path string) (pid int, locked bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	if err := unix.FcntlFlock(f.Fd(), unix.F_GETLK, &lk); err != nil || lk.Type == unix.F_UNLCK {
		return 0, false, nil
	}
	return int(lk.Pid), true, nil
}
