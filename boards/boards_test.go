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
