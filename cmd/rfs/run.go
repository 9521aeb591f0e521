package main

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rfsbuild/rfs/boards"
	"github.com/rfsbuild/rfs/qemu"
)

// runFlags are rfs run's options.
type runFlags struct {
	expect  string
	timeout time.Duration
	persist bool
	kvm     bool
	appendC string
	memory  string
	dryRun  bool
	mounts  []string
	machine string
	// The guest's network: --net, --forward, --ssh.
	net      string
	forwards []string
	ssh      bool
}

func newRunCmd() *cobra.Command {
	cmd, _ := runCommand()
	return cmd
}

// runCommand is rfs run and the flags it parses into.
func runCommand() (*cobra.Command, *runFlags) {
	f := new(runFlags)
	cmd := &cobra.Command{
		Use:   "run IMAGE",
		Short: "Boot an image in QEMU with the serial console on this terminal",
		Long: `Boot an image in QEMU. Kernel, initramfs and command line are read from the
image's boot partition; the board recorded there picks the QEMU machine.
--mount HOSTDIR:/path[:ro] shares a host directory with the device over
virtio-9p: the init mounts it on /path (read-write unless :ro; files the
device creates belong to you on the host). QEMU's virt and q35 machines
(qemu-arm64, qemu-amd64, pc) have virtio; the Raspberry Pi models do not.
The image is attached as a throw-away snapshot unless --persist is given.
UEFI boards (pc) boot through OVMF (package ovmf) from the image's ESP, with a
private copy of the firmware's variable store.

Raspberry Pi images boot on QEMU's Pi models with the device tree from the
image's own boot partition: rpi3 as a Pi 3 (raspi3b), rpi4 and the universal
rpi image as a Pi 4 (raspi4b, QEMU 9.0 or newer). --machine raspi3b boots an
rpi4 or rpi image as a Pi 3 instead, on any QEMU. QEMU has no Pi 5: an rpi5
image needs --machine raspi4b (or raspi3b) for a smoke boot. rfs boards
lists each board's machine.

An image with A/B slots (slot.txt on its boot partition) boots as its
firmware would: the slot slot.txt names, or once the other one when the
one-shot tryboot flag is set (the boot removes it), with that slot's kernel,
initramfs and command line from slot-X/. A reboot of the device boots again,
the slot chosen anew (one line on stderr says which); its power-off ends the
run, as does Ctrl-A X. Without --persist the run boots a throw-away copy of
the image, so that trials and rollbacks play out within one run; the image
itself is never written.

Interactive by default: the serial console is this terminal; Ctrl-A X quits.
With --expect, rfs watches the console instead and exits 0 as soon as the
text appears, or non-zero (2) when --timeout passes first; for scripts and CI.

The device gets one network interface (eth0) on QEMU's user network, which
needs no privileges: DHCP gives it 10.0.2.15, the gateway is 10.0.2.2.
--net picks how far it reaches:
  restricted  (default) neither this host nor beyond: only the ports --forward
              and --ssh open connect, and only from this host
  internet    what this host reaches (10.0.2.2 is this host's loopback)
  none        no network interface
--forward [tcp:|udp:]HOSTPORT:GUESTPORT makes 127.0.0.1:HOSTPORT on this host
reach the device's GUESTPORT (TCP unless udp: is given); only this host can
connect. --ssh forwards a free port to the device's SSH (port 22) and prints
the ssh command before booting. The device's MAC address comes from the
image, so a DHCP server sees the same device boot after boot. On QEMU's Pi
models the interface is a USB network adapter (QEMU models no Pi Ethernet).`,
		Example: `  rfs run out/qemu-arm64.img
  rfs run out/x86.img --expect 'rfs: overlay ready' --timeout 60s
  rfs run out/qemu-arm64.img --append rfs.shell     # rescue shell in the initramfs
  rfs run out/qemu-arm64.img --mount ./src:/srv/src --mount /etc/ssl/certs:/mnt/certs:ro
  rfs run out/rpi4.img                              # a Pi 4 (QEMU raspi4b)
  rfs run out/rpi.img --machine raspi3b             # the universal Pi image as a Pi 3
  rfs run out/rpi5.img --machine raspi4b            # no Pi 5 in QEMU: smoke-boot as a Pi 4
  rfs run out/qemu-arm64.img --ssh                  # prints: ssh -p PORT ... root@127.0.0.1
  rfs run out/qemu-arm64.img --forward 8080:80 --forward udp:5353:53
  rfs run out/qemu-arm64.img --net internet         # the device reaches what this host reaches
  rfs run out/qemu-arm64.img --net none`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRun(cmd, f, args[0])
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.expect, "expect", "", "exit 0 once this text appears on the console (non-interactive)")
	fl.DurationVar(&f.timeout, "timeout", 120*time.Second, "with --expect: give up after this long (exit status 2)")
	fl.BoolVar(&f.persist, "persist", false, "write the guest's disk changes to the image (default: a throw-away snapshot)")
	fl.BoolVar(&f.kvm, "kvm", false, "use KVM instead of TCG emulation (host and board must share an architecture)")
	fl.StringVar(&f.appendC, "append", "", "extra kernel command line for this boot, e.g. rfs.shell")
	fl.StringVar(&f.memory, "memory", "", "guest memory, e.g. 2G (default: the board's)")
	fl.StringArrayVar(&f.mounts, "mount", nil, "share a host directory with the device: HOSTDIR:/path[:ro] (repeatable)")
	fl.StringVar(&f.machine, "machine", "", "QEMU machine for a Raspberry Pi image: raspi4b or raspi3b (default: the board's, see rfs boards)")
	fl.StringVar(&f.net, "net", string(qemu.NetRestricted), "the device's network: restricted (only --forward and --ssh ports, from this host), internet (what this host reaches) or none")
	fl.StringArrayVar(&f.forwards, "forward", nil, "forward 127.0.0.1:HOSTPORT to the device's GUESTPORT: [tcp:|udp:]HOSTPORT:GUESTPORT (repeatable)")
	fl.BoolVar(&f.ssh, "ssh", false, "forward a free port on 127.0.0.1 to the device's SSH (port 22) and print the ssh command")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print the QEMU command instead of running it (the files it uses are kept in a directory it names)")
	return cmd, f
}

// runRun is rfs run: the QEMU configuration from the image and the flags,
// then a dry run, an interactive boot, or a boot watched for --expect.
func runRun(cmd *cobra.Command, f *runFlags, image string) error {
	if f.timeout <= 0 {
		return fmt.Errorf("--timeout %s: want a positive duration, e.g. 90s or 5m", f.timeout)
	}
	// The run's files (kernel, initramfs, SD card copy, UEFI variables)
	// go on every way out; a run killed outright leaves them to the next
	// run, which removes them. --dry-run keeps them: the printed command
	// needs them.
	tmp, err := f.runDir()
	if err != nil {
		return err
	}
	keep := false
	defer func() {
		if !keep {
			os.RemoveAll(tmp)
		}
	}()
	cfg, board, err := f.config(cmd, image, tmp)
	if err != nil {
		return err
	}
	switch {
	case f.dryRun:
		keep = true
		fmt.Fprintln(cmd.OutOrStdout(), shellQuote(append([]string{cfg.QEMU.Binary}, cfg.Args()...)))
		if fw := cfg.Firmware; fw != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "rfs: this command boots slot %s, the firmware's choice now (a tryboot flag stays set); unlike rfs run, it does not follow the device's reboots\n", fw.Choice)
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "rfs: the files this command uses (kernel, initramfs, disk copy, firmware variables) are kept in %s: remove it when done\n", tmp)
		return nil
	case f.expect == "":
		if err := cfg.Check(); err != nil {
			return machineHint(board, image, err)
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "rfs: booting %s (%s) in %s; Ctrl-A X quits\n", image, board.Name, cfg.QEMU.Binary)
		return qemu.Interactive(cmd.Context(), cfg, os.Stdin, os.Stdout, os.Stderr)
	}
	return machineHint(board, image, f.runExpect(cmd, cfg))
}

// runDir makes the directory for the run's files.
func (f *runFlags) runDir() (string, error) {
	if f.dryRun {
		qemu.RemoveStaleRunDirs(os.TempDir())
		return os.MkdirTemp("", "rfs-dry-run-")
	}
	return qemu.RunDir()
}

// config is the QEMU configuration for the image (its boot files copied
// to tmp) with --kvm, --append and --memory applied.
func (f *runFlags) config(cmd *cobra.Command, image, tmp string) (qemu.Config, boards.Board, error) {
	cfg, board, err := qemu.ForImageOn(image, tmp, f.persist, f.machine)
	if err != nil {
		return cfg, board, err
	}
	cfg.KVM = f.kvm
	if cfg.Firmware != nil {
		// rfs plays the firmware: one line per boot, and its notes.
		cfg.Firmware.Log = cmd.ErrOrStderr()
		if cfg.Firmware.Choice.Note != "" && f.dryRun {
			fmt.Fprintf(cmd.ErrOrStderr(), "rfs: %s\n", cfg.Firmware.Choice.Note)
		}
	}
	if f.appendC != "" {
		cfg.Append += " " + f.appendC
	}
	if board.QEMU.Note != "" {
		fmt.Fprintf(cmd.ErrOrStderr(), "rfs: %s\n", board.QEMU.Note)
	}
	if err := f.addMounts(&cfg); err != nil {
		return cfg, board, err
	}
	if err := f.network(cmd, &cfg); err != nil {
		return cfg, board, err
	}
	if f.memory != "" {
		if cfg.QEMU.Memory, err = qemu.ParseMemory(f.memory, cfg.QEMU.Machine); err != nil {
			return cfg, board, err
		}
	}
	return cfg, board, cfg.CheckAppend(f.appendC)
}

// addMounts shares the --mount directories with the guest.
func (f *runFlags) addMounts(cfg *qemu.Config) error {
	var dirs []qemu.HostDir
	for i, m := range f.mounts {
		d, err := qemu.ParseMount(m, i)
		if err != nil {
			return err
		}
		dirs = append(dirs, d)
	}
	return cfg.AddMounts(dirs)
}

// network applies --net, --forward and --ssh to cfg. With --ssh it prints
// the ssh command (its port picked now, free on 127.0.0.1) before the boot.
func (f *runFlags) network(cmd *cobra.Command, cfg *qemu.Config) error {
	mode, err := qemu.ParseNetMode(f.net)
	if err != nil {
		return err
	}
	cfg.Net.Mode = mode
	for _, s := range f.forwards {
		fw, err := qemu.ParseForward(s)
		if err != nil {
			return err
		}
		cfg.Net.Forwards = append(cfg.Net.Forwards, fw)
	}
	if f.ssh {
		if mode == qemu.NetNone {
			return errors.New("--ssh needs a network: not with --net none")
		}
		port, err := qemu.FreePort()
		if err != nil {
			return fmt.Errorf("--ssh: %w", err)
		}
		cfg.Net.Forwards = append(cfg.Net.Forwards, qemu.Forward{Proto: "tcp", HostPort: port, GuestPort: 22})
	}
	if err := cfg.CheckNet(); err != nil {
		return err
	}
	if note := cfg.NetNote(); note != "" {
		fmt.Fprintf(cmd.ErrOrStderr(), "rfs: %s\n", note)
	}
	if f.ssh {
		port := cfg.Net.Forwards[len(cfg.Net.Forwards)-1].HostPort
		fmt.Fprintf(cmd.ErrOrStderr(), "rfs: ssh into the device with: %s\n", sshCommand(port))
	}
	return nil
}

// sshCommand logs in as root on the device through the --ssh forward. Its
// host key is not remembered: 127.0.0.1 is another device from run to run.
func sshCommand(port int) string {
	return fmt.Sprintf("ssh -p %d -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no root@127.0.0.1", port)
}

// machineHint adds to a missing-machine error another of the board's
// machines (board.QEMU is the one that failed) that older QEMUs have too:
// a Pi 4 image boots as a Pi 3.
func machineHint(board boards.Board, image string, err error) error {
	if !errors.Is(err, qemu.ErrNoMachine) {
		return err
	}
	for _, q := range board.OtherQEMU {
		if q.Machine != "" && q.Machine != board.QEMU.Machine && q.Since == "" {
			return fmt.Errorf("%w; or boot it on this QEMU as %s, with the device tree %s from the image: rfs run --machine %s %s", err, q.Machine, q.DTB, q.Machine, shellQuote([]string{image}))
		}
	}
	return err
}

// runExpect boots and watches the console for --expect: exit status 2
// when --timeout passes first, 3 when QEMU fails.
func (f *runFlags) runExpect(cmd *cobra.Command, cfg qemu.Config) error {
	vm, err := qemu.Start(cmd.Context(), cfg, cmd.OutOrStdout())
	if err != nil {
		return err
	}
	defer vm.Close()
	if _, err := vm.Expect(regexp.MustCompile(regexp.QuoteMeta(f.expect)), f.timeout); err != nil {
		if errors.Is(err, qemu.ErrTimeout) {
			return &exitError{code: 2, err: fmt.Errorf("%q did not appear on the console within %s", f.expect, f.timeout)}
		}
		return &exitError{code: 3, err: err}
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "\nrfs: saw %q\n", f.expect)
	return nil
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
