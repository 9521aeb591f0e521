package overlay

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/rfsbuild/rfs/slots"
)

// Raspberry Pi slots (slots.FirmwareRPi, slots.FirmwareRPiSwitch): the
// firmware boots the slot whose directory config.txt's os_prefix names,
// or tryboot.txt's after a reboot with the argument "0 tryboot" (the
// kernel hands it to the firmware as its one-shot tryboot flag). See
// https://www.raspberrypi.com/documentation/computers/config_txt.html
// (os_prefix, tryboot.txt) and the Raspberry Pi kernel's "firmware:
// raspberrypi: Add support for tryonce reboot flag".

// trybootArg is the reboot argument that sets the Pi firmware's tryboot
// flag ("0" is the boot partition, as `reboot "0 tryboot"` passes it).
const trybootArg = "0 tryboot"

// pointConfig makes config.txt boot slot (its os_prefix), unless it does
// already: a Pi 3 trial is armed and rolled back by it.
func (f *bootFAT) pointConfig(slot string) error {
	cfg, err := readBounded(filepath.Join(f.dir, slots.PiConfig), slots.MaxStateFile)
	if err != nil {
		return fmt.Errorf("read %s: %w", slots.PiConfig, err)
	}
	if slots.OSPrefix(cfg) == slots.Dir(slot) {
		return nil
	}
	return f.write(slots.PiConfig, slots.SetOSPrefix(cfg, slot))
}

// commitPi makes the Pi firmware boot slot from now on: config.txt's
// os_prefix names it and tryboot.txt's the other slot (the next trial's),
// each replaced atomically. A cut between the two leaves config.txt
// booting slot, which is what a commit needs; tryboot.txt is rewritten
// before the next trial is armed.
func (f *bootFAT) commitPi(slot string) error {
	if err := f.pointConfig(slot); err != nil {
		return err
	}
	return f.pointTryboot(slots.Other(slot))
}

// pointTryboot makes tryboot.txt boot slot: config.txt's lines with
// slot's os_prefix (the firmware reads it instead of config.txt).
func (f *bootFAT) pointTryboot(slot string) error {
	cfg, err := readBounded(filepath.Join(f.dir, slots.PiConfig), slots.MaxStateFile)
	if err != nil {
		return fmt.Errorf("read %s: %w", slots.PiConfig, err)
	}
	return f.write(slots.PiTrybootConfig, slots.SetOSPrefix(cfg, slot))
}

// armPi arms the trial of s on a Raspberry Pi: the try counted, then on
// a firmware with tryboot, tryboot.txt checked to name the trial slot,
// the flag file written (for rfs run, which plays the firmware) and the
// reboot asks for tryboot; on a Pi 3 (FirmwareRPiSwitch), config.txt
// points at the trial slot and the reboot is plain.
func (b *Boot) armPi(f *bootFAT, s slots.State) error {
	if err := f.writeState(s.Armed()); err != nil {
		return err
	}
	if s.Firmware == slots.FirmwareRPiSwitch {
		if err := f.pointConfig(s.Trial); err != nil {
			return err
		}
		f.close()
		b.reboot()
		return errors.New("reboot into the trial slot failed")
	}
	if err := f.pointTryboot(s.Trial); err != nil {
		return err
	}
	if err := f.write(slots.TrybootFile, []byte(s.Trial+"\n")); err != nil {
		return err
	}
	f.close()
	b.rebootTryboot()
	return errors.New("reboot into the trial slot failed")
}

// countSwitchTrial counts a boot of a Pi 3 trial: config.txt keeps
// booting the trial slot until it is committed, so a trial kernel that
// panics (panic=5 reboots) comes back here; past MaxSwitchTries boots
// the trial is rolled back (config.txt points at the committed slot)
// and the machine reboots.
func (b *Boot) countSwitchTrial(f *bootFAT, s slots.State) (slots.State, error) {
	if s.Firmware != slots.FirmwareRPiSwitch {
		return s, nil
	}
	if s.Tries > slots.MaxSwitchTries {
		reason := fmt.Sprintf("slot %s booted %d times without committing (its system did not stay up)", s.Trial, s.Tries)
		if err := f.pointConfig(s.Committed); err != nil {
			return s, err
		}
		if err := f.writeState(s.RollBack(reason, time.Now())); err != nil {
			return s, err
		}
		b.Logf("update: %s; rebooting into slot %s", reason, s.Committed)
		f.close()
		b.reboot()
		return s, errors.New("reboot into the committed slot failed")
	}
	counted := s.Armed()
	return counted, f.writeState(counted)
}

// rebootTryboot restarts the machine with the Pi firmware's tryboot flag
// (b.RebootTryboot, else b.Reboot, in tests): reboot(2) with
// LINUX_REBOOT_CMD_RESTART2 and the argument "0 tryboot". x/sys/unix's
// Reboot passes no argument, hence the raw system call.
func (b *Boot) rebootTryboot() {
	unix.Sync()
	switch {
	case b.RebootTryboot != nil:
		b.RebootTryboot()
		return
	case b.Reboot != nil:
		b.Reboot()
		return
	}
	if err := RebootWithArg(trybootArg); err != nil {
		b.Logf("ERROR: reboot %q: %v", trybootArg, err)
	}
}

// RebootWithArg is reboot(2) LINUX_REBOOT_CMD_RESTART2 with arg, which
// the kernel passes to its restart handlers (on a Raspberry Pi, "0
// tryboot" sets the firmware's tryboot flag).
func RebootWithArg(arg string) error {
	p, err := unix.BytePtrFromString(arg)
	if err != nil {
		return err
	}
	_, _, errno := unix.Syscall6(unix.SYS_REBOOT, unix.LINUX_REBOOT_MAGIC1, unix.LINUX_REBOOT_MAGIC2,
		unix.LINUX_REBOOT_CMD_RESTART2, uintptr(unsafe.Pointer(p)), 0, 0)
	if errno != 0 {
		return os.NewSyscallError("reboot", errno)
	}
	return nil
}
