package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/builder"
	"github.com/rfsbuild/rfs/rootfs"
	"github.com/rfsbuild/rfs/squashfs"
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

// A Raspberry Pi image with a stacked layer (MBR: the layer is primary
// partition 3, found by its PARTUUID like the root): the layer's files show
// through the overlay, mounted from the SD card.
func TestBootRaspberryPiLayer(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU; skipped in -short mode")
	}
	t.Parallel()
	tr := rootfs.New(builder.DefaultEpoch)
	if err := tr.MkdirAll("/etc", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := tr.Add("/etc/from-layer", &rootfs.Node{Type: rootfs.Regular, Perm: 0o644, Content: rootfs.Bytes("layer on the card\n")}); err != nil {
		t.Fatal(err)
	}
	layerFile := filepath.Join(t.TempDir(), "layer.sqfs")
	f, err := os.Create(layerFile)
	if err != nil {
		t.Fatal(err)
	}
	n, err := squashfs.Write(f, tr, squashfs.Options{})
	if err == nil {
		err = f.Truncate(n)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}

	img := buildImage(t, "rpi3", func(c *builder.Config) { c.Layers = []string{layerFile} })
	vm := boot(t, img, "")
	waitShell(t, vm)
	if !regexp.MustCompile(`rfs: overlay ready \(lower=/dev/mmcblk0p2 squashfs \+1 layer, `).MatchString(vm.Output()) {
		t.Errorf("no ready line with the layer on mmcblk0p2")
	}
	if got := run(t, vm, "cat /etc/from-layer"); got != "layer on the card\n" {
		t.Errorf("/etc/from-layer: %q", got)
	}
	if mounts := run(t, vm, "cat /proc/mounts"); !regexp.MustCompile(`(?m)^/dev/mmcblk0p3 /run/rfs/layers/1 squashfs ro[,\s]`).MatchString(mounts) {
		t.Errorf("layer not mounted from mmcblk0p3:\n%s", mounts)
	}
}
