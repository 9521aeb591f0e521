package qemu

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/rfsbuild/rfs/image"
)

// MinMemory is the least guest memory rfs run accepts: less does not boot
// a kernel with its initramfs.
const MinMemory = 16 * image.MiB

// ParseMemory checks a --memory value and returns it as QEMU's -m value
// in MiB. A plain number is MiB, as QEMU reads it; sizes take K, M, G, T.
// It must be from MinMemory to the host's RAM: QEMU would try to allocate
// whatever it is given.
func ParseMemory(s string) (string, error) {
	v := s
	if v != "" && strings.Trim(v, "0123456789") == "" {
		v += "M"
	}
	n, err := image.ParseSize(v)
	if err != nil {
		return "", fmt.Errorf("--memory %q: want a size such as 512M or 2G", s)
	}
	limit := hostMemory()
	if n < MinMemory || n > limit {
		return "", fmt.Errorf("--memory %s: want %dM to %dM (this host's memory)", s, MinMemory/image.MiB, limit/image.MiB)
	}
	if n%image.MiB != 0 {
		return "", fmt.Errorf("--memory %s: want a whole number of MiB", s)
	}
	return fmt.Sprintf("%dM", n/image.MiB), nil
}

// hostMemory is the host's RAM, or 1 TiB if it cannot be read.
func hostMemory() int64 {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil || si.Totalram == 0 {
		return 1 << 40
	}
	return int64(si.Totalram) * int64(si.Unit)
}
