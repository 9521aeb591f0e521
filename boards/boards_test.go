package boards

import (
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
