package qemu

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/boards"
)

func TestHasMachine(t *testing.T) {
	help := []byte("Supported machines are:\nraspi3b              Raspberry Pi 3B (revision 1.2)\nraspi4b              Raspberry Pi 4B (revision 1.5)\nvirt                 QEMU 10.0 ARM Virtual Machine (alias of virt-10.0)\n")
	for name, want := range map[string]bool{"raspi4b": true, "raspi3b": true, "virt": true, "raspi4": false, "Raspberry": false, "raspi5b": false} {
		if got := hasMachine(help, name); got != want {
			t.Errorf("hasMachine(%q) = %v", name, got)
		}
	}
}

// TestCheckMachine: a QEMU without the board's newer machine is refused
// with the version it is and where a newer one comes from.
func TestCheckMachine(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("a shell script stands in for QEMU")
	}
	dir := t.TempDir()
	fake := filepath.Join(dir, "qemu-system-aarch64")
	script := "#!/bin/sh\ncase $1 in -version) echo 'QEMU emulator version 7.2.22 (Debian)';; *) printf 'Supported machines are:\\nraspi3b   Raspberry Pi 3B\\nvirt  Virt\\n';; esac\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	pi4, _ := boards.Lookup("rpi4")
	q, _ := pi4.Machine("")
	q.Binary = fake
	err := checkMachine(q)
	if !errors.Is(err, ErrNoMachine) || !strings.Contains(err.Error(), "is QEMU 7.2.22, which has no raspi4b machine") || !strings.Contains(err.Error(), "bookworm-backports") {
		t.Errorf("checkMachine on QEMU 7.2 = %v", err)
	}
	q, _ = pi4.Machine("raspi3b")
	q.Binary = fake
	if err := checkMachine(q); err != nil {
		t.Errorf("raspi3b: %v", err)
	}
	if err := (Config{QEMU: boards.QEMU{Binary: fake, Machine: "raspi4b", Since: "9.0"}, Arch: "arm64"}).Check(); !errors.Is(err, ErrNoMachine) {
		t.Errorf("Check = %v", err)
	}
}
