// Package uki assembles Unified Kernel Images: an EFI stub (systemd's
// linuxx64.efi.stub) with the kernel, initramfs, command line and
// os-release appended as PE sections. Firmware boots the result like any
// EFI application; the stub finds its sections in its own loaded image and
// starts the kernel with them.
//
// Sections are added in Go, without objcopy or ukify: each new section is
// placed after the stub's last one at the next multiple of the image's
// SectionAlignment, its raw data after the end of the stub's file at the
// next multiple of FileAlignment; NumberOfSections, SizeOfImage,
// SizeOfInitializedData and the checksum are updated. The stub's own bytes
// are not moved, and the output is a function of the inputs only.
package uki

import (
	"bytes"
	"debug/pe"
	"encoding/binary"
	"errors"
	"fmt"
)

// Section names the systemd stub reads.
const (
	OSRel   = ".osrel"
	Cmdline = ".cmdline"
	Linux   = ".linux"
	Initrd  = ".initrd"
)

// Section is one PE section to append.
type Section struct {
	Name string // at most 8 bytes, e.g. ".linux"
	Data []byte
}

// Parts are the contents of a UKI.
type Parts struct {
	OSRel   []byte // os-release of the booted system
	Cmdline []byte // kernel command line
	Linux   []byte // the kernel (an EFI-stub bzImage or arm64 Image)
	Initrd  []byte // the initramfs; may be empty
}

// Sections returns the parts in the order they are appended: .osrel,
// .cmdline, .linux, .initrd (empty parts are left out).
func (p Parts) Sections() []Section {
	var out []Section
	for _, s := range []Section{{OSRel, p.OSRel}, {Cmdline, p.Cmdline}, {Linux, p.Linux}, {Initrd, p.Initrd}} {
		if len(s.Data) > 0 {
			out = append(out, s)
		}
	}
	return out
}

// Assemble returns the stub with p's sections appended.
func Assemble(stub []byte, p Parts) ([]byte, error) {
	if len(p.Linux) == 0 {
		return nil, errors.New("uki: no kernel")
	}
	return Append(stub, p.Sections())
}

// Characteristics of the appended sections: initialized, read-only data.
const dataSection = pe.IMAGE_SCN_CNT_INITIALIZED_DATA | pe.IMAGE_SCN_MEM_READ

const sectionHeaderSize = 40

// Append returns a copy of the PE image stub with the sections appended.
func Append(stub []byte, sections []Section) ([]byte, error) {
	f, err := pe.NewFile(bytes.NewReader(stub))
	if err != nil {
		return nil, fmt.Errorf("uki: stub: %w", err)
	}
	defer f.Close()
	var sectAlign, fileAlign, sizeOfHeaders, sizeOfImage uint32
	switch oh := f.OptionalHeader.(type) {
	case *pe.OptionalHeader64:
		sectAlign, fileAlign, sizeOfHeaders, sizeOfImage = oh.SectionAlignment, oh.FileAlignment, oh.SizeOfHeaders, oh.SizeOfImage
	case *pe.OptionalHeader32:
		sectAlign, fileAlign, sizeOfHeaders, sizeOfImage = oh.SectionAlignment, oh.FileAlignment, oh.SizeOfHeaders, oh.SizeOfImage
	default:
		return nil, errors.New("uki: stub has no optional header (not an executable)")
	}
	if !pow2(sectAlign) || !pow2(fileAlign) {
		return nil, fmt.Errorf("uki: stub: bad alignments (section %#x, file %#x)", sectAlign, fileAlign)
	}

	// Where the headers are (debug/pe hides the offsets).
	lfanew := int(binary.LittleEndian.Uint32(stub[0x3c:]))
	coff := lfanew + 4
	opt := coff + 20
	table := opt + int(f.FileHeader.SizeOfOptionalHeader)
	n := len(f.Sections)
	tableEnd := table + sectionHeaderSize*(n+len(sections))

	// The new headers must fit between the section table and the first
	// section's data, inside SizeOfHeaders.
	room := int(sizeOfHeaders)
	var vEnd uint32 // end of the stub's sections in memory
	for _, s := range f.Sections {
		if s.Size > 0 && int(s.Offset) < room {
			room = int(s.Offset)
		}
		size := max(s.VirtualSize, s.Size)
		vEnd = max(vEnd, s.VirtualAddress+size)
	}
	if tableEnd > room {
		return nil, fmt.Errorf("uki: stub's headers have room for %d more sections, want %d", (room-table)/sectionHeaderSize-n, len(sections))
	}
	for _, b := range stub[table+sectionHeaderSize*n : tableEnd] {
		if b != 0 {
			return nil, errors.New("uki: stub: bytes after the section table are in use")
		}
	}

	existing := map[string]bool{}
	for _, s := range f.Sections {
		existing[s.Name] = true
	}
	va := alignUp(max(vEnd, sizeOfImage), sectAlign)
	off := alignUp(uint32(len(stub)), fileAlign)
	out := make([]byte, off, int(off)+len(sections)*int(fileAlign)+totalSize(sections))
	copy(out, stub)
	var addedRaw uint32
	for i, s := range sections {
		if len(s.Name) == 0 || len(s.Name) > 8 {
			return nil, fmt.Errorf("uki: section name %q: want 1 to 8 bytes", s.Name)
		}
		if existing[s.Name] {
			return nil, fmt.Errorf("uki: the stub already has a %s section", s.Name)
		}
		existing[s.Name] = true
		if len(s.Data) == 0 {
			return nil, fmt.Errorf("uki: section %s is empty", s.Name)
		}
		if uint64(len(s.Data)) > 1<<31 {
			return nil, fmt.Errorf("uki: section %s is too big (%d bytes)", s.Name, len(s.Data))
		}
		size := uint32(len(s.Data))
		raw := alignUp(size, fileAlign)
		h := out[table+sectionHeaderSize*(n+i):]
		copy(h[:8], s.Name)
		binary.LittleEndian.PutUint32(h[8:], size) // VirtualSize: the exact content
		binary.LittleEndian.PutUint32(h[12:], va)  // VirtualAddress
		binary.LittleEndian.PutUint32(h[16:], raw) // SizeOfRawData
		binary.LittleEndian.PutUint32(h[20:], off) // PointerToRawData
		binary.LittleEndian.PutUint32(h[36:], dataSection)
		out = append(out, s.Data...)
		out = append(out, make([]byte, raw-size)...)
		if uint64(va)+uint64(size) > 1<<32-uint64(sectAlign) || uint64(off)+uint64(raw) > 1<<32 {
			return nil, errors.New("uki: image would exceed 4 GiB")
		}
		va = alignUp(va+size, sectAlign)
		off += raw
		addedRaw += raw
	}

	le := binary.LittleEndian
	le.PutUint16(out[coff+2:], uint16(n+len(sections)))        // NumberOfSections
	le.PutUint32(out[opt+8:], le.Uint32(out[opt+8:])+addedRaw) // SizeOfInitializedData
	le.PutUint32(out[opt+56:], va)                             // SizeOfImage: a multiple of SectionAlignment
	le.PutUint32(out[opt+64:], 0)
	le.PutUint32(out[opt+64:], checksum(out, opt+64))
	return out, nil
}

// Read returns the contents of a PE image's sections by name, each cut to
// its VirtualSize (the stub reads them that way).
func Read(img []byte) (map[string][]byte, error) {
	f, err := pe.NewFile(bytes.NewReader(img))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string][]byte{}
	for _, s := range f.Sections {
		data, err := s.Data()
		if err != nil {
			return nil, fmt.Errorf("section %s: %w", s.Name, err)
		}
		if s.VirtualSize > 0 && int(s.VirtualSize) < len(data) {
			data = data[:s.VirtualSize]
		}
		out[s.Name] = data
	}
	return out, nil
}

// checksum is the PE image checksum (as IMAGE_HLP's CheckSumMappedFile):
// the 16-bit one's-complement-style sum of the file with the checksum
// field (at at) counted as zero, plus the file's length.
func checksum(b []byte, at int) uint32 {
	var sum uint64
	for i := 0; i+1 < len(b); i += 2 {
		if i == at || i == at+2 {
			continue
		}
		sum += uint64(binary.LittleEndian.Uint16(b[i:]))
		sum = (sum & 0xffff) + (sum >> 16)
	}
	if len(b)%2 == 1 {
		sum += uint64(b[len(b)-1])
		sum = (sum & 0xffff) + (sum >> 16)
	}
	sum = (sum & 0xffff) + (sum >> 16)
	return uint32(sum) + uint32(len(b))
}

func totalSize(ss []Section) int {
	n := 0
	for _, s := range ss {
		n += len(s.Data)
	}
	return n
}

func pow2(x uint32) bool { return x != 0 && x&(x-1) == 0 }

func alignUp(x, a uint32) uint32 { return (x + a - 1) &^ (a - 1) }

// machines maps GOARCH to the PE machine type of EFI binaries for it.
var machines = map[string]uint16{
	"amd64": pe.IMAGE_FILE_MACHINE_AMD64,
	"arm64": pe.IMAGE_FILE_MACHINE_ARM64,
	"386":   pe.IMAGE_FILE_MACHINE_I386,
	"arm":   pe.IMAGE_FILE_MACHINE_ARMNT,
}

// CheckArch reports whether stub is a PE image for the architecture goarch.
func CheckArch(stub []byte, goarch string) error {
	f, err := pe.NewFile(bytes.NewReader(stub))
	if err != nil {
		return fmt.Errorf("not a PE image: %w", err)
	}
	defer f.Close()
	want, ok := machines[goarch]
	if !ok {
		return fmt.Errorf("no EFI machine type known for %s", goarch)
	}
	if f.FileHeader.Machine != want {
		for arch, m := range machines {
			if m == f.FileHeader.Machine {
				return fmt.Errorf("stub is for %s, the board is %s", arch, goarch)
			}
		}
		return fmt.Errorf("stub has machine type %#x, want %#x (%s)", f.FileHeader.Machine, want, goarch)
	}
	return nil
}
