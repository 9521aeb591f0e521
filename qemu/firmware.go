package qemu

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/image/fat"
	"github.com/rfsbuild/rfs/slots"
)

// DefaultMaxBoots caps the boots of one run of an image with A/B slots: a
// guest that reboots forever (a trial that never comes up, a panic with
// panic=N) must not spin QEMU for ever.
const DefaultMaxBoots = 20

// Firmware plays the boot firmware of a direct-kernel board (qemu-arm64,
// qemu-amd64, the Pi models) for an image with A/B slots: at every
// power-up it picks the slot from the boot partition (slot.txt, the
// one-shot tryboot flag) and loads that slot's kernel, initramfs and
// command line. A guest reboot is a new power-up (a new QEMU). ForImage
// sets it on the Config of a slotted image; nil: the image has no slots.
type Firmware struct {
	// Image is the disk QEMU boots: the firmware reads its boot partition
	// and removes the tryboot flag from it. It is never the user's image
	// unless the run persists (ForImage boots a throw-away copy).
	Image string
	// Cmdline is the slot's command line that heads Config.Append (as
	// ForImage read it); a power-up replaces it with the chosen slot's,
	// keeping what callers appended.
	Cmdline string
	// Choice is what the firmware would boot first, looked at without
	// consuming the tryboot flag (rfs run --dry-run says it).
	Choice Choice
	// MaxBoots caps the boots of one run; 0: DefaultMaxBoots.
	MaxBoots int
	// Log receives one line per boot ("rfs: booting slot b (trial)") and
	// the firmware's notes; nil discards them.
	Log io.Writer
}

// Choice is the firmware's choice of slot at a power-up.
type Choice struct {
	Slot  string // "a" or "b"
	Trial bool   // the tryboot flag chose it: the other slot, once
	// Note says why the firmware booted another slot than the flags
	// asked for; "" when it did not.
	Note string
}

// String is the choice as the per-boot line says it: "b (trial)".
func (c Choice) String() string {
	if c.Trial {
		return c.Slot + " (trial)"
	}
	return c.Slot
}

// ChooseSlot is the firmware's choice at a power-up of the image or disk
// at path: the slot slot.txt names, or once the other one when the
// tryboot flag is set, which the choice consumes (removes from path's boot
// partition). A slot without a kernel falls back to the committed slot
// (Note says so; a real firmware would fail to boot). An image without
// slot.txt has no slots: the error is slots.ErrNoSlots.
func ChooseSlot(path string) (Choice, error) {
	c, flag, err := peekSlot(path)
	if err != nil || !flag {
		return c, err
	}
	if err := removeTryboot(path); err != nil {
		return Choice{}, err
	}
	return c, nil
}

// PeekSlot is ChooseSlot leaving the tryboot flag in place: what the next
// power-up would boot.
func PeekSlot(path string) (Choice, error) {
	c, _, err := peekSlot(path)
	return c, err
}

// peekSlot chooses the slot and says whether the tryboot flag is set.
func peekSlot(path string) (c Choice, flag bool, err error) {
	img, err := image.OpenImage(path)
	if err != nil {
		return Choice{}, false, err
	}
	defer img.Close()
	c, flag, err = chooseOn(img)
	if err != nil {
		return Choice{}, false, fmt.Errorf("%s: %w", path, err)
	}
	return c, flag, nil
}

// chooseOn makes the firmware's choice on an opened image.
func chooseOn(img *image.Image) (c Choice, flag bool, err error) {
	fs, err := bootFAT(img)
	if err != nil {
		return Choice{}, false, err
	}
	committed, err := readCommitted(fs)
	if err != nil {
		return Choice{}, false, err
	}
	flag, err = exists(fs, slots.TrybootFile)
	if err != nil {
		return Choice{}, false, err
	}
	c = Choice{Slot: committed}
	pi, err := piChoice(fs, flag)
	switch {
	case err != nil:
		return Choice{}, false, err
	case pi != "":
		// A Pi's firmware takes the slot from config.txt or tryboot.txt;
		// slot.txt names the committed one (a Pi 3 trial switches
		// config.txt).
		c = Choice{Slot: pi, Trial: pi != committed}
	case flag:
		c = Choice{Slot: slots.Other(committed), Trial: true}
	}
	kernel := slots.Dir(c.Slot) + kernelFile(img)
	ok, err := exists(fs, kernel)
	switch {
	case err != nil:
		return Choice{}, false, err
	case ok:
		return c, flag, nil
	case !c.Trial:
		return Choice{}, false, fmt.Errorf("boot partition: the committed slot %s (%s) has no %s: nothing to boot", committed, slots.FirmwareFile, kernel)
	}
	if ok, err = exists(fs, slots.Dir(committed)+kernelFile(img)); err != nil || !ok {
		return Choice{}, false, fmt.Errorf("boot partition: neither slot has a kernel (%s, %s)", kernel, slots.Dir(committed)+kernelFile(img))
	}
	note := fmt.Sprintf("tryboot asks for slot %s, which has no %s: booting the committed slot %s instead (a real firmware would fail to boot)", c.Slot, kernel, committed)
	return Choice{Slot: committed, Note: note}, flag, nil
}

// readCommitted reads slot.txt: the committed slot.
func readCommitted(fs *fat.FS) (string, error) {
	b, err := fs.ReadFile(slots.FirmwareFile, slots.MaxStateFile)
	if errors.Is(err, fat.ErrNotExist) {
		return "", slots.ErrNoSlots
	}
	if err != nil {
		return "", fmt.Errorf("boot partition: %w", err)
	}
	committed, err := slots.ParseFirmware(b)
	if err != nil {
		return "", fmt.Errorf("boot partition: %w", err)
	}
	return committed, nil
}

// piChoice is the slot a Raspberry Pi's firmware boots: the one whose
// directory os_prefix names in config.txt, or in tryboot.txt when the
// tryboot flag is set (the firmware reads tryboot.txt instead of
// config.txt then). "" when the image has no config.txt naming a slot
// (not a slotted Pi image).
func piChoice(fs *fat.FS, flag bool) (string, error) {
	name := slots.PiConfig
	if flag {
		name = slots.PiTrybootConfig
	}
	b, err := fs.ReadFile(name, slots.MaxStateFile)
	if errors.Is(err, fat.ErrNotExist) {
		if flag {
			return piChoice(fs, false)
		}
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("boot partition: %w", err)
	}
	if prefix := slots.OSPrefix(b); prefix != "" {
		if s := slots.PrefixSlot(prefix); s != "" {
			return s, nil
		}
		return "", fmt.Errorf("boot partition: %s: os_prefix=%s names no slot (want %s or %s)", name, prefix, slots.Dir(slots.A), slots.Dir(slots.B))
	}
	return "", nil
}

// bootFAT opens the FAT of img's boot partition for reading.
func bootFAT(img *image.Image) (*fat.FS, error) {
	p, err := img.Boot()
	if err != nil {
		return nil, err
	}
	fs, err := fat.Open(img.Section(p.Placed), p.Size)
	if err != nil {
		return nil, fmt.Errorf("boot partition: %w", err)
	}
	return fs, nil
}

// exists says whether the FAT holds a file at name.
func exists(fs *fat.FS, name string) (bool, error) {
	_, err := fs.Stat(name)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fat.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("boot partition: %w", err)
}

// kernelFile is the kernel's name in a slot's directory: the one rfs.json
// names, as on the top level.
func kernelFile(img *image.Image) string {
	if img.Meta != nil && img.Meta.KernelFile != "" {
		return img.Meta.KernelFile
	}
	return image.KernelFile
}

// removeTryboot consumes the one-shot flag on path's boot partition.
func removeTryboot(path string) error {
	img, err := image.OpenImage(path)
	if err != nil {
		return err
	}
	p, err := img.Boot()
	img.Close()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("remove the tryboot flag: %w", err)
	}
	defer f.Close()
	ed, err := fat.OpenEditor(f, p.Start)
	if err != nil {
		return fmt.Errorf("%s: boot partition: %w", path, err)
	}
	if _, err := ed.Remove(slots.TrybootFile); err != nil {
		return fmt.Errorf("%s: remove %s: %w", path, slots.TrybootFile, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}

// readSlot reads a slot's boot files (image.ReadBootSlot), the error
// naming the slot.
func readSlot(img *image.Image, slot string) (*image.Boot, error) {
	b, err := img.ReadBootSlot(slot)
	if err != nil {
		return nil, fmt.Errorf("slot %s: %w", slot, err)
	}
	return b, nil
}

// powerUp is c for the next boot: the slot chosen (the tryboot flag
// consumed), its kernel and initramfs written over c's, its command line
// in place of the one heading c.Append.
func (fw *Firmware) powerUp(c Config) (Config, Choice, error) {
	choice, err := ChooseSlot(fw.Image)
	if err != nil {
		return c, Choice{}, err
	}
	img, err := image.OpenImage(fw.Image)
	if err != nil {
		return c, Choice{}, err
	}
	defer img.Close()
	boot, err := readSlot(img, choice.Slot)
	if err != nil {
		return c, Choice{}, fmt.Errorf("%s: %w", fw.Image, err)
	}
	if err := os.WriteFile(c.Kernel, boot.Kernel, 0o644); err != nil {
		return c, Choice{}, err
	}
	if err := os.WriteFile(c.Initrd, boot.Initrd, 0o644); err != nil {
		return c, Choice{}, err
	}
	if err := slotDTB(img, &c, choice.Slot); err != nil {
		return c, Choice{}, fmt.Errorf("%s: %w", fw.Image, err)
	}
	if rest, ok := strings.CutPrefix(c.Append, fw.Cmdline); ok {
		// A caller that replaced the command line outright keeps it.
		c.Append = boot.Cmdline + rest
	}
	if choice.Note != "" {
		fw.logf("rfs: %s\n", choice.Note)
	}
	fw.logf("rfs: booting slot %s\n", choice)
	return c, choice, nil
}

// slotDTB replaces the QEMU machine's device tree (c.DTB) with the one
// in slot's directory, where a Pi image with slots keeps its trees (the
// firmware loads them from os_prefix); an image with a top-level tree
// keeps it.
func slotDTB(img *image.Image, c *Config, slot string) error {
	if c.DTB == "" {
		return nil
	}
	dtb, err := readSlotDTB(img, slot, filepath.Base(c.DTB), c.QEMU.Machine)
	if err != nil || dtb == nil {
		return err
	}
	return os.WriteFile(c.DTB, dtb, 0o644)
}

// readSlotDTB reads device tree name from slot's directory, with the
// USB controller QEMU's machine models turned on; nil when the slot has
// none.
func readSlotDTB(img *image.Image, slot, name, machine string) ([]byte, error) {
	p, err := img.Boot()
	if err != nil {
		return nil, err
	}
	fs, err := fat.Open(img.Section(p.Placed), p.Size)
	if err != nil {
		return nil, fmt.Errorf("boot partition: %w", err)
	}
	path := slots.Dir(slot) + name
	if ok, err := exists(fs, path); err != nil || !ok {
		return nil, err
	}
	dtb, err := img.ReadFile(p.Placed, path)
	if err != nil {
		return nil, fmt.Errorf("slot %s: %w", slot, err)
	}
	if node := usbNodes[machine]; node != "" {
		enableNode(dtb, node)
	}
	return dtb, nil
}

func (fw *Firmware) logf(format string, args ...any) {
	if fw.Log != nil {
		fmt.Fprintf(fw.Log, format, args...)
	}
}

func (fw *Firmware) maxBoots() int {
	if fw.MaxBoots > 0 {
		return fw.MaxBoots
	}
	return DefaultMaxBoots
}

// slotDisk is the disk a slotted image's run boots: the image itself with
// persist, else a throw-away sparse copy in dir, so that what the guest
// writes to the boot partition (rfs-slots.json, slot.txt, tryboot)
// survives its reboots within the run and the image stays as built.
func slotDisk(path, dir string, persist bool) (string, error) {
	if persist {
		return path, nil
	}
	disk := filepath.Join(dir, "disk.img")
	if err := copyPadded(path, disk, 0); err != nil {
		return "", fmt.Errorf("disk copy for the slots: %w", err)
	}
	return disk, nil
}

// Shutdown reasons of QEMU's SHUTDOWN event that matter to the firmware.
const (
	reasonReset    = "guest-reset"
	reasonShutdown = "guest-shutdown"
	reasonPanic    = "guest-panic"
)

// afterBoot says whether the firmware powers up again after a boot that
// ended with reason (QEMU's SHUTDOWN event; "" without one) and waitErr
// (QEMU's exit), the boots-th of the run. Only a guest reboot restarts; a
// power-off, a QEMU error, the user quitting and a panic end the run.
func (fw *Firmware) afterBoot(reason string, waitErr error, boots int) (again bool, err error) {
	switch {
	case waitErr != nil:
		return false, waitErr
	case reason == reasonPanic:
		return false, errors.New("the guest panicked")
	case reason != reasonReset:
		return false, nil
	case boots >= fw.maxBoots():
		return false, fmt.Errorf("the guest rebooted %d times in this run: stopping (a boot loop? rfs run boots at most %d times)", boots, fw.maxBoots())
	}
	return true, nil
}
