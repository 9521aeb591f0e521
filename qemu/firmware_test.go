package qemu

import (
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rfsbuild/rfs/boards"
	"github.com/rfsbuild/rfs/builder"
	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/image/imagetest"
	"github.com/rfsbuild/rfs/rootfs"
	"github.com/rfsbuild/rfs/slots"
)

// slottedARM64 builds a qemu-arm64 image and gives it two slots, a and
// b, holding the image's boot files (instead of its top level); slot b's
// command line also says rfs.slot=b, so the guest shows which slot it
// booted. Slot a is committed; with trial, the tryboot flag is set. The
// boot partition, sized for one kernel, holds two gzipped (QEMU unpacks
// an arm64 kernel).
func slottedARM64(t *testing.T, trial bool) string {
	t.Helper()
	b, _ := boards.Lookup("qemu-arm64")
	if _, err := exec.LookPath(b.QEMU.Binary); err != nil {
		t.Skipf("%s not installed (apt-get install qemu-system-arm)", b.QEMU.Binary)
	}
	path := filepath.Join(t.TempDir(), "qemu-arm64.img")
	if _, err := builder.Build(context.Background(), builder.Config{Board: b, Output: path, Epoch: builder.DefaultEpoch, Owner: &rootfs.Owner{}}); err != nil {
		if strings.Contains(err.Error(), "module proxy") {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	img, err := image.OpenImage(path)
	if err != nil {
		t.Fatal(err)
	}
	boot, err := img.ReadBoot()
	img.Close()
	if err != nil {
		t.Fatal(err)
	}
	kernel := gzipped(t, boot.Kernel)
	edit := map[string][]byte{
		slots.FirmwareFile: slots.FirmwareContent(slots.A),
		image.KernelFile:   nil, image.InitrdFile: nil, image.CmdlineFile: nil,
	}
	for _, s := range []string{slots.A, slots.B} {
		cmdline := boot.Cmdline
		if s == slots.B {
			cmdline += " rfs.slot=b"
		}
		edit[slots.Dir(s)+image.KernelFile] = kernel
		edit[slots.Dir(s)+image.InitrdFile] = boot.Initrd
		edit[slots.Dir(s)+image.CmdlineFile] = []byte(cmdline + "\n")
	}
	if trial {
		edit[slots.TrybootFile] = []byte{}
	}
	imagetest.EditBoot(t, path, edit)
	return path
}

func gzipped(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	z, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if _, err := z.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestFirmwareReboot: a trial boots slot b once (the tryboot flag
// consumed), the guest's reboot powers up again on the committed slot a,
// the guest's power-off ends the run, and the image stays as built.
func TestFirmwareReboot(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU twice; skipped in -short mode")
	}
	path := slottedARM64(t, true)
	dir := t.TempDir()
	c, _, err := ForImage(path, dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if c.Firmware == nil || c.Firmware.Choice != (Choice{Slot: "b", Trial: true}) || !strings.Contains(c.Append, "rfs.slot=b") {
		t.Fatalf("ForImage: firmware %+v, append %q", c.Firmware, c.Append)
	}
	var notes strings.Builder
	c.Firmware.Log = &notes
	logf, err := os.Create(filepath.Join(dir, "console.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	vm, err := Start(context.Background(), c, logf)
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	defer func() {
		if t.Failed() {
			t.Logf("console:\n%s", vm.Output())
		}
	}()
	if got := cmdlineOf(t, vm); !strings.Contains(got, "rfs.slot=b") {
		t.Fatalf("first boot's command line %q lacks rfs.slot=b", got)
	}
	if err := vm.Send("reboot\n"); err != nil {
		t.Fatal(err)
	}
	if got := cmdlineOf(t, vm); strings.Contains(got, "rfs.slot=b") {
		t.Fatalf("second boot's command line %q is slot b's", got)
	}
	if got := vm.Boots(); !slices.Equal(got, []string{"b", "a"}) {
		t.Errorf("boots %q, want [b a]", got)
	}
	if err := vm.Send("poweroff\n"); err != nil {
		t.Fatal(err)
	}
	if err := vm.Wait(60 * time.Second); err != nil {
		t.Fatalf("after poweroff: %v", err)
	}
	if got := vm.Boots(); len(got) != 2 {
		t.Errorf("boots after the power-off %q", got)
	}
	if want := "rfs: booting slot b (trial)\nrfs: booting slot a\n"; notes.String() != want {
		t.Errorf("firmware lines %q, want %q", notes.String(), want)
	}
	if !trybootSet(t, path) {
		t.Error("the image's tryboot flag was consumed: only the run's copy may change")
	}
}

// cmdlineOf waits for a shell after a boot and returns the kernel's
// command line.
func cmdlineOf(t *testing.T, vm *VM) string {
	t.Helper()
	if _, err := vm.Expect(regexp.MustCompile(`rfs: overlay ready`), 180*time.Second); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := vm.Run("cat /proc/cmdline", 5*time.Second)
		if err == nil {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("no shell: %v", err)
		}
	}
}
