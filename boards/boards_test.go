package boards

import (
	"slices"
	"strings"
	"testing"
)

func TestLookup(t *testing.T) {
	for _, name := range Names() {
		b, err := Lookup(name)
		if err != nil {
			t.Fatalf("Lookup(%q): %v", name, err)
		}
		if b.Arch == "" || b.Console == "" || b.QEMU.Binary == "" || b.Kernel.Module.Sum == "" {
			t.Errorf("board %s is incomplete: %+v", name, b)
		}
	}
	if _, err := Lookup(Default); err != nil {
		t.Fatalf("default board: %v", err)
	}
	_, err := Lookup("rpi9")
	if err == nil || !strings.Contains(err.Error(), "qemu-arm64") {
		t.Fatalf("Lookup(rpi9) = %v, want an error listing the known boards", err)
	}
}

// TestUEFIBoards: a UEFI board says where its stub and UKI go and which
// firmware QEMU boots, and only UEFI boards do.
func TestUEFIBoards(t *testing.T) {
	for _, b := range All() {
		if (b.Boot == "uefi") != (b.UEFI != nil) {
			t.Errorf("%s: Boot %q but UEFI %+v", b.Name, b.Boot, b.UEFI)
		}
		if b.UEFI == nil {
			continue
		}
		if b.UEFI.Stub == "" || !strings.HasPrefix(b.UEFI.BootFile, "EFI/BOOT/BOOT") || !strings.HasSuffix(b.UEFI.BootFile, ".EFI") {
			t.Errorf("%s: UEFI %+v", b.Name, b.UEFI)
		}
		if len(b.QEMU.Firmware) == 0 || b.Table != "gpt" {
			t.Errorf("%s: a UEFI board needs GPT and QEMU firmware", b.Name)
		}
	}
	if _, err := Lookup("pc"); err != nil {
		t.Fatal(err)
	}
}

// TestMachine: rfs run --machine picks among the QEMU machines a board
// offers; a Pi 5 has no default (QEMU has no model of it), and every
// machine's device tree is on the board's images.
func TestMachine(t *testing.T) {
	for _, tt := range []struct{ board, name, want, err string }{
		{"rpi3", "", "raspi3b", ""},
		{"rpi3", "raspi3b", "raspi3b", ""},
		{"rpi3", "raspi4b", "", "as raspi3b"},
		{"rpi4", "", "raspi4b", ""},
		{"rpi4", "raspi3b", "raspi3b", ""},
		{"rpi", "", "raspi4b", ""},
		{"rpi", "raspi3b", "raspi3b", ""},
		{"rpi5", "", "", "--machine raspi4b"},
		{"rpi5", "raspi4b", "raspi4b", ""},
		{"rpi5", "raspi5", "", "as raspi4b or raspi3b"},
		{"qemu-arm64", "", "virt", ""},
		{"qemu-arm64", "raspi4b", "", "as virt"},
	} {
		b, err := Lookup(tt.board)
		if err != nil {
			t.Fatal(err)
		}
		q, err := b.Machine(tt.name)
		if tt.err == "" && (err != nil || q.Machine != tt.want) || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%s.Machine(%q) = %q, %v; want %q, %q", tt.board, tt.name, q.Machine, err, tt.want, tt.err)
		}
	}
	for _, b := range All() {
		for _, q := range append([]QEMU{b.QEMU}, b.OtherQEMU...) {
			if q.DTB != "" && (b.Pi == nil || !slices.Contains(b.Pi.DTBs, q.DTB)) {
				t.Errorf("%s: QEMU %s's device tree %s is not on the image", b.Name, q.Machine, q.DTB)
			}
		}
	}
}
