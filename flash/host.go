package flash

import "github.com/rfsbuild/rfs/hostos"

// WhyLinux is what rfs flash uses of Linux, and what to do elsewhere.
const WhyLinux = "it finds removable disks and refuses the system's and mounted ones through /sys/block and /proc/self/mountinfo, " +
	"and writes with O_DIRECT and Linux block-device ioctls; on this host write the image with a tool such as balenaEtcher or Raspberry Pi Imager"

// errNeedsLinux is what the package's disk functions return on other hosts.
func errNeedsLinux() error { return hostos.NeedsLinux("rfs flash", WhyLinux) }

// diskNeedsLinux is Lookup's refusal on other hosts (rfs reset uses it too).
func diskNeedsLinux(path string) error {
	return hostos.NeedsLinux("using the disk "+path,
		"rfs finds a disk's size, partitions and mounts in /sys/block and /proc/self/mountinfo; give an image file instead")
}
