package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/builder"
	"github.com/rfsbuild/rfs/bundle"
	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/qemu"
	"github.com/rfsbuild/rfs/slots"
)

// TestUpdatePi3 is a field update of a Raspberry Pi 3 image on QEMU's
// raspi3b: rfs update writes a signed v2 from an OCI layout into slot b
// of a v1 image; at its boot the init arms the trial by pointing
// config.txt at slot b (a Pi 3's firmware has no tryboot flag) and
// reboots; rfs run, playing the Pi firmware, boots slot b from
// config.txt's os_prefix; its health check commits it, which leaves
// config.txt on slot-b/ and tryboot.txt on slot-a/.
func TestUpdatePi3(t *testing.T) {
	testUpdatePi(t, "rpi3", "raspi3b", slots.FirmwareRPiSwitch)
}

// TestUpdatePi4 is TestUpdatePi3 on a Pi 4 (QEMU's raspi4b): the init
// arms the trial with the tryboot flag (the flag file for rfs run, and
// reboot(2) with "0 tryboot"), and rfs run boots slot b from
// tryboot.txt's os_prefix.
func TestUpdatePi4(t *testing.T) {
	testUpdatePi(t, "rpi4", "raspi4b", slots.FirmwareRPi)
}

func testUpdatePi(t *testing.T, board, machine, firmware string) {
	if testing.Short() {
		t.Skip("boots QEMU; skipped in -short mode")
	}
	t.Parallel()
	needMachine(t, board, machine)
	key := newUpdateKey(t)
	noAgent := func(c *builder.Config) { c.Device = nil }
	v1 := releaseImage(t, board, "1", key, noAgent)
	v2 := releaseImage(t, board, "2", key, func(c *builder.Config) {
		noAgent(c)
		c.Files = append(c.Files, filesDir(t, map[string]string{"etc/new-in-2": "new in 2\n"}))
	})
	layout := "oci-layout:" + filepath.Join(t.TempDir(), "layout") + ":v2"
	if _, err := bundle.Push(context.Background(), v2, layout, bundle.Options{Signer: bundle.SignWith(key.priv)}); err != nil {
		t.Fatalf("push v2: %v", err)
	}
	dev := copyFile(t, v1)
	if out, err := exec.Command(buildRFS(t), "update", dev, layout).CombinedOutput(); err != nil {
		t.Fatalf("rfs update: %v\n%s", err, out)
	}
	dir := t.TempDir()
	cfg, _, err := qemu.ForImage(dev, dir, false)
	if err != nil {
		t.Fatal(err)
	}
	vm := startVM(t, cfg, dir)
	expectLine(t, vm, `slot b \(version 2\) is ready: rebooting into it for a trial boot`, bootTimeout)
	expectLine(t, vm, `update: trial boot of slot b \(version 2\)`, bootTimeout)
	expectLine(t, vm, `slot b \(version 2\) is healthy: committed`, bootTimeout)
	shellUp(t, vm)
	if st := run(t, vm, "rfs-init status"); !strings.Contains(st, "b (version 2), committed") {
		t.Errorf("rfs-init status:\n%s", st)
	}
	checkFile(t, vm, "/etc/new-in-2", "new in 2")
	vm.Close()
	// rfs run's firmware: slot a (which armed the trial), then slot b
	// from config.txt's or tryboot.txt's os_prefix.
	if boots := vm.Boots(); len(boots) != 2 || boots[0] != "a" || boots[1] != "b" {
		t.Errorf("boots %q, want a, then b", boots)
	}
	checkPiCommitted(t, cfg.Disk, slots.B, firmware)
}

// checkPiCommitted reads the boot partition of the disk QEMU ran: slot
// committed in config.txt, tryboot.txt, slot.txt and the record.
func checkPiCommitted(t *testing.T, disk, slot, firmware string) {
	t.Helper()
	img, err := image.OpenImage(disk)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	p, err := img.Boot()
	if err != nil {
		t.Fatal(err)
	}
	read := func(name string) []byte {
		b, err := img.ReadFileMax(p.Placed, name, slots.MaxStateFile)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if got := slots.OSPrefix(read(slots.PiConfig)); got != slots.Dir(slot) {
		t.Errorf("config.txt os_prefix=%s, want %s", got, slots.Dir(slot))
	}
	if got := slots.OSPrefix(read(slots.PiTrybootConfig)); got != slots.Dir(slots.Other(slot)) {
		t.Errorf("tryboot.txt os_prefix=%s, want %s", got, slots.Dir(slots.Other(slot)))
	}
	if got := strings.TrimSpace(string(read(slots.FirmwareFile))); got != slot {
		t.Errorf("slot.txt %q", got)
	}
	st, err := slots.Parse(read(slots.StateFile))
	if err != nil || st.Committed != slot || st.Trial != "" || st.Firmware != firmware {
		t.Errorf("rfs-slots.json %s (%v)", st.Marshal(), err)
	}
}
