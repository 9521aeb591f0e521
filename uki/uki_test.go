package uki

import (
	"bytes"
	"debug/pe"
	"encoding/binary"
	"os"
	"strings"
	"testing"
)

// SystemStub is where Debian's systemd-boot-efi puts the x86-64 stub.
const systemStub = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"

// tinyPE is a minimal PE32+ EFI application: one .text section.
func tinyPE(t *testing.T) []byte {
	t.Helper()
	b := make([]byte, 0x600)
	le := binary.LittleEndian
	b[0], b[1] = 'M', 'Z'
	le.PutUint32(b[0x3c:], 0x40)
	copy(b[0x40:], "PE\x00\x00")
	coff := 0x44
	le.PutUint16(b[coff:], pe.IMAGE_FILE_MACHINE_AMD64)
	le.PutUint16(b[coff+2:], 1)
	le.PutUint16(b[coff+16:], 240)
	le.PutUint16(b[coff+18:], 0x206)
	opt := coff + 20
	le.PutUint16(b[opt:], 0x20b)
	le.PutUint32(b[opt+16:], 0x1000) // entry
	le.PutUint32(b[opt+32:], 0x1000) // SectionAlignment
	le.PutUint32(b[opt+36:], 0x200)  // FileAlignment
	le.PutUint32(b[opt+56:], 0x2000) // SizeOfImage
	le.PutUint32(b[opt+60:], 0x400)  // SizeOfHeaders
	le.PutUint16(b[opt+68:], 10)     // EFI application
	le.PutUint32(b[opt+108:], 16)
	sh := opt + 240
	copy(b[sh:], ".text")
	le.PutUint32(b[sh+8:], 0x10)
	le.PutUint32(b[sh+12:], 0x1000)
	le.PutUint32(b[sh+16:], 0x200)
	le.PutUint32(b[sh+20:], 0x400)
	le.PutUint32(b[sh+36:], pe.IMAGE_SCN_CNT_CODE|pe.IMAGE_SCN_MEM_EXECUTE|pe.IMAGE_SCN_MEM_READ)
	copy(b[0x400:], "\xc3 tiny text")
	return b
}

func testParts() Parts {
	kernel := bytes.Repeat([]byte("kernel!"), 100003)
	return Parts{
		OSRel:   []byte("ID=rfs\nVARIANT_ID=pc\n"),
		Cmdline: []byte("console=tty0 console=ttyS0,115200 rfs.upper=tmpfs"),
		Linux:   kernel,
		Initrd:  bytes.Repeat([]byte{0x1f, 0x8b, 7}, 33335),
	}
}

// checkUKI parses img and asserts that the stub's sections are unchanged,
// the new ones hold exactly the parts, and every section is aligned and
// disjoint in memory and in the file.
func checkUKI(t *testing.T, stub, img []byte, p Parts) {
	t.Helper()
	sf, err := pe.NewFile(bytes.NewReader(stub))
	if err != nil {
		t.Fatal(err)
	}
	f, err := pe.NewFile(bytes.NewReader(img))
	if err != nil {
		t.Fatalf("parse UKI: %v", err)
	}
	oh := f.OptionalHeader.(*pe.OptionalHeader64)
	soh := sf.OptionalHeader.(*pe.OptionalHeader64)
	if oh.AddressOfEntryPoint != soh.AddressOfEntryPoint || oh.ImageBase != soh.ImageBase || oh.Subsystem != soh.Subsystem {
		t.Error("entry point, image base or subsystem changed")
	}
	if oh.DataDirectory != soh.DataDirectory {
		t.Error("data directories changed")
	}
	want := p.Sections()
	if len(f.Sections) != len(sf.Sections)+len(want) {
		t.Fatalf("%d sections, want %d + %d", len(f.Sections), len(sf.Sections), len(want))
	}
	for i, s := range sf.Sections {
		got := f.Sections[i]
		if got.SectionHeader != s.SectionHeader {
			t.Errorf("stub section %s header changed: %+v -> %+v", s.Name, s.SectionHeader, got.SectionHeader)
		}
		a, _ := s.Data()
		b, _ := got.Data()
		if !bytes.Equal(a, b) {
			t.Errorf("stub section %s content changed", s.Name)
		}
	}
	if !bytes.Equal(img[:sf.Sections[0].Offset], stub[:sf.Sections[0].Offset]) {
		// Headers differ only where Append writes: counts, sizes, checksum and the new section headers.
		if !bytes.Equal(img[0x3c:0x40], stub[0x3c:0x40]) {
			t.Error("e_lfanew changed")
		}
	}
	secs, err := Read(img)
	if err != nil {
		t.Fatal(err)
	}
	var end, raw uint32
	for i, w := range want {
		s := f.Sections[len(sf.Sections)+i]
		if s.Name != w.Name {
			t.Errorf("section %d is %s, want %s", len(sf.Sections)+i, s.Name, w.Name)
		}
		if s.VirtualSize != uint32(len(w.Data)) {
			t.Errorf("%s: VirtualSize %d, want %d", s.Name, s.VirtualSize, len(w.Data))
		}
		if !bytes.Equal(secs[w.Name], w.Data) {
			t.Errorf("%s: content differs from the input", s.Name)
		}
		if s.Characteristics != pe.IMAGE_SCN_CNT_INITIALIZED_DATA|pe.IMAGE_SCN_MEM_READ {
			t.Errorf("%s: characteristics %#x", s.Name, s.Characteristics)
		}
		end = max(end, s.VirtualAddress+s.VirtualSize)
		raw += s.Size
	}
	if oh.SizeOfImage%oh.SectionAlignment != 0 || oh.SizeOfImage < end {
		t.Errorf("SizeOfImage %#x: not aligned to %#x or below the last section's end %#x", oh.SizeOfImage, oh.SectionAlignment, end)
	}
	if oh.SizeOfInitializedData != soh.SizeOfInitializedData+raw {
		t.Errorf("SizeOfInitializedData %#x, want %#x", oh.SizeOfInitializedData, soh.SizeOfInitializedData+raw)
	}
	// Alignment and overlap, in memory and in the file.
	for i, a := range f.Sections {
		// (systemd 252's stub places .sdmagic at 0x19100 with 0x200 alignment:
		// its own layout is not ours to judge.)
		if i >= len(sf.Sections) && a.VirtualAddress%oh.SectionAlignment != 0 {
			t.Errorf("%s: VirtualAddress %#x not aligned to %#x", a.Name, a.VirtualAddress, oh.SectionAlignment)
		}
		if i >= len(sf.Sections) && (a.Offset%oh.FileAlignment != 0 || a.Size%oh.FileAlignment != 0) {
			t.Errorf("%s: raw data %#x+%#x not aligned to %#x", a.Name, a.Offset, a.Size, oh.FileAlignment)
		}
		if int(a.Offset)+int(a.Size) > len(img) {
			t.Errorf("%s: raw data past the end of the file", a.Name)
		}
		for _, b := range f.Sections[i+1:] {
			aEnd, bEnd := a.VirtualAddress+memSize(a), b.VirtualAddress+memSize(b)
			if a.VirtualAddress < bEnd && b.VirtualAddress < aEnd {
				t.Errorf("%s and %s overlap in memory", a.Name, b.Name)
			}
			if a.Size > 0 && b.Size > 0 && a.Offset < b.Offset+b.Size && b.Offset < a.Offset+a.Size {
				t.Errorf("%s and %s overlap in the file", a.Name, b.Name)
			}
		}
	}
	if sum := checksum(img, peChecksumAt(img)); sum != oh.CheckSum {
		t.Errorf("checksum %#x, want %#x", oh.CheckSum, sum)
	}
}

// memSize is how much of the address space a section takes: VirtualSize,
// or SizeOfRawData when that is zero.
func memSize(s *pe.Section) uint32 {
	if s.VirtualSize > 0 {
		return s.VirtualSize
	}
	return s.Size
}

func peChecksumAt(b []byte) int { return int(binary.LittleEndian.Uint32(b[0x3c:])) + 24 + 64 }

func TestAppendTiny(t *testing.T) {
	stub := tinyPE(t)
	p := testParts()
	img, err := Assemble(stub, p)
	if err != nil {
		t.Fatal(err)
	}
	checkUKI(t, stub, img, p)
	again, err := Assemble(stub, p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(img, again) {
		t.Error("two assemblies of the same inputs differ")
	}
	// The stub is not modified.
	if !bytes.Equal(stub, tinyPE(t)) {
		t.Error("Assemble changed its input")
	}
	// No initrd: three sections.
	p.Initrd = nil
	img, err = Assemble(stub, p)
	if err != nil {
		t.Fatal(err)
	}
	checkUKI(t, stub, img, p)
}

func TestSystemStub(t *testing.T) {
	stub, err := os.ReadFile(systemStub)
	if err != nil {
		t.Skipf("systemd's EFI stub not installed (apt-get install systemd-boot-efi): %v", err)
	}
	// Our checksum agrees with the one the stub was shipped with.
	at := peChecksumAt(stub)
	if shipped := binary.LittleEndian.Uint32(stub[at:]); shipped != 0 {
		if got := checksum(stub, at); got != shipped {
			t.Errorf("checksum of the stub: %#x, shipped %#x", got, shipped)
		}
	}
	p := testParts()
	img, err := Assemble(stub, p)
	if err != nil {
		t.Fatal(err)
	}
	checkUKI(t, stub, img, p)
	secs, _ := Read(img)
	if _, ok := secs[".sdmagic"]; !ok {
		t.Error("the stub's .sdmagic section is gone")
	}
}

func TestErrors(t *testing.T) {
	stub := tinyPE(t)
	for name, secs := range map[string][]Section{
		"duplicate": {{".text", []byte("x")}},
		"long name": {{".toolongname", []byte("x")}},
		"empty":     {{".osrel", nil}},
		"twice":     {{".osrel", []byte("a")}, {".osrel", []byte("b")}},
	} {
		if _, err := Append(stub, secs); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := Assemble(stub, Parts{OSRel: []byte("x")}); err == nil || !strings.Contains(err.Error(), "kernel") {
		t.Errorf("no kernel: %v", err)
	}
	if _, err := Append([]byte("not a PE file at all, not at all"), nil); err == nil {
		t.Error("garbage stub: no error")
	}
	// A header area that is full.
	full := tinyPE(t)
	binary.LittleEndian.PutUint32(full[0x44+20+60:], 0x198) // SizeOfHeaders: room for one more section header
	if _, err := Append(full, []Section{{".osrel", []byte("x")}}); err != nil {
		t.Errorf("one more section: %v", err)
	}
	if _, err := Append(full, []Section{{".osrel", []byte("x")}, {".cmdline", []byte("y")}}); err == nil || !strings.Contains(err.Error(), "room") {
		t.Errorf("full headers: %v", err)
	}
}
