package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/rfsbuild/rfs/flash"
)

func newFlashCmd() *cobra.Command {
	var (
		list, all, yes, force, unmount, toFile, noVerify, buffered bool
		sysRoot                                                    string
	)
	cmd := &cobra.Command{
		Use:   "flash IMAGE DEVICE | --list",
		Short: "Write an image to an SD card or USB stick: sparse, verified, never the wrong disk",
		Long: `Write a disk image to a removable disk. Only the image's data is written
(its holes are skipped), plus the regions that must read as zeros: the first
and last MiB of the disk and of every partition (partition tables,
superblocks). The partition table is written last, so an interrupted write
leaves a disk without one. Everything written is then read back bypassing the
page cache and compared with the image byte for byte; the first bad offset is
reported (--no-verify skips this). Finally the kernel re-reads the partition
table.

rfs flash refuses, with the reason:
  - the disk of the running system (/, /usr, /boot, /var, /home, swap), always;
  - a disk in use by device-mapper, LVM, RAID or LUKS;
  - a disk with mounted filesystems (unless it is removable and --unmount);
  - a disk smaller than the image, a read-only disk, a partition;
  - a disk that is not removable (not USB, not SD, removable flag unset),
    unless --force; on a terminal you must then type its name;
  - a target that is not a block device, unless --to-file;
  - without a terminal to ask on, anything without --yes.

Exit status: 0 written and verified, 1 refused or failed (a failed or
interrupted write says the card is incomplete).`,
		Example: `  rfs flash --list                          # removable disks: path, size, model, mounts
  rfs flash out/rpi4.img /dev/sdb           # asks before writing
  rfs flash out/rpi4.img /dev/mmcblk0 --unmount --yes
  rfs flash out/x.img /dev/sdc --force      # a non-removable disk: type its name to confirm
  rfs flash out/x.img copy.img --to-file    # a sparse copy, verified`,
		Args: func(cmd *cobra.Command, args []string) error {
			if list {
				return cobra.NoArgs(cmd, args)
			}
			if len(args) != 2 {
				return fmt.Errorf("need IMAGE and DEVICE (or --list to see the candidates), got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			sys := flash.System{}
			if sysRoot != "" {
				sys = flash.FakeSystem(sysRoot)
			}
			if list {
				return listDisks(cmd.OutOrStdout(), sys, all)
			}
			return runFlash(cmd, sys, args[0], args[1], flash.Policy{Force: force, Unmount: unmount, Yes: yes}, toFile, noVerify, buffered)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&list, "list", "l", false, "list the removable disks one could flash")
	fl.BoolVar(&all, "all", false, "with --list: every disk, with the reason it is not a candidate")
	fl.BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation (required when not on a terminal)")
	fl.BoolVar(&force, "force", false, "allow a disk that is not removable (asks to type its name on a terminal)")
	fl.BoolVar(&unmount, "unmount", false, "unmount the filesystems of a removable target first")
	fl.BoolVar(&toFile, "to-file", false, "allow a regular file as the target (created or overwritten)")
	fl.BoolVar(&noVerify, "no-verify", false, "skip reading back and comparing what was written")
	fl.BoolVar(&buffered, "buffered", false, "write through the page cache instead of O_DIRECT")
	fl.StringVar(&sysRoot, "system-root", "", "read sysfs and mountinfo under this directory (for tests)")
	fl.MarkHidden("system-root")
	fl.MarkHidden("buffered")
	return cmd
}

func listDisks(w io.Writer, sys flash.System, all bool) error {
	disks, err := sys.List(all)
	if err != nil {
		return err
	}
	if len(disks) == 0 {
		fmt.Fprintln(w, "no removable disks found (rfs flash --list --all shows every disk)")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tSIZE\tTRANSPORT\tMODEL\tMOUNTED\tNOTE")
	for _, d := range disks {
		var mounts []string
		for _, m := range d.Mounts {
			mounts = append(mounts, m.On+":"+m.Point)
		}
		note := ""
		switch {
		case d.System:
			note = "system disk: " + d.SystemWhy
		case d.Size == 0:
			note = "no medium"
		case !d.Removable:
			note = "not removable (needs --force)"
		case len(d.Mounts) > 0:
			note = "mounted (needs --unmount)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Path, flash.HumanSize(d.Size), dash(d.Transport), dash(d.Model), dash(strings.Join(mounts, ",")), note)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func runFlash(cmd *cobra.Command, sys flash.System, image, target string, pol flash.Policy, toFile, noVerify, buffered bool) error {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	ist, err := os.Stat(image)
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if !ist.Mode().IsRegular() {
		return fmt.Errorf("image %s is not a regular file", image)
	}
	if err := sys.CheckImage(image); err != nil {
		return err
	}
	if err := checkFlashTarget(cmd, sys, image, ist.Size(), target, pol, toFile); err != nil {
		return err
	}
	return writeFlash(ctx, cmd.ErrOrStderr(), image, target, flash.Options{ToFile: toFile, Buffered: buffered}, noVerify)
}

// checkFlashTarget refuses a target rfs flash must not write (with the
// reason), asks for confirmation, and unmounts what --unmount allows.
func checkFlashTarget(cmd *cobra.Command, sys flash.System, image string, size int64, target string, pol flash.Policy, toFile bool) error {
	stderr := cmd.ErrOrStderr()
	interactive := isTerminal(cmd.InOrStdin())
	switch d, err := sys.Lookup(target); {
	case errors.Is(err, flash.ErrNotBlock), errors.Is(err, os.ErrNotExist):
		if !toFile {
			if errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("%s does not exist (rfs flash --list shows the removable disks; --to-file writes a file)", target)
			}
			return fmt.Errorf("refusing to write %s: not a block device (add --to-file to write the image into a regular file)", target)
		}
	case err != nil:
		return err
	default:
		if toFile {
			return fmt.Errorf("%s is a block device: drop --to-file", target)
		}
		if err := flash.Check(d, size, pol); err != nil {
			return err
		}
		if err := flash.Confirm(d, image, size, pol, interactive, cmd.InOrStdin(), stderr); err != nil {
			return err
		}
		if len(d.Mounts) > 0 {
			if err := flash.Unmount(d); err != nil {
				return err
			}
			fmt.Fprintf(stderr, "rfs: unmounted %d filesystem(s) on %s\n", len(d.Mounts), d.Path)
		}
	}
	return nil
}

// writeFlash writes the image, verifies it (unless noVerify) and has the
// kernel re-read the partition table, with progress bars on a terminal.
func writeFlash(ctx context.Context, stderr io.Writer, image, target string, opts flash.Options, noVerify bool) error {
	var prog *mpbProgress
	if isTerminal(stderr) {
		prog = &mpbProgress{p: mpb.NewWithContext(ctx, mpb.WithOutput(stderr), mpb.WithWidth(40))}
		opts.Progress = prog
	}
	job, err := flash.Open(image, target, opts)
	if err != nil {
		return err
	}
	defer job.Close()
	p := job.Plan
	fmt.Fprintf(stderr, "rfs: writing %s to %s: %s in %d ranges (image %s, of which data %s)\n", image, target,
		flash.HumanSize(p.Bytes()), len(p.Extents), flash.HumanSize(p.ImageSize), flash.HumanSize(p.Data))
	werr := job.Write(ctx)
	if prog != nil {
		prog.wait()
	}
	if werr != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted: %w", werr)
		}
		return werr
	}
	fmt.Fprintf(stderr, "rfs: wrote %s in %s (%s/s)\n", flash.HumanSize(job.Written), round(job.WriteTime), flash.HumanSize(rate(job.Written, job.WriteTime)))
	if !noVerify {
		if err := verifyFlash(ctx, stderr, job, prog, target); err != nil {
			return err
		}
	}
	if err := job.Reread(); err != nil {
		fmt.Fprintf(stderr, "rfs: note: %v; the new partitions appear after replugging the card\n", err)
	}
	if err := job.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "rfs: done: %s holds %s\n", target, image)
	return nil
}

// verifyFlash reads back what was written and compares.
func verifyFlash(ctx context.Context, stderr io.Writer, job *flash.Job, prog *mpbProgress, target string) error {
	if prog != nil {
		prog.p = mpb.NewWithContext(ctx, mpb.WithOutput(stderr), mpb.WithWidth(40))
	}
	verr := job.Verify(ctx)
	if prog != nil {
		prog.wait()
	}
	if verr != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted during verification: %s is written but NOT verified", target)
		}
		return verr
	}
	p := job.Plan
	fmt.Fprintf(stderr, "rfs: verified %s in %s (%s/s)\n", flash.HumanSize(p.Bytes()), round(job.VerTime), flash.HumanSize(rate(p.Bytes(), job.VerTime)))
	return nil
}

func round(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

func rate(n int64, d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(float64(n) / d.Seconds())
}

// mpbProgress shows one bar per phase: bytes, rate, ETA.
type mpbProgress struct {
	p   *mpb.Progress
	bar *mpb.Bar
}

func (m *mpbProgress) Start(phase string, total int64) {
	m.bar = m.p.AddBar(total,
		mpb.PrependDecorators(decor.Name(fmt.Sprintf("%-7s", phase)), decor.CountersKibiByte("% .1f / % .1f", decor.WCSyncWidth)),
		mpb.AppendDecorators(decor.AverageSpeed(decor.SizeB1024(0), "% .1f", decor.WCSyncWidth), decor.Name("  ETA "), decor.AverageETA(decor.ET_STYLE_GO)),
	)
}

func (m *mpbProgress) Add(n int64) { m.bar.IncrInt64(n) }

func (m *mpbProgress) Done(ok bool) {
	if ok {
		m.bar.SetTotal(-1, true)
	} else {
		m.bar.Abort(false)
	}
}

func (m *mpbProgress) wait() { m.p.Wait() }
