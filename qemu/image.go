package qemu

import (
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/rfsbuild/rfs/boards"
	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/infile"
	"github.com/rfsbuild/rfs/slots"
)

// ForImage prepares a Config that boots the image at path as its board's
// firmware would: kernel, initramfs, command line (and device tree) are read
// from the image's boot partition into dir, which proves the partition's
// content. Boards whose QEMU disk is an SD card boot a copy of the image
// padded to a power of two, as QEMU's SD emulation requires. UEFI boards
// boot through the firmware (OVMF) with a private copy of its variable
// store in dir; the firmware finds the UKI on the ESP itself.
func ForImage(path, dir string, persist bool) (Config, boards.Board, error) {
	return ForImageOn(path, dir, persist, "")
}

// ForImageOn is ForImage on the named QEMU machine (rfs run --machine):
// one of those the image's board offers (boards.Board.Machine), or the
// board's default when machine is empty. The returned board's QEMU is
// the machine chosen.
func ForImageOn(path, dir string, persist bool, machine string) (Config, boards.Board, error) {
	disk, err := image.OpenImage(path)
	if err != nil {
		return Config{}, boards.Board{}, err
	}
	defer disk.Close()
	meta, err := disk.ReadMeta()
	if err != nil {
		return Config{}, boards.Board{}, fmt.Errorf("%s: %w", path, err)
	}
	board, err := boards.Lookup(meta.Board)
	if err != nil {
		return Config{}, boards.Board{}, fmt.Errorf("%s: %w", path, err)
	}
	if board.QEMU, err = board.Machine(machine); err != nil {
		return Config{}, board, fmt.Errorf("%s: %w", path, err)
	}
	if board.UEFI != nil {
		boot, err := disk.ReadBoot()
		if err != nil {
			return Config{}, board, fmt.Errorf("%s: %w", path, err)
		}
		return forUEFI(board, boot, path, dir, persist)
	}
	boot, fw, err := readBootFiles(disk, path)
	if err != nil {
		return Config{}, board, err
	}
	c := Config{
		QEMU: board.QEMU, Arch: board.Arch,
		Kernel: filepath.Join(dir, "kernel"), Initrd: filepath.Join(dir, "initrd"),
		Append: boot.Cmdline, Disk: path, Persist: persist,
		Net: Network{MAC: imageMAC(boot.Meta, path)},
	}
	if board.QEMU.Console != "" {
		// The last console= is /dev/console: the one QEMU connects to stdio.
		c.Append += " console=" + board.QEMU.Console
	}
	if err := os.WriteFile(c.Kernel, boot.Kernel, 0o644); err != nil {
		return Config{}, board, err
	}
	if err := os.WriteFile(c.Initrd, boot.Initrd, 0o644); err != nil {
		return Config{}, board, err
	}
	slot := ""
	if fw != nil {
		slot = fw.Choice.Slot
	}
	if err := c.addDTB(disk, board, path, dir, slot); err != nil {
		return Config{}, board, err
	}
	if err := c.setDisk(disk.Size(), board, path, dir, fw); err != nil {
		return Config{}, board, err
	}
	return c, board, nil
}

// readBootFiles reads the boot files the firmware would boot: those of
// the top level, or of the slot chosen (without consuming the tryboot
// flag) when the image has A/B slots, with the Firmware that plays the
// slots' firmware (nil without slots).
func readBootFiles(disk *image.Image, path string) (*image.Boot, *Firmware, error) {
	choice, _, err := chooseOn(disk)
	if errors.Is(err, slots.ErrNoSlots) {
		boot, err := disk.ReadBoot()
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		return boot, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	boot, err := readSlot(disk, choice.Slot)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return boot, &Firmware{Cmdline: boot.Cmdline, Choice: choice}, nil
}

// addDTB gives a machine that needs a device tree the image's, in dir:
// from the directory of slot when the image has slots and the slot holds
// it (a Pi image: the firmware loads trees from os_prefix).
func (c *Config) addDTB(disk *image.Image, board boards.Board, path, dir, slot string) error {
	if board.QEMU.DTB == "" {
		return nil
	}
	if slot != "" {
		dtb, err := readSlotDTB(disk, slot, board.QEMU.DTB, board.QEMU.Machine)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if dtb != nil {
			c.usbOn = usbNodes[board.QEMU.Machine] != ""
			c.DTB = filepath.Join(dir, board.QEMU.DTB)
			return os.WriteFile(c.DTB, dtb, 0o644)
		}
	}
	p, err := disk.Boot()
	if err != nil {
		return err
	}
	dtb, err := disk.ReadFile(p.Placed, board.QEMU.DTB)
	if err != nil {
		// Images from before rfs carried this machine's tree lack it.
		return fmt.Errorf("%s: QEMU's %s needs its device tree from the image: %w (rebuild the image with this rfs)", path, board.QEMU.Machine, err)
	}
	if node := usbNodes[board.QEMU.Machine]; node != "" {
		// QEMU's copy only; without the controller the guest has
		// no network (NetNote says so).
		c.usbOn = enableNode(dtb, node) == nil
	}
	c.DTB = filepath.Join(dir, board.QEMU.DTB)
	return os.WriteFile(c.DTB, dtb, 0o644)
}

// setDisk picks the disk QEMU boots: the image, or a throw-away copy in
// dir (an SD card padded to a power of two, as QEMU's SD emulation
// requires; a slotted image, whose boot partition the guest and the
// firmware write between boots). fw, when the image has slots, gets the
// disk.
func (c *Config) setDisk(size int64, board boards.Board, path, dir string, fw *Firmware) error {
	if board.QEMU.Disk == "sd" {
		pow2 := int64(1) << (64 - bits.LeadingZeros64(uint64(size-1)))
		if c.Persist {
			if size != pow2 {
				return fmt.Errorf("--persist: QEMU's SD card needs a power-of-two size and %s is %s; build with --size %s, or run without --persist", path, image.HumanSize(size), image.HumanSize(pow2))
			}
		} else {
			c.Disk = filepath.Join(dir, "sd.img")
			if err := copyPadded(path, c.Disk, pow2); err != nil {
				return fmt.Errorf("SD card copy: %w", err)
			}
			c.Persist = true // the copy is throw-away already
		}
	}
	if fw == nil {
		return nil
	}
	disk, err := slotDisk(c.Disk, dir, c.Persist)
	if err != nil {
		return err
	}
	c.Disk, c.Persist, fw.Image = disk, true, disk
	c.Firmware = fw
	return nil
}

// imageMAC is the guest MAC of the image: from the PARTUUID of its data
// partition (the device's state, which a rebuild renews), else of its
// root, else from its path.
func imageMAC(m image.Meta, path string) string {
	for _, id := range []string{m.DataGUID, m.RootGUID, m.BootGUID} {
		if id != "" {
			return MACFor(id)
		}
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	return MACFor(path)
}

// copyPadded copies src to dst and extends dst to size (sparse; 0: as is).
func copyPadded(src, dst string, size int64) error {
	in, err := infile.OpenDisk("image", src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if size > 0 {
		if err := out.Truncate(size); err != nil {
			out.Close()
			return err
		}
	}
	return out.Close()
}

// String describes the machine for humans.
func (c Config) String() string {
	return strings.TrimSpace(c.QEMU.Binary + " -M " + c.QEMU.Machine)
}

// forUEFI boots a UEFI board's image from its disk through the firmware.
func forUEFI(board boards.Board, boot *image.Boot, path, dir string, persist bool) (Config, boards.Board, error) {
	c := Config{QEMU: board.QEMU, Arch: board.Arch, Append: boot.Cmdline, ImageCmdline: boot.Cmdline, Disk: path, Persist: persist,
		Net: Network{MAC: imageMAC(boot.Meta, path)}}
	fw, err := findFirmware(board.QEMU.Firmware)
	if err != nil {
		return Config{}, board, err
	}
	c.FirmwareCode = fw.Code
	// The variable store is written by the firmware: every boot gets its
	// own copy, never the system's file.
	c.FirmwareVars = filepath.Join(dir, filepath.Base(fw.Vars))
	if err := copyPadded(fw.Vars, c.FirmwareVars, 0); err != nil {
		return Config{}, board, fmt.Errorf("UEFI variable store: %w", err)
	}
	// boot.Kernel is the UKI (rfs.json's kernel_file names it).
	c.UKI = filepath.Join(dir, "uki.efi")
	if err := os.WriteFile(c.UKI, boot.Kernel, 0o644); err != nil {
		return Config{}, board, err
	}
	return c, board, nil
}

// findFirmware returns the first firmware whose files exist.
func findFirmware(fws []boards.Firmware) (boards.Firmware, error) {
	var tried []string
	for _, fw := range fws {
		_, err1 := os.Stat(fw.Code)
		_, err2 := os.Stat(fw.Vars)
		if err1 == nil && err2 == nil {
			return fw, nil
		}
		tried = append(tried, fw.Code)
	}
	return boards.Firmware{}, fmt.Errorf("UEFI firmware not found (looked for %s): install it (%s)", strings.Join(tried, ", "), firmwareHint(runtime.GOOS))
}

// firmwareHint says how to install x86 UEFI firmware on a host running goos.
func firmwareHint(goos string) string {
	if goos == "darwin" {
		return "macOS: brew install qemu, which ships edk2-x86_64-code.fd"
	}
	return "Debian/Ubuntu: apt-get install ovmf"
}
