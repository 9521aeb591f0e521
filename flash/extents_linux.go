package flash

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// DataExtents returns the data (non-hole) ranges of f's first size bytes,
// by SEEK_DATA/SEEK_HOLE; where the filesystem cannot tell, all of it.
func DataExtents(f *os.File, size int64) ([]Extent, error) {
	fd := int(f.Fd())
	var out []Extent
	for off := int64(0); off < size; {
		d, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole is left
		}
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
			return []Extent{{Off: 0, Len: size}}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("seek data in %s: %w", f.Name(), err)
		}
		if d >= size {
			break
		}
		h, err := unix.Seek(fd, d, unix.SEEK_HOLE)
		if err != nil {
			return nil, fmt.Errorf("seek hole in %s: %w", f.Name(), err)
		}
		h = min(h, size)
		out = append(out, Extent{Off: d, Len: h - d})
		off = h
	}
	return out, nil
}
