package flash

import (
	"fmt"
	"sort"

	"golang.org/x/sys/unix"
)

// Unmount unmounts every filesystem on d, deepest mount point first.
func Unmount(d *Disk) error {
	ms := append([]Mount(nil), d.Mounts...)
	sort.Slice(ms, func(i, j int) bool { return len(ms[i].Point) > len(ms[j].Point) })
	for _, m := range ms {
		if err := unix.Unmount(m.Point, 0); err != nil && err != unix.EINVAL {
			return fmt.Errorf("unmount %s (%s): %w", m.Point, m.On, err)
		}
	}
	return nil
}
