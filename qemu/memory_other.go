//go:build !linux && !darwin

package qemu

// hostMemory is MaxMemory: this host's RAM is not read (QEMU refuses what
// it cannot allocate).
func hostMemory() int64 { return MaxMemory }
