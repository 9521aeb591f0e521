package image

import (
	"fmt"
	"strings"

	"github.com/rfsbuild/rfs/slots"
)

// Slotted says whether the image has A/B slots: its layout names a slot
// for its roots.
func (img *Image) Slotted() bool {
	for _, p := range img.Parts {
		if p.Role == RoleRoot && p.Slot != "" {
			return true
		}
	}
	return false
}

// RootOf returns the root partition of A/B slot s.
func (img *Image) RootOf(s string) (Part, error) {
	if !img.Slotted() {
		return Part{}, slots.ErrNoSlots
	}
	for _, p := range img.Parts {
		if p.Role == RoleRoot && p.Slot == s {
			return p, nil
		}
	}
	return Part{}, fmt.Errorf("%w: no root partition of slot %s", ErrNotRFS, quoteSlot(s))
}

// CommittedSlot reads slot.txt from the boot partition: the slot the
// firmware boots (a or b).
func (img *Image) CommittedSlot() (string, error) {
	if !img.Slotted() {
		return "", slots.ErrNoSlots
	}
	p, err := img.Boot()
	if err != nil {
		return "", err
	}
	b, err := img.ReadFileMax(p.Placed, slots.FirmwareFile, slots.MaxStateFile)
	if err != nil {
		return "", err
	}
	s, err := slots.ParseFirmware(b)
	if err != nil {
		return "", fmt.Errorf("%s partition: %w", p.Name, err)
	}
	return s, nil
}

// ReadSlots reads rfs-slots.json from the boot partition.
func (img *Image) ReadSlots() (slots.State, error) {
	if !img.Slotted() {
		return slots.State{}, slots.ErrNoSlots
	}
	p, err := img.Boot()
	if err != nil {
		return slots.State{}, err
	}
	b, err := img.ReadFileMax(p.Placed, slots.StateFile, slots.MaxStateFile)
	if err != nil {
		return slots.State{}, err
	}
	st, err := slots.Parse(b)
	if err != nil {
		return slots.State{}, fmt.Errorf("%s partition: %w", p.Name, err)
	}
	return st, nil
}

// ReadBootSlot reads the boot files of A/B slot s from its directory on
// the boot partition (slot-a/): kernel, initramfs and command line. It
// reads what the firmware would (rfs run's), whatever rfs.json's layout
// says: a boot partition without the directory is an error of its own.
func (img *Image) ReadBootSlot(s string) (*Boot, error) {
	if !slots.Valid(s) {
		return nil, fmt.Errorf("slot %s: want a or b", quoteSlot(s))
	}
	return img.readBoot(slots.Dir(s))
}

// readBoot reads kernel, initramfs and command line from dir ("" or
// "slot-a/") of the boot partition.
func (img *Image) readBoot(dir string) (*Boot, error) {
	var b Boot
	var err error
	if b.Meta, err = img.ReadMeta(); err != nil {
		return nil, err
	}
	p, err := img.Boot()
	if err != nil {
		return nil, err
	}
	kernelFile := b.Meta.KernelFile
	if kernelFile == "" {
		kernelFile = KernelFile
	}
	if b.Kernel, err = img.ReadFile(p.Placed, dir+kernelFile); err != nil {
		return nil, err
	}
	if b.Initrd, err = img.ReadFile(p.Placed, dir+InitrdFile); err != nil {
		return nil, err
	}
	cmdline, err := img.ReadFileMax(p.Placed, dir+CmdlineFile, MaxSmallFile)
	if err != nil {
		return nil, err
	}
	b.Cmdline = strings.TrimSpace(string(cmdline))
	return &b, nil
}

func quoteSlot(s string) string { return fmt.Sprintf("%q", s) }
