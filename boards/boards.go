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
	Binary  string   // e.g. qemu-system-aarch64
	Machine string   // -machine value
	CPU     string   // -cpu value, empty for the default
	Memory  string   // -m value
	Disk    string   // how the image is attached: "virtio"
	Extra   []string // further arguments
}

// Board is one target machine.
type Board struct {
	Name        string
	Description string
	Arch        string // GOARCH of kernel and userland
	Boot        string // how firmware reaches the kernel: "direct" (QEMU -kernel)
	Table       string // partition table: "gpt"
	Console     string // kernel console device, e.g. ttyAMA0
	Kernel      KernelSource
	QEMU        QEMU
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

// Lookup returns the named board.
func Lookup(name string) (Board, error) {
	for _, b := range all {
		if b.Name == name {
			return b, nil
		}
	}
	return Board{}, fmt.Errorf("unknown board %q (known: %s)", name, strings.Join(Names(), ", "))
}
