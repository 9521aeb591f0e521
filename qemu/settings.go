package qemu

import (
	"errors"
	"fmt"
	"strings"

	"github.com/rfsbuild/rfs/image"
)

// Bounds of rfs run's guest memory.
const (
	MinMemory = 64 * image.MiB // the initramfs and a tmpfs upper need room
	MaxMemory = 1 << 40
)

// fixedMemory is the memory of QEMU machines that accept no other size
// (the model's; QEMU refuses any other -m).
var fixedMemory = map[string]int64{"raspi3b": 1 << 30, "raspi4b": 2 << 30}

// ParseMemory reads rfs run --memory (a size as image.ParseSize reads it,
// a whole number of MiB) and returns QEMU's -m value. A bare number is
// bytes here, while QEMU would read MiB: converting removes the doubt.
// QEMU's Raspberry Pi machines have a fixed memory size.
func ParseMemory(s, machine string) (string, error) {
	n, err := image.ParseSize(s)
	if err != nil {
		return "", fmt.Errorf("--memory %q: %w", s, err)
	}
	if n%image.MiB != 0 || n < MinMemory || n > MaxMemory {
		return "", fmt.Errorf("--memory %q: want a whole number of MiB from 64M to 1T, e.g. 512M or 2G (a bare number is bytes)", s)
	}
	// QEMU would try to allocate whatever it is given.
	if host := hostMemory(); n > host {
		return "", fmt.Errorf("--memory %q: more than this host's memory (%dM)", s, host/image.MiB)
	}
	if want, ok := fixedMemory[machine]; ok && n != want {
		return "", fmt.Errorf("--memory %q: QEMU's %s machine has exactly %dG", s, machine, want>>30)
	}
	return fmt.Sprintf("%dM", n/image.MiB), nil
}

// CheckAppend checks extra, the parameters rfs run --append adds to
// c.Append: printable text (tabs allowed), balanced double quotes, and
// the whole command line within the kernel's COMMAND_LINE_SIZE (2048
// bytes with its NUL on arm64 and x86).
func (c Config) CheckAppend(extra string) error {
	if i := strings.IndexFunc(extra, func(r rune) bool { return (r < 0x20 && r != '\t') || r == 0x7f }); i >= 0 {
		return fmt.Errorf("--append: control character %q at byte %d: the kernel command line is one line of text", extra[i], i)
	}
	if strings.Count(extra, `"`)%2 != 0 {
		return errors.New("--append: unbalanced double quote (the kernel would read the rest of the line as one value)")
	}
	if n := len(c.Append); n > 2047 {
		return fmt.Errorf("--append: the kernel command line would be %d bytes (the image's plus yours), the limit is 2047", n)
	}
	return nil
}

// driveValue escapes a file name for a QEMU option list (-drive
// file=...): a comma is doubled, or it would start another option.
func driveValue(s string) string { return strings.ReplaceAll(s, ",", ",,") }
