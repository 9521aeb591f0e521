//go:build !linux

package flash

// Lookup refuses: disks are described from Linux's sysfs.
func (s System) Lookup(path string) (*Disk, error) { return nil, diskNeedsLinux(path) }
