package reset

import "github.com/rfsbuild/rfs/hostos"

// WhyNowLinux is what rfs reset --now uses of Linux, and what works elsewhere.
const WhyNowLinux = "it mounts the data partition's ext4, through a loop device for an image file; " +
	"without --now, rfs reset sets the flag the device acts on at its next boot, on any host"

// nowNeedsLinux is Now's refusal on other hosts.
func nowNeedsLinux() error { return hostos.NeedsLinux("rfs reset --now", WhyNowLinux) }
