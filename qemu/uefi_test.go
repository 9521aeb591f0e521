package qemu

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/boards"
	"github.com/rfsbuild/rfs/builder"
	"github.com/rfsbuild/rfs/rootfs"
)

func TestArgsUEFI(t *testing.T) {
	b, _ := boards.Lookup("pc")
	c := Config{QEMU: b.QEMU, Arch: b.Arch, FirmwareCode: "/fw/CODE.fd", FirmwareVars: "/tmp/x/VARS.fd",
		UKI: "/tmp/x/uki.efi", ImageCmdline: "console=ttyS0 rfs.upper=tmpfs", Append: "console=ttyS0 rfs.upper=tmpfs", Disk: "/d.img"}
	got := strings.Join(c.Args(), " ")
	for _, want := range []string{
		"-machine q35", "-drive if=pflash,format=raw,readonly=on,file=/fw/CODE.fd -drive if=pflash,format=raw,file=/tmp/x/VARS.fd",
		"-drive file=/d.img,format=raw,if=virtio,snapshot=on",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("args %q lack %q", got, want)
		}
	}
	for _, bad := range []string{"-kernel", "-initrd", "-append"} {
		if strings.Contains(got, bad) {
			t.Errorf("UEFI boot from disk has %s: %q", bad, got)
		}
	}
	// Extra parameters: the UKI goes to the firmware's kernel loader.
	c.Append += " rfs.shell"
	got = strings.Join(c.Args(), " ")
	if !strings.Contains(got, "-kernel /tmp/x/uki.efi -append console=ttyS0 rfs.upper=tmpfs rfs.shell") || strings.Contains(got, "-initrd") {
		t.Errorf("UEFI with --append: %q", got)
	}
}

// TestForImageUEFI: rfs run on a pc image boots OVMF with a private copy
// of the variable store and no kernel of its own.
func TestForImageUEFI(t *testing.T) {
	b, _ := boards.Lookup("pc")
	if _, err := os.Stat(b.UEFI.Stub); err != nil {
		t.Skipf("EFI stub not installed (apt-get install systemd-boot-efi): %v", err)
	}
	fw, err := findFirmware(b.QEMU.Firmware)
	if err != nil {
		t.Skip(err)
	}
	img := filepath.Join(t.TempDir(), "pc.img")
	if _, err := builder.Build(context.Background(), builder.Config{Board: b, Output: img, Epoch: builder.DefaultEpoch, Owner: &rootfs.Owner{}}); err != nil {
		if strings.Contains(err.Error(), "module proxy") {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	dir := t.TempDir()
	c, board, err := ForImage(img, dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if board.Name != "pc" || c.Kernel != "" || c.FirmwareCode != fw.Code {
		t.Errorf("config %+v", c)
	}
	// The guest MAC is the image's: the same boot after boot.
	if c2, _, err := ForImage(img, t.TempDir(), false); err != nil || c.Net.MAC == "" || c2.Net.MAC != c.Net.MAC {
		t.Errorf("guest MAC %q, then %q (%v)", c.Net.MAC, c2.Net.MAC, err)
	}
	if filepath.Dir(c.FirmwareVars) != dir || c.FirmwareVars == fw.Vars {
		t.Errorf("variable store %s is not a private copy in %s", c.FirmwareVars, dir)
	}
	a, _ := os.ReadFile(fw.Vars)
	v, err := os.ReadFile(c.FirmwareVars)
	if err != nil || !bytes.Equal(a, v) {
		t.Errorf("variable store copy differs from %s: %v", fw.Vars, err)
	}
	if f, err := os.OpenFile(c.FirmwareVars, os.O_WRONLY, 0); err != nil {
		t.Errorf("variable store copy is not writable: %v", err)
	} else {
		f.Close()
	}
	args := strings.Join(c.Args(), " ")
	if strings.Contains(args, "-kernel") || !strings.Contains(args, "readonly=on,file="+fw.Code) {
		t.Errorf("args %q", args)
	}
	if _, err := findFirmware([]boards.Firmware{{Code: "/nonexistent/CODE.fd", Vars: "/nonexistent/VARS.fd"}}); err == nil || !strings.Contains(err.Error(), "apt-get install ovmf") {
		t.Errorf("missing firmware: %v", err)
	}
}
