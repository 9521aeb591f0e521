package qemu

import "golang.org/x/sys/unix"

// hostMemory is the host's RAM, or MaxMemory if it cannot be read.
func hostMemory() int64 {
	n, err := unix.SysctlUint64("hw.memsize")
	if err != nil || n == 0 || n > MaxMemory {
		return MaxMemory
	}
	return int64(n)
}
