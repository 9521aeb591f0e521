package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rfsbuild/rfs/builder"
	"github.com/rfsbuild/rfs/qemu"
)

// volumeImage builds a qemu-arm64 image with the volume app at
// /var/lib/app, seeded from the lower (/var/lib/app/seed = "from-lower").
func volumeImage(t *testing.T) *dataDisk {
	t.Helper()
	src := t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "var/lib/app"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(src, "var/lib/app/seed"), []byte("from-lower\n"), 0o644)
	img := buildImage(t, "qemu-arm64", func(c *builder.Config) {
		c.Files = append(c.Files, builder.Files{Src: src, Dest: "/"})
		c.Volumes = []builder.Volume{{Name: "app", Path: "/var/lib/app"}}
	})
	d := withDataPartition(t, img, 0)
	if d.handDid {
		t.Fatal("the builder made no rfs-data partition")
	}
	return d
}

// look reports, for each path, its content or "gone".
func look(t *testing.T, vm *qemu.VM, paths ...string) string {
	t.Helper()
	var cmd []string
	for _, p := range paths {
		cmd = append(cmd, "cat "+p+" 2>/dev/null || echo gone")
	}
	out, err := vm.Run(strings.Join(cmd, "; "), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(strings.Fields(out), " ")
}

// Volumes on qemu-arm64: seeded from the lower at the first boot, kept
// across reboots and rfs.reset, wiped by rfs.reset=all and re-seeded.
func TestVolumes(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU; skipped in -short mode")
	}
	t.Parallel()
	d := volumeImage(t)
	files := []string{"/var/lib/app/seed", "/etc/x", "/var/lib/app/y"}
	step := func(extra, want string, then func(vm *qemu.VM)) {
		t.Helper()
		vm := bootDisk(t, d, extra, nil)
		waitShell(t, vm)
		if got := look(t, vm, files...); got != want {
			t.Fatalf("boot %q: seed, /etc/x, y = %q, want %q\n%s", extra, got, want, tail(vm.Output(), 3000))
		}
		if then != nil {
			then(vm)
		}
		shutdown(t, vm)
	}
	step("", "from-lower gone gone", func(vm *qemu.VM) {
		mounts := run(t, vm, "grep ' /var/lib/app ' /proc/mounts")
		if !strings.Contains(mounts, "/var/lib/app ext4 rw") {
			t.Errorf("volume not bound from the data partition: %q", mounts)
		}
		run(t, vm, "echo x > /etc/x; echo y > /var/lib/app/y; echo changed > /var/lib/app/seed")
		// The volume's files are on the data partition, not in the upper.
		if got := look(t, vm, "/run/rfs/upper/var/lib/app/y", "/run/rfs/data/volumes/app/y"); got != "gone y" {
			t.Errorf("upper, volumes/app: %q", got)
		}
	})
	step("", "changed x y", nil)
	step("rfs.reset", "changed gone y", func(vm *qemu.VM) {
		run(t, vm, "echo x > /etc/x")
	})
	step("rfs.reset=all", "from-lower gone gone", func(vm *qemu.VM) {
		if !strings.Contains(vm.Output(), "rfs: factory reset (cmdline): upper and volumes") {
			t.Error("no reset=all line on the console")
		}
	})
	fsckData(t, d)
}
