package main

import (
	"github.com/spf13/cobra"

	"github.com/rfsbuild/rfs/flash"
	"github.com/rfsbuild/rfs/hostos"
	"github.com/rfsbuild/rfs/reset"
)

// requireLinux makes the commands that need a Linux kernel refuse on a
// host running goos, before they do anything: rfs flash (sysfs, O_DIRECT,
// block-device ioctls) and rfs reset --now (mounts ext4, loop devices).
// rfs run --kvm is refused by qemu.Config.Check; rfs run without it
// emulates the board wherever QEMU is installed. The other commands work
// on every host.
func requireLinux(root *cobra.Command, goos string) {
	if goos == "linux" {
		return
	}
	for _, c := range root.Commands() {
		switch c.Name() {
		case "flash":
			c.PreRunE = func(*cobra.Command, []string) error {
				return &hostos.NeedsLinuxError{What: "rfs flash", Why: flash.WhyLinux, GOOS: goos}
			}
		case "reset":
			c.PreRunE = func(c *cobra.Command, _ []string) error {
				if now, _ := c.Flags().GetBool("now"); now {
					return &hostos.NeedsLinuxError{What: "rfs reset --now", Why: reset.WhyNowLinux, GOOS: goos}
				}
				return nil
			}
		}
	}
}
