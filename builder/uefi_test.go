package builder

import (
	"bytes"
	"context"
	"debug/pe"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/uki"
)

// TestBuildUEFI checks the pc board's ESP: the UKI at the removable-media
// path parses as a PE image whose sections are exactly the kernel, the
// initramfs and the command line next to it and the lower's os-release;
// and two builds are byte-identical.
func TestBuildUEFI(t *testing.T) {
	c := config(t, "pc")
	res := build(t, c)
	_, boot := openBoot(t, res.Path)
	if boot.Meta.KernelFile != "EFI/BOOT/BOOTX64.EFI" {
		t.Errorf("rfs.json kernel_file = %q", boot.Meta.KernelFile)
	}
	if !strings.HasPrefix(boot.Cmdline, "console=tty0 console=ttyS0,115200 rfs.root=PARTUUID=") {
		t.Errorf("cmdline %q: want the screen and then the serial port (the last console is /dev/console)", boot.Cmdline)
	}
	img := boot.Kernel // ReadBoot reads kernel_file: the UKI
	f, err := pe.NewFile(bytes.NewReader(img))
	if err != nil {
		t.Fatalf("BOOTX64.EFI: %v", err)
	}
	if f.FileHeader.Machine != pe.IMAGE_FILE_MACHINE_AMD64 {
		t.Errorf("machine %#x", f.FileHeader.Machine)
	}
	if oh := f.OptionalHeader.(*pe.OptionalHeader64); oh.Subsystem != pe.IMAGE_SUBSYSTEM_EFI_APPLICATION {
		t.Errorf("subsystem %d, want an EFI application", oh.Subsystem)
	}
	f.Close()
	secs, err := uki.Read(img)
	if err != nil {
		t.Fatal(err)
	}
	kernel, err := c.Fetcher.Download(context.Background(), c.Board.Kernel.Module)
	if err != nil {
		t.Fatal(err)
	}
	kbytes, err := os.ReadFile(filepath.Join(kernel, c.Board.Kernel.File))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(secs[uki.Linux], kbytes) {
		t.Error(".linux is not the board's kernel")
	}
	if !bytes.Equal(secs[uki.Initrd], boot.Initrd) {
		t.Error(".initrd is not the ESP's initramfs.img")
	}
	if string(secs[uki.Cmdline]) != boot.Cmdline {
		t.Errorf(".cmdline %q, cmdline.txt %q", secs[uki.Cmdline], boot.Cmdline)
	}
	osrel := string(secs[uki.OSRel])
	for _, want := range []string{"ID=rfs\n", "VARIANT_ID=pc\n", "BUILD_ID=" + res.BuildID + "\n"} {
		if !strings.Contains(osrel, want) {
			t.Errorf(".osrel lacks %q:\n%s", want, osrel)
		}
	}
	stub, err := os.ReadFile(c.Board.UEFI.Stub)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := secs[".sdmagic"]; !ok || !bytes.HasPrefix(img, stub[:0x80]) {
		t.Error("the UKI does not start with the stub")
	}

	// Deterministic.
	c.Output = filepath.Join(t.TempDir(), "again.img")
	again := build(t, c)
	a, _ := os.ReadFile(res.Path)
	b, _ := os.ReadFile(again.Path)
	if !bytes.Equal(a, b) {
		t.Error("two builds of pc differ")
	}

	// The stub is an input: another stub, another build.
	other := filepath.Join(t.TempDir(), "stub.efi")
	if err := os.WriteFile(other, append(stub, 0), 0o644); err != nil {
		t.Fatal(err)
	}
	c.EFIStub = other
	c.Output = filepath.Join(t.TempDir(), "other.img")
	if o := build(t, c); o.BuildID == res.BuildID {
		t.Error("another EFI stub gave the same build ID")
	}
}

func TestBuildUEFIStubErrors(t *testing.T) {
	c := config(t, "pc")
	c.EFIStub = filepath.Join(t.TempDir(), "missing.efi.stub")
	if _, err := Build(context.Background(), c); err == nil || !strings.Contains(err.Error(), "systemd-boot-efi") {
		t.Errorf("missing stub: %v", err)
	}
	notPE := filepath.Join(t.TempDir(), "stub")
	os.WriteFile(notPE, []byte("not a PE file, just text, long enough to be read"), 0o644)
	c.EFIStub = notPE
	c.Output = filepath.Join(t.TempDir(), "x.img")
	if _, err := Build(context.Background(), c); err == nil || !strings.Contains(err.Error(), "EFI stub") {
		t.Errorf("not a PE stub: %v", err)
	}
	if _, err := os.Stat(c.Output); err == nil {
		t.Error("an image was written with a bad stub")
	}
}
