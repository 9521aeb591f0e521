//go:build !linux

package flash

// Unmount refuses: the disks' mounts are read from Linux's mountinfo.
func Unmount(*Disk) error { return errNeedsLinux() }
