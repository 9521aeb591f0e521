package qemu

import "golang.org/x/sys/unix"

// hostMemory is the host's RAM, or MaxMemory if it cannot be read.
func hostMemory() int64 {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil || si.Totalram == 0 {
		return MaxMemory
	}
	return int64(si.Totalram) * int64(si.Unit)
}
