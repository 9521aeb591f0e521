package e2e

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rfsbuild/rfs/boards"
	"github.com/rfsbuild/rfs/builder"
	"github.com/rfsbuild/rfs/qemu"
	"github.com/rfsbuild/rfs/rootfs"
	"github.com/rfsbuild/rfs/squashfs"
)

// Raspberry Pi images boot in QEMU's model of their Pi from the SD image,
// with kernel, the model's device tree and initramfs read from the image's
// FAT partition: rpi3 on raspi3b, rpi4 and the universal rpi image on
// raspi4b (QEMU 9.0 or newer), as rfs run picks them.
func TestBootRaspberryPi(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU; skipped in -short mode")
	}
	for _, tc := range []struct{ board, machine, model string }{
		{"rpi3", "raspi3b", "Raspberry Pi 3 Model B"},
		{"rpi4", "raspi4b", "Raspberry Pi 4 Model B"},
		{"rpi", "raspi4b", "Raspberry Pi 4 Model B"},
	} {
		t.Run(tc.board, func(t *testing.T) {
			t.Parallel()
			needMachine(t, tc.board, tc.machine)
			img := buildImage(t, tc.board, nil)
			start := time.Now()
			vm := bootPi(t, img, "", false, "")
			m, err := vm.Expect(regexp.MustCompile(`rfs: root PARTUUID=[0-9a-f]{8}-02 is (\S+) \(mbr partition 2 of (\S+), found`), bootTimeout)
			if err != nil {
				t.Fatal(err)
			}
			sm := regexp.MustCompile(`is /dev/(mmcblk\d)p2 \(mbr partition 2 of (mmcblk\d)`).FindStringSubmatch(m)
			if sm == nil || sm[1] != sm[2] {
				t.Fatalf("root not found on the SD card: %q", m)
			}
			card := sm[1]
			waitShell(t, vm)
			t.Logf("%s on %s: a shell on the overlay root after %s", tc.board, tc.machine, time.Since(start).Round(time.Second))
			mounts := run(t, vm, "cat /proc/mounts")
			if !regexp.MustCompile(`(?m)^overlay / overlay `).MatchString(mounts) ||
				!regexp.MustCompile(`(?m)^/dev/`+card+`p2 /run/rfs/lower squashfs ro[,\s]`).MatchString(mounts) {
				t.Errorf("not an overlay root on %sp2:\n%s", card, mounts)
			}
			// The device tree the kernel runs on is the machine's own.
			if model := run(t, vm, "cat /proc/device-tree/model; echo"); !strings.HasPrefix(model, tc.model) {
				t.Errorf("device tree model %q, want %s", model, tc.model)
			}
			run(t, vm, "echo pi > /root/f")
			if got := run(t, vm, "cat /run/rfs/upper/root/f"); got != "pi\n" {
				t.Errorf("upper has %q", got)
			}
			if out := run(t, vm, ". /etc/os-release; echo $VARIANT_ID"); out != tc.board+"\n" {
				t.Errorf("os-release VARIANT_ID = %q", out)
			}
		})
	}
}

// needMachine skips the test when the installed QEMU lacks the machine
// rfs run boots board's images on (raspi4b before QEMU 9.0).
func needMachine(t *testing.T, board, machine string) {
	t.Helper()
	b, err := boards.Lookup(board)
	if err != nil {
		t.Fatal(err)
	}
	q, err := b.Machine(machine)
	if err != nil {
		t.Fatal(err)
	}
	if err := (qemu.Config{QEMU: q, Arch: b.Arch}).Check(); errors.Is(err, qemu.ErrNoMachine) {
		t.Skip(err)
	}
}

// bootPi boots a Pi image on machine (empty: the board's default) the way
// rfs run --machine does; persist writes the guest's changes to the image
// (which must then be a power of two in size).
func bootPi(t *testing.T, img, machine string, persist bool, extraCmdline string) *qemu.VM {
	t.Helper()
	dir := t.TempDir()
	cfg, _, err := qemu.ForImageOn(img, dir, persist, machine)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Append = strings.TrimSpace(cfg.Append + " " + extraCmdline)
	return startVM(t, cfg, dir)
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
