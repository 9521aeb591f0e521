package release_test

import (
	"fmt"

	"github.com/rfsbuild/rfs/release"
)

func ExampleConfig_Accept() {
	c := release.Config{Board: "rpi4", Arch: "arm64", Version: "1.4"}
	fmt.Println(c.Accept("qemu-arm64", "arm64", "1.3", false))
	fmt.Println(c.Accept("rpi4", "arm64", "1.10", false))
	fmt.Println(c.Accept("rpi4", "arm64", "1.10", true))
	fmt.Println(c.Accept("rpi4", "arm64", "gold", false))
	// Output:
	// release is for board rpi4, this device is qemu-arm64: wrong board
	// release version 1.4 is older than this device's 1.10: older release (force to install it anyway)
	// <nil>
	// release version "1.4", this device runs "gold": versions not comparable: version "gold": want numbers separated by dots, such as 1.4 or an epoch (force to install it anyway)
}
