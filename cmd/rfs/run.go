package main

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rfsbuild/rfs/qemu"
)

func newRunCmd() *cobra.Command {
	var (
		expect  string
		timeout time.Duration
		persist bool
		kvm     bool
		appendC string
		memory  string
		dryRun  bool
	)
	cmd := &cobra.Command{
		Use:   "run IMAGE",
		Short: "Boot an image in QEMU with the serial console on this terminal",
		Long: `Boot an image in QEMU. Kernel, initramfs and command line are read from the
image's boot partition; the board recorded there picks the QEMU machine.
The image is attached as a throw-away snapshot unless --persist is given.
UEFI boards (pc) boot through OVMF (package ovmf) from the image's ESP, with a
private copy of the firmware's variable store.

Interactive by default: the serial console is this terminal; Ctrl-A X quits.
With --expect, rfs watches the console instead and exits 0 as soon as the
text appears, or non-zero (2) when --timeout passes first; for scripts and CI.`,
		Example: `  rfs run out/qemu-arm64.img
  rfs run out/x86.img --expect 'rfs: overlay ready' --timeout 60s
  rfs run out/qemu-arm64.img --append rfs.shell     # rescue shell in the initramfs`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if timeout <= 0 {
				return fmt.Errorf("--timeout %s: want a positive duration, e.g. 90s or 5m", timeout)
			}
			// The run's files (kernel, initramfs, SD card copy, UEFI
			// variables) go on every way out; a run killed outright leaves
			// them to the next run, which removes them. --dry-run keeps
			// them: the printed command needs them.
			var tmp string
			var err error
			if dryRun {
				qemu.RemoveStaleRunDirs(os.TempDir())
				tmp, err = os.MkdirTemp("", "rfs-dry-run-")
			} else {
				tmp, err = qemu.RunDir()
			}
			if err != nil {
				return err
			}
			keep := false
			defer func() {
				if !keep {
					os.RemoveAll(tmp)
				}
			}()
			cfg, board, err := qemu.ForImage(args[0], tmp, persist)
			if err != nil {
				return err
			}
			cfg.KVM = kvm
			if appendC != "" {
				cfg.Append += " " + appendC
			}
			if board.QEMU.Note != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "rfs: %s\n", board.QEMU.Note)
			}
			if memory != "" {
				if cfg.QEMU.Memory, err = qemu.ParseMemory(memory, cfg.QEMU.Machine); err != nil {
					return err
				}
			}
			if err := cfg.CheckAppend(appendC); err != nil {
				return err
			}
			if dryRun {
				keep = true
				fmt.Fprintln(cmd.OutOrStdout(), shellQuote(append([]string{cfg.QEMU.Binary}, cfg.Args()...)))
				fmt.Fprintf(cmd.ErrOrStderr(), "rfs: the files this command uses (kernel, initramfs, disk copy, firmware variables) are kept in %s: remove it when done\n", tmp)
				return nil
			}
			if expect == "" {
				if err := cfg.Check(); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "rfs: booting %s (%s) in %s; Ctrl-A X quits\n", args[0], board.Name, cfg.QEMU.Binary)
				q := cfg.Command(cmd.Context())
				q.Stdin, q.Stdout, q.Stderr = os.Stdin, os.Stdout, os.Stderr
				return qemu.Run(q)
			}
			vm, err := qemu.Start(cmd.Context(), cfg, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			defer vm.Close()
			_, err = vm.Expect(regexp.MustCompile(regexp.QuoteMeta(expect)), timeout)
			if err != nil {
				if errors.Is(err, qemu.ErrTimeout) {
					return &exitError{code: 2, err: fmt.Errorf("%q did not appear on the console within %s", expect, timeout)}
				}
				return &exitError{code: 3, err: err}
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "\nrfs: saw %q\n", expect)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&expect, "expect", "", "exit 0 once this text appears on the console (non-interactive)")
	fl.DurationVar(&timeout, "timeout", 120*time.Second, "with --expect: give up after this long (exit status 2)")
	fl.BoolVar(&persist, "persist", false, "write the guest's disk changes to the image (default: a throw-away snapshot)")
	fl.BoolVar(&kvm, "kvm", false, "use KVM instead of TCG emulation (host and board must share an architecture)")
	fl.StringVar(&appendC, "append", "", "extra kernel command line for this boot, e.g. rfs.shell")
	fl.StringVar(&memory, "memory", "", "guest memory, e.g. 2G (default: the board's)")
	fl.BoolVar(&dryRun, "dry-run", false, "print the QEMU command instead of running it (the files it uses are kept in a directory it names)")
	return cmd
}

// shellQuote joins args into a line a POSIX shell splits back into them.
func shellQuote(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=+,./:@%") == "" {
			q[i] = a
			continue
		}
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}
