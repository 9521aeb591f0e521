package e2e

import (
	"regexp"
	"strings"
	"testing"
)

// Raspberry Pi images boot in QEMU's raspi3b from the SD image, with kernel,
// device tree and initramfs read from the image's FAT partition. A Pi 4
// image smoke-boots the same way (the same arm64 kernel serves all models).
func TestBootRaspberryPi(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU; skipped in -short mode")
	}
	for _, board := range []string{"rpi3", "rpi4"} {
		t.Run(board, func(t *testing.T) {
			t.Parallel()
			img := buildImage(t, board, nil)
			vm := boot(t, img, "")
			m, err := vm.Expect(regexp.MustCompile(`rfs: root PARTUUID=[0-9a-f]{8}-02 is (\S+) \(mbr partition 2 of (\S+), found`), bootTimeout)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(m, "is /dev/mmcblk0p2 (mbr partition 2 of mmcblk0") {
				t.Errorf("root not found on the SD card: %q", m)
			}
			waitShell(t, vm)
			mounts := run(t, vm, "cat /proc/mounts")
			if !regexp.MustCompile(`(?m)^overlay / overlay `).MatchString(mounts) ||
				!regexp.MustCompile(`(?m)^/dev/mmcblk0p2 /run/rfs/lower squashfs ro[,\s]`).MatchString(mounts) {
				t.Errorf("not an overlay root on mmcblk0p2:\n%s", mounts)
			}
			run(t, vm, "echo pi > /root/f")
			if got := run(t, vm, "cat /run/rfs/upper/root/f"); got != "pi\n" {
				t.Errorf("upper has %q", got)
			}
			if out := run(t, vm, ". /etc/os-release; echo $VARIANT_ID"); out != board+"\n" {
				t.Errorf("os-release VARIANT_ID = %q", out)
			}
		})
	}
}
