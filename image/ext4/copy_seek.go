//go:build linux || darwin

package ext4

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// copyData copies the data extents of f (skipping holes) to w.
func copyData(w io.WriterAt, f *os.File, size int64) error {
	buf := make([]byte, 1<<20)
	fd := int(f.Fd())
	for off := int64(0); off < size; {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if err != nil {
			if errors.Is(err, unix.ENXIO) {
				return nil // only holes left
			}
			if off == 0 && (errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP)) {
				return copyNonZero(w, f, size) // no SEEK_DATA here (macOS's HFS+)
			}
			return fmt.Errorf("seek data: %w", err)
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return fmt.Errorf("seek hole: %w", err)
		}
		for p := data; p < hole; {
			n := min(int64(len(buf)), hole-p)
			if _, err := f.ReadAt(buf[:n], p); err != nil {
				return err
			}
			if _, err := w.WriteAt(buf[:n], p); err != nil {
				return err
			}
			p += n
		}
		off = hole
	}
	return nil
}
