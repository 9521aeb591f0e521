// Package hostos words what rfs needs from the operating system it runs on.
// rfs builds, inspects and edits images on Linux, macOS and Windows; a few
// commands need a Linux kernel (sysfs, loop devices, mounts, KVM), and on
// other hosts they say so with NeedsLinux instead of failing inside a
// system call. Standard library only.
package hostos

import (
	"fmt"
	"runtime"
)

// NeedsLinuxError is the refusal of something that needs a Linux host.
type NeedsLinuxError struct {
	What string // e.g. "rfs flash"
	Why  string // what it uses of Linux, and what to do instead
	GOOS string // the host's
}

func (e *NeedsLinuxError) Error() string {
	return fmt.Sprintf("%s needs Linux (%s); this host runs %s", e.What, e.Why, Name(e.GOOS))
}

// NeedsLinux is the refusal of what on this host: why says what it uses
// of Linux and, where there is one, what to do instead.
func NeedsLinux(what, why string) error {
	return &NeedsLinuxError{What: what, Why: why, GOOS: runtime.GOOS}
}

// Name names a GOOS for people: "macOS" for darwin.
func Name(goos string) string {
	switch goos {
	case "darwin":
		return "macOS"
	case "windows":
		return "Windows"
	case "linux":
		return "Linux"
	case "freebsd":
		return "FreeBSD"
	}
	return goos
}
