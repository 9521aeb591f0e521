// Package boards describes the machines rfs builds images for. A board is
// data — architecture, kernel source, console, partition table, how QEMU
// emulates it — and no other package switches on a board's name.
package boards

import (
	"fmt"
	"slices"
	"strings"

	"github.com/rfsbuild/rfs/modfetch"
)

// KernelSource says where a board's default kernel comes from.
type KernelSource struct {
	Module modfetch.Module // module holding the kernel
	File   string          // path of the kernel image inside the module
}

// QEMU says how to emulate a board.
type QEMU struct {
	Binary  string // e.g. qemu-system-aarch64
	Machine string // -machine value
	CPU     string // -cpu value, empty for the default
	Memory  string // -m value
	Disk    string // how the image is attached: "virtio", or "sd" (size padded to a power of two)
	DTB     string // device tree passed with -dtb, read from the boot partition
	Console string // console= appended for QEMU when it differs from the real board's
	// SerialPort is the index of the machine's UART wired to stdio (QEMU's
	// -serial options fill UARTs in order); 0 is QEMU's default.
	SerialPort int
	// Note is printed by rfs run, e.g. when QEMU emulates a sibling model;
	// with no Machine (QEMU has no model of the board) it is rfs run's
	// refusal, which names the machines --machine offers instead.
	Note  string
	Extra []string // further arguments
	// Since is the QEMU version that added Machine, when older QEMUs are
	// still common: rfs run checks the installed QEMU has the machine.
	Since string
	// Firmware, for UEFI boards: flash images QEMU boots instead of a
	// kernel, by preference; the first pair whose files exist is used.
	Firmware []Firmware
}

// Firmware is a UEFI firmware for QEMU as two flash images: the code,
// mapped read-only, and the template of the variable store, of which each
// boot gets a private copy (never the system file).
type Firmware struct {
	Code string
	Vars string
}

// UEFI says how a UEFI board boots: firmware starts the Unified Kernel
// Image (EFI stub + kernel + initramfs + command line) found at the
// removable-media path of the EFI system partition, with no NVRAM entry.
type UEFI struct {
	// Stub is the default EFI stub the UKI is built on (Debian package
	// systemd-boot-efi); the project's efi_stub or --efi-stub replaces it.
	Stub string
	// BootFile is the UKI's path on the ESP: the removable-media path
	// firmware looks for, e.g. EFI/BOOT/BOOTX64.EFI.
	BootFile string
}

// Pi says what a Raspberry Pi's boot partition holds. The firmware, not a
// bootloader, reads it: config.txt names the kernel and initramfs, and
// cmdline.txt is the kernel command line.
type Pi struct {
	Models   []string // config.txt section filters ("pi3", "pi4", "pi5") this image serves
	Firmware []string // files from FirmwareRPiModule (Pi 5 has its firmware in EEPROM: none)
	DTBs     []string // device trees from the kernel module
	// KernelName is the kernel's file name on the boot partition; config.txt's
	// kernel= names it.
	KernelName string
}

// piDTBs lists the device trees each model family needs (every variant the
// firmware may look for: boards, keyboards, compute modules).
var piDTBs = map[string][]string{
	"pi3": {"bcm2710-rpi-2-b.dtb", "bcm2710-rpi-3-b.dtb", "bcm2710-rpi-3-b-plus.dtb", "bcm2710-rpi-cm3.dtb", "bcm2710-rpi-zero-2.dtb", "bcm2710-rpi-zero-2-w.dtb"},
	"pi4": {"bcm2711-rpi-4-b.dtb", "bcm2711-rpi-400.dtb", "bcm2711-rpi-cm4.dtb", "bcm2711-rpi-cm4-io.dtb", "bcm2711-rpi-cm4s.dtb"},
	"pi5": {"bcm2712-rpi-5-b.dtb", "bcm2712d0-rpi-5-b.dtb", "bcm2712-d-rpi-5-b.dtb", "bcm2712-rpi-500.dtb", "bcm2712-rpi-cm5-cm4io.dtb", "bcm2712-rpi-cm5-cm5io.dtb", "bcm2712-rpi-cm5l-cm4io.dtb", "bcm2712-rpi-cm5l-cm5io.dtb"},
}

var piFirmware = map[string][]string{
	"pi3": {"bootcode.bin", "start.elf", "fixup.dat"},
	"pi4": {"start4.elf", "fixup4.dat"},
	"pi5": nil,
}

// piBoard is a Raspberry Pi board for the given models: every Pi runs the
// same arm64 kernel from the MBR/FAT layout the firmware expects, with the
// screen and the primary UART (serial0, which the firmware maps per model)
// as consoles. machines are the QEMU machines that boot its images, the
// default first.
func piBoard(name, description string, machines []QEMU, models ...string) Board {
	return Board{
		Name:          name,
		Description:   description,
		Arch:          "arm64",
		Boot:          "rpi-firmware",
		Table:         "mbr",
		Console:       "serial0,115200",
		ExtraConsoles: []string{"tty1"},
		Kernel:        KernelSource{Module: KernelRPiModule, File: "vmlinuz"},
		QEMU:          machines[0],
		OtherQEMU:     machines[1:],
		Pi:            pi(machines, models...),
	}
}

func pi(machines []QEMU, models ...string) *Pi {
	p := &Pi{Models: models, KernelName: "kernel8.img"}
	for _, m := range models {
		p.Firmware = append(p.Firmware, piFirmware[m]...)
		p.DTBs = append(p.DTBs, piDTBs[m]...)
	}
	// QEMU does not run the Pi firmware: rfs run hands it the device tree
	// of the machine it emulates, which rides along (36-56 KiB) on every
	// image that machine may smoke-boot. A real Pi's firmware never loads
	// another model's tree.
	for _, q := range machines {
		if q.DTB != "" && !slices.Contains(p.DTBs, q.DTB) {
			p.DTBs = append(p.DTBs, q.DTB)
		}
	}
	return p
}

// raspi3b is QEMU's Raspberry Pi 3. Its first UART, the PL011, prints but
// takes no input under QEMU 7.2 with the Pi kernel; its second, the mini
// UART (ttyS0, the Pi 3's serial0 on GPIO 14/15 too), does both, so rfs
// wires stdio to that one.
//
// QEMU does not run the Pi firmware, so rfs run hands it kernel, DTB and
// initramfs from the image. The same arm64 Pi kernel serves every model.
func raspi3b(note string) QEMU {
	return QEMU{Binary: "qemu-system-aarch64", Machine: "raspi3b", Memory: "1G", Disk: "sd", DTB: "bcm2710-rpi-3-b.dtb", Console: "ttyS0,115200", SerialPort: 1, Note: note}
}

// raspi4b is QEMU's Raspberry Pi 4B (2 GiB, fixed), new in QEMU 9.0, wired
// like raspi3b: the console on the mini UART, the card padded to a power
// of two.
func raspi4b(note string) QEMU {
	return QEMU{Binary: "qemu-system-aarch64", Machine: "raspi4b", Memory: "2G", Disk: "sd", DTB: "bcm2711-rpi-4-b.dtb", Console: "ttyS0,115200", SerialPort: 1, Note: note, Since: "9.0"}
}

// noQEMU is a board QEMU has no model of: rfs run refuses it with note
// unless --machine names a sibling.
func noQEMU(note string) QEMU {
	return QEMU{Binary: "qemu-system-aarch64", Note: note}
}

// Board is one target machine.
type Board struct {
	Name        string
	Description string
	Arch        string // GOARCH of kernel and userland
	// Boot is how firmware reaches the kernel: "direct" (QEMU -kernel),
	// "rpi-firmware" (config.txt) or "uefi" (a UKI on the ESP).
	Boot    string
	Table   string // partition table: "gpt"
	Console string // kernel console device, e.g. ttyAMA0; the primary console
	// ExtraConsoles come before Console on the command line (the last
	// console= is /dev/console), e.g. tty1 for a screen.
	ExtraConsoles []string
	Kernel        KernelSource
	QEMU          QEMU
	// OtherQEMU are further machines rfs run --machine may boot the
	// board's images on (a Pi image as a sibling model).
	OtherQEMU []QEMU
	Pi        *Pi   // Raspberry Pi boot files; nil for other boards
	UEFI      *UEFI // UKI stub and path for Boot "uefi"; nil for other boards
}

// ovmf is Debian's OVMF (package ovmf): the 2 MiB build, or the 4 MiB one
// that newer releases ship alone; then the edk2 build that Homebrew's qemu
// ships on macOS (Apple silicon, Intel prefixes).
var ovmf = []Firmware{
	{Code: "/usr/share/OVMF/OVMF_CODE.fd", Vars: "/usr/share/OVMF/OVMF_VARS.fd"},
	{Code: "/usr/share/OVMF/OVMF_CODE_4M.fd", Vars: "/usr/share/OVMF/OVMF_VARS_4M.fd"},
	{Code: "/opt/homebrew/share/qemu/edk2-x86_64-code.fd", Vars: "/opt/homebrew/share/qemu/edk2-i386-vars.fd"},
	{Code: "/usr/local/share/qemu/edk2-x86_64-code.fd", Vars: "/usr/local/share/qemu/edk2-i386-vars.fd"},
}

// Default is the board `rfs build` uses when none is named.
const Default = "qemu-arm64"

var all = []Board{
	{
		Name:        "qemu-arm64",
		Description: "QEMU virt machine, Cortex-A72 (generic arm64)",
		Arch:        "arm64",
		Boot:        "direct",
		Table:       "gpt",
		Console:     "ttyAMA0",
		Kernel:      KernelSource{Module: KernelARM64Module, File: "vmlinuz"},
		QEMU:        QEMU{Binary: "qemu-system-aarch64", Machine: "virt", CPU: "cortex-a72", Memory: "1G", Disk: "virtio"},
	},
	{
		Name:        "qemu-amd64",
		Description: "QEMU q35 PC (amd64)",
		Arch:        "amd64",
		Boot:        "direct",
		Table:       "gpt",
		Console:     "ttyS0",
		Kernel:      KernelSource{Module: KernelAMD64Module, File: "vmlinuz"},
		QEMU:        QEMU{Binary: "qemu-system-x86_64", Machine: "q35", Memory: "1G", Disk: "virtio"},
	},
	{
		Name:          "pc",
		Description:   "PC with UEFI (amd64): USB stick or SSD; Unified Kernel Image on the ESP",
		Arch:          "amd64",
		Boot:          "uefi",
		Table:         "gpt",
		Console:       "ttyS0,115200",
		ExtraConsoles: []string{"tty0"},
		Kernel:        KernelSource{Module: KernelAMD64Module, File: "vmlinuz"},
		UEFI:          &UEFI{Stub: "/usr/lib/systemd/boot/efi/linuxx64.efi.stub", BootFile: "EFI/BOOT/BOOTX64.EFI"},
		QEMU:          QEMU{Binary: "qemu-system-x86_64", Machine: "q35", Memory: "1G", Disk: "virtio", Firmware: ovmf},
	},
	piBoard("rpi3", "Raspberry Pi 3B/3B+/Zero 2 W/CM3 (arm64)", []QEMU{raspi3b("")}, "pi3"),
	piBoard("rpi4", "Raspberry Pi 4B/400/CM4 (arm64)",
		[]QEMU{raspi4b(""), raspi3b("booting this Pi 4 image as a Pi 3 (raspi3b, Pi 3 device tree)")}, "pi4"),
	piBoard("rpi5", "Raspberry Pi 5/500/CM5 (arm64; firmware in EEPROM)", []QEMU{
		noQEMU("QEMU has no Raspberry Pi 5: smoke-boot this image as a Pi 4 with --machine raspi4b (Pi 4 device tree), or as a Pi 3 with --machine raspi3b"),
		raspi4b("QEMU has no Raspberry Pi 5: smoke-booting this image as a Pi 4 (raspi4b, Pi 4 device tree)"),
		raspi3b("QEMU has no Raspberry Pi 5: smoke-booting this image as a Pi 3 (raspi3b, Pi 3 device tree)"),
	}, "pi5"),
	piBoard("rpi", "one arm64 image for Raspberry Pi 3, 4 and 5 (config.txt sections)", []QEMU{
		raspi4b("booting as a Pi 4 (raspi4b, Pi 4 device tree); --machine raspi3b boots it as a Pi 3"),
		raspi3b("booting as a Pi 3 (raspi3b, Pi 3 device tree)"),
	}, "pi3", "pi4", "pi5"),
}

// All returns every board, sorted by name.
func All() []Board {
	out := slices.Clone(all)
	slices.SortFunc(out, func(a, b Board) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Names returns the board names, sorted.
func Names() []string {
	var names []string
	for _, b := range All() {
		names = append(names, b.Name)
	}
	return names
}

// Machine returns the QEMU machine that boots the board's images: the one
// named (rfs run --machine), or the board's default when name is empty.
func (b Board) Machine(name string) (QEMU, error) {
	if name == "" {
		if b.QEMU.Machine == "" {
			return QEMU{}, fmt.Errorf("board %s: %s", b.Name, b.QEMU.Note)
		}
		return b.QEMU, nil
	}
	for _, q := range append([]QEMU{b.QEMU}, b.OtherQEMU...) {
		if q.Machine == name {
			return q, nil
		}
	}
	return QEMU{}, fmt.Errorf("--machine %s: QEMU boots board %s's images as %s", name, b.Name, strings.Join(b.Machines(), " or "))
}

// Machines names the QEMU machines that boot the board's images, the
// default first.
func (b Board) Machines() []string {
	var names []string
	for _, q := range append([]QEMU{b.QEMU}, b.OtherQEMU...) {
		if q.Machine != "" {
			names = append(names, q.Machine)
		}
	}
	return names
}

// Lookup returns the named board.
func Lookup(name string) (Board, error) {
	for _, b := range all {
		if b.Name == name {
			return b, nil
		}
	}
	return Board{}, fmt.Errorf("unknown board %q (known: %s)", name, strings.Join(Names(), ", "))
}
