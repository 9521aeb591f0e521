package install

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/rfsbuild/rfs/slots"
)

// piFixture is newFixture as a Raspberry Pi of firmware: kernel8.img,
// config.txt booting slot a.
func piFixture(t *testing.T, firmware string) (*fixture, string) {
	f := newFixture(t)
	boot := f.dev.Target.(DirTarget).Boot
	os.Rename(filepath.Join(boot, "slot-a", "vmlinuz"), filepath.Join(boot, "slot-a", "kernel8.img"))
	f.dev.KernelName = "kernel8.img"
	os.WriteFile(filepath.Join(boot, slots.PiConfig), []byte("kernel=kernel8.img\n[all]\nos_prefix=slot-a/\n"), 0o644)
	s, _ := f.dev.State()
	s.Firmware = firmware
	os.WriteFile(filepath.Join(boot, slots.StateFile), s.Marshal(), 0o644)
	return f, boot
}

// A Pi release's boot files go into the slot: device trees and overlays
// (with the README the firmware needs to take overlays from os_prefix);
// the firmware files and config.txt of a release stay out. Arming on a
// Pi 3 points config.txt at the trial slot; on a Pi with tryboot it is
// left to the next boot's init.
func TestInstallPi(t *testing.T) {
	for _, firmware := range []string{slots.FirmwareRPi, slots.FirmwareRPiSwitch} {
		t.Run(firmware, func(t *testing.T) {
			f, boot := piFixture(t, firmware)
			rel := Release{Version: "2", BuildID: "id2", Config: []byte(`{"version":"2"}`), Parts: []Part{
				f.part("kernel", RoleKernel, []byte("kernel v2")),
				f.part("initramfs", RoleInitramfs, []byte("initrd v2")),
				f.part("boot-files", RoleBootFiles, tarOf(t, map[string]string{
					"cmdline.txt": "rfs.slot=a\n", "bcm2710-rpi-3-b.dtb": "dtb", "overlays/disable-bt.dtbo": "ov",
					"config.txt": "evil", "tryboot.txt": "evil", "start.elf": "fw", "fixup4.dat": "fw", "bootcode.bin": "fw"})),
				f.part("root", RoleRoot, []byte("squashfs v2")),
			}}
			var fetched []string
			if _, err := f.dev.Install(context.Background(), rel, f.fetch(&fetched)); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"kernel8.img", "bcm2710-rpi-3-b.dtb", "overlays/disable-bt.dtbo", "overlays/README", "cmdline.txt"} {
				if _, err := os.Stat(filepath.Join(boot, "slot-b", name)); err != nil {
					t.Errorf("slot-b lacks %s", name)
				}
			}
			for _, name := range []string{"config.txt", "tryboot.txt", "start.elf", "fixup4.dat", "bootcode.bin"} {
				if _, err := os.Stat(filepath.Join(boot, "slot-b", name)); err == nil {
					t.Errorf("slot-b took the release's %s", name)
				}
			}
			if err := f.dev.Arm(); err != nil {
				t.Fatal(err)
			}
			s, _ := f.dev.State()
			cfg, _ := os.ReadFile(filepath.Join(boot, slots.PiConfig))
			want := map[string]struct {
				tries  int
				prefix string
			}{slots.FirmwareRPi: {0, "slot-a/"}, slots.FirmwareRPiSwitch: {1, "slot-b/"}}[firmware]
			if s.Tries != want.tries || slots.OSPrefix(cfg) != want.prefix || s.Trial != "b" {
				t.Errorf("armed: tries %d, config.txt %q", s.Tries, cfg)
			}
		})
	}
}
