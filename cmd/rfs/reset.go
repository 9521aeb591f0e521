package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rfsbuild/rfs/datapart"
	"github.com/rfsbuild/rfs/reset"
)

func newResetCmd() *cobra.Command {
	var all, now, cancel bool
	cmd := &cobra.Command{
		Use:   "reset IMAGE|DEVICE",
		Short: "Factory-reset an image or a card: flag it for the next boot, or wipe its upper layer now",
		Long: `Return an rfs image file, or an SD card / USB disk holding one, to its factory
state: the writable upper layer on the data partition is wiped, the read-only
lower is never touched. Volumes are kept unless --all.

Without --now, rfs reset writes the flag file "` + datapart.ResetFlagFile + `" at the root of the FAT
boot partition (content "upper", or "all" with --all; a flag already saying
"all" stays "all"). The device performs the reset at its next boot and removes
the flag once the wipe is durable. Any PC can do the same: create a file
named ` + datapart.ResetFlagFile + ` on the card's boot partition. No root needed for an image file.

With --now, the data partition is mounted on this host (root only: the
partition's device node, or a loop device over its byte range) and wiped right
away with the init's own code: the reset is recorded (trigger "host") in the
partition's rfs-state.json, the old files are deleted, and the partition is
unmounted.

DEVICE is a whole disk (/dev/sdb, /dev/mmcblk0). rfs reset refuses a target
that is mounted (or, for an image file, attached to a mounted loop device or
locked by a running QEMU), and an image without a data partition.`,
		Example: `  rfs reset out/rpi4.img              # flag: reset the upper at the next boot
  rfs reset --all /dev/sdb            # flag: upper and volumes, on a card in a reader
  sudo rfs reset --now out/qemu-arm64.img
  sudo rfs reset --now --all /dev/mmcblk0
  rfs reset --cancel out/rpi4.img     # remove a flag set by mistake`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runReset(cmd, args[0], all, now, cancel)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&all, "all", false, "also wipe the volumes")
	fl.BoolVar(&now, "now", false, "wipe on this host now instead of at the next boot (root)")
	fl.BoolVar(&cancel, "cancel", false, "remove the reset flag")
	return cmd
}

// runReset is rfs reset: --cancel, --now or (by default) the flag.
func runReset(cmd *cobra.Command, target string, all, now, cancel bool) error {
	out := cmd.OutOrStdout()
	what := "the upper layer (volumes kept)"
	if all {
		what = "the upper layer and the volumes"
	}
	switch {
	case cancel && (now || all):
		return fmt.Errorf("--cancel takes neither --now nor --all")
	case cancel:
		was, err := reset.Cancel(target)
		if err != nil {
			return err
		}
		if was == "" {
			fmt.Fprintf(out, "%s: no reset flag was set\n", target)
		} else {
			fmt.Fprintf(out, "%s: reset flag (%s) removed\n", target, was)
		}
		return nil
	case now:
		return resetNow(cmd, target, all, what)
	}
	res, err := reset.Flag(target, all)
	if err != nil {
		return err
	}
	if res.All && !all {
		what = "the upper layer and the volumes (the flag already said all)"
	}
	fmt.Fprintf(out, "%s: reset flag set on boot partition %d: the next boot wipes %s\n", target, res.Target.Boot.Number, what)
	return nil
}

// resetNow is rfs reset --now.
func resetNow(cmd *cobra.Command, target string, all bool, what string) error {
	out := cmd.OutOrStdout()
	res, err := reset.Now(cmd.Context(), target, all)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s: wiped %s of data partition %d (%s) in %s (renames and fsyncs: %.1f ms)\n",
		target, what, res.Target.Data.Number, res.Device, res.Took.Round(1e6), res.Record.WipeMS)
	if res.FlagPending != "" {
		fmt.Fprintf(out, "%s: a reset flag (%s) is also set: the device resets once more at its next boot (rfs reset --cancel removes it)\n",
			target, res.FlagPending)
	}
	return nil
}
