// Package kernel recognises Linux kernel image formats from their headers, so
// a wrong-architecture kernel is refused before an image is written rather
// than found out at boot.
package kernel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/rfsbuild/rfs/infile"
)

// Format is the boot format of a kernel image.
type Format string

const (
	ARM64Image Format = "arm64 Image" // Documentation/arch/arm64/booting.rst
	BzImage    Format = "x86 bzImage" // Documentation/arch/x86/boot.rst
	ARMzImage  Format = "arm zImage"
)

// Arch returns the Go architecture name a format boots.
func (f Format) Arch() string {
	switch f {
	case ARM64Image:
		return "arm64"
	case BzImage:
		return "amd64"
	case ARMzImage:
		return "arm"
	}
	return ""
}

// ErrUnknown is returned for files that are no kernel image we recognise.
var ErrUnknown = errors.New("not a recognised Linux kernel image (arm64 Image, x86 bzImage or arm zImage)")

// Detect reads the header of a kernel image.
func Detect(r io.ReaderAt) (Format, error) {
	var hdr [0x240]byte
	n, err := r.ReadAt(hdr[:], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	b := hdr[:n]
	switch {
	case len(b) >= 0x40 && string(b[0x38:0x3c]) == "ARM\x64":
		return ARM64Image, nil
	case len(b) >= 0x237 && string(b[0x202:0x206]) == "HdrS":
		// Boot protocol 2.12 added xloadflags; bit 0 says the kernel has a
		// 64-bit entry point. Older or 32-bit kernels cannot boot an amd64 userland.
		version := binary.LittleEndian.Uint16(b[0x206:])
		if version < 0x020c || b[0x236]&1 == 0 {
			return "", errors.New("x86 bzImage without a 64-bit entry point (32-bit kernel or boot protocol < 2.12)")
		}
		return BzImage, nil
	case len(b) >= 0x28 && binary.LittleEndian.Uint32(b[0x24:]) == 0x016f2818:
		return ARMzImage, nil
	}
	return "", ErrUnknown
}

// Check verifies that the kernel file at path boots on arch (GOARCH naming).
func Check(path, arch string) (Format, error) {
	f, err := infile.Open("kernel", path)
	if err != nil {
		return "", fmt.Errorf("open kernel: %w", err)
	}
	defer f.Close()
	format, err := Detect(f)
	if err != nil {
		return "", fmt.Errorf("kernel %s: %w", path, err)
	}
	if format.Arch() != arch {
		return "", fmt.Errorf("kernel %s is an %s (%s) but the board is %s: use a kernel built for %s", path, format, format.Arch(), arch, arch)
	}
	return format, nil
}
