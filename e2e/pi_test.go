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

// Raspberry Pi images with stacked layers, found by PARTUUID like the
// root: one layer is MBR primary partition 3; two are logical partitions
// 5 and 6 in an extended partition. The layers' files show through the
// overlay, the upper one winning, mounted from the SD card.
func TestBootRaspberryPiLayers(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU; skipped in -short mode")
	}
	one := writeLayerFile(t, map[string]string{"/etc/from-layer": "layer one\n", "/etc/one": "1\n"})
	two := writeLayerFile(t, map[string]string{"/etc/from-layer": "layer two\n", "/etc/two": "2\n"})
	for _, tc := range []struct {
		name   string
		layers []string
		ready  string // the ready line's lower part
		mounts []string
		want   string // cat /etc/from-layer /etc/one, and /etc/two if there
	}{
		{"primary", []string{one}, `\+1 layer`, []string{"/dev/mmcblk0p3 /run/rfs/layers/1 "}, "layer one\n1\n"},
		{"logical", []string{one, two}, `\+2 layers`, []string{"/dev/mmcblk0p5 /run/rfs/layers/1 ", "/dev/mmcblk0p6 /run/rfs/layers/2 "}, "layer two\n1\n2\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			img := buildImage(t, "rpi3", func(c *builder.Config) { c.Layers = tc.layers })
			vm := boot(t, img, "")
			waitShell(t, vm)
			if !regexp.MustCompile(`rfs: overlay ready \(lower=/dev/mmcblk0p2 squashfs ` + tc.ready + `, upper=data /dev/mmcblk0p4, `).MatchString(vm.Output()) {
				t.Errorf("no ready line with %s on mmcblk0p2 and the data on mmcblk0p4", tc.ready)
			}
			// QEMU pads the card to a power of two: the data partition,
			// primary 4 and last on the disk, grows into it.
			if !strings.Contains(vm.Output(), "rfs: grew the data filesystem on /dev/mmcblk0p4") {
				t.Errorf("the data partition did not grow")
			}
			if got := run(t, vm, "cat /etc/from-layer /etc/one; if test -e /etc/two; then cat /etc/two; fi"); got != tc.want {
				t.Errorf("files from the layers: %q, want %q", got, tc.want)
			}
			mounts := run(t, vm, "cat /proc/mounts")
			for _, m := range tc.mounts {
				if !strings.Contains(mounts, m+"squashfs ro") {
					t.Errorf("no %q in:\n%s", m, mounts)
				}
			}
		})
	}
}

// writeLayerFile writes a squashfs layer holding files (path: content).
func writeLayerFile(t *testing.T, files map[string]string) string {
	t.Helper()
	tr := rootfs.New(builder.DefaultEpoch)
	for p, content := range files {
		if err := tr.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := tr.Add(p, &rootfs.Node{Type: rootfs.Regular, Perm: 0o644, Content: rootfs.Bytes(content)}); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "layer.sqfs")
	f, err := os.Create(path)
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
	return path
}
