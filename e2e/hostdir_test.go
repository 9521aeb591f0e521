package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rfsbuild/rfs/builder"
	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/imagecp"
	"github.com/rfsbuild/rfs/layer"
	"github.com/rfsbuild/rfs/qemu"
)

// TestRunMount: rfs run --mount on qemu-arm64, busybox and u-root. A host
// file shows in the guest, a file the guest writes shows on the host, a
// :ro mount refuses writes.
func TestRunMount(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU; skipped in -short mode")
	}
	for _, userland := range []string{"busybox", "u-root"} {
		t.Run(userland, func(t *testing.T) {
			img := buildImage(t, "qemu-arm64", func(c *builder.Config) {
				c.Userland = userland
				c.Upper = "tmpfs"
			})
			testRunMount(t, img)
		})
	}
	// UEFI: the rfs.mount parameters reach the kernel through OVMF's
	// loader (the UKI with a longer command line), virtio-9p-pci on q35.
	t.Run("pc", func(t *testing.T) {
		needUEFI(t)
		testRunMount(t, buildImage(t, "pc", func(c *builder.Config) { c.Upper = "tmpfs" }))
	})
}

func testRunMount(t *testing.T, img string) {
	rw, ro := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(rw, "hello"), []byte("from-host\n"), 0o644)
	os.WriteFile(filepath.Join(ro, "ro-file"), []byte("read-only\n"), 0o644)
	dir := t.TempDir()
	cfg, _, err := qemu.ForImage(img, dir, false)
	if err != nil {
		t.Fatal(err)
	}
	var dirs []qemu.HostDir
	for i, m := range []string{rw + ":/srv/host", ro + ":/mnt/ro:ro"} {
		d, err := qemu.ParseMount(m, i)
		if err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, d)
	}
	if err := cfg.AddMounts(dirs); err != nil {
		t.Fatal(err)
	}
	vm := startVM(t, cfg, dir)
	waitShell(t, vm)
	if !strings.Contains(vm.Output(), "rfs: host directory rfs0 mounted on /srv/host (9p, read-write)") {
		t.Error("no mount line from the init")
	}
	if got := run(t, vm, "cat /srv/host/hello /mnt/ro/ro-file"); got != "from-host\nread-only\n" {
		t.Errorf("guest reads %q", got)
	}
	run(t, vm, "echo from-guest > /srv/host/out; mkdir /srv/host/d; sync")
	if b, err := os.ReadFile(filepath.Join(rw, "out")); err != nil || string(b) != "from-guest\n" {
		t.Errorf("host reads %q, %v", b, err)
	}
	if st, err := os.Stat(filepath.Join(rw, "d")); err != nil || !st.IsDir() {
		t.Errorf("the guest's mkdir: %v", err)
	}
	if _, err := vm.Run("echo x > /mnt/ro/x", 30*time.Second); err == nil {
		t.Error("a write to the :ro mount succeeded")
	}
	if _, err := os.Stat(filepath.Join(ro, "x")); err == nil {
		t.Error("the :ro mount's host directory was written")
	}
}

// TestCp: rfs cp into a never-booted image, a boot sees the copies; the
// guest writes a file and loses power; rfs cp into the image again (its
// journal replayed first), then rfs cp out returns the guest's file, rfs
// diff lists the copies, and the next boot sees the second copy.
func TestCp(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU; skipped in -short mode")
	}
	d := withDataPartition(t, buildImage(t, "qemu-arm64", dataUpper), 0)
	ctx := context.Background()
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "copied.conf"), []byte("copied-in\n"), 0o600)
	os.MkdirAll(filepath.Join(src, "app/bin"), 0o755)
	os.WriteFile(filepath.Join(src, "app/bin/run"), []byte("#!/bin/sh\necho app-ran\n"), 0o755)
	os.Symlink("bin/run", filepath.Join(src, "app/start"))
	for _, c := range []struct{ src, dst string }{
		{filepath.Join(src, "copied.conf"), "/etc/copied.conf"},
		{filepath.Join(src, "app"), "/usr/"},
	} {
		if _, err := imagecp.In(ctx, c.src, d.path, c.dst, imagecp.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	fsckData(t, d)

	vm := bootDisk(t, d, "", nil)
	waitShell(t, vm)
	if got := run(t, vm, "cat /etc/copied.conf; /usr/app/start; stat -c '%a %u' /etc/copied.conf"); got != "copied-in\napp-ran\n600 0\n" {
		t.Errorf("the device sees %q", got)
	}
	run(t, vm, "echo from-guest > /root/guest-file; rm /etc/hosts; sync")
	vm.Close() // a power cut: the journal may need recovery

	second := filepath.Join(src, "second")
	os.WriteFile(second, []byte("second\n"), 0o644)
	if _, err := imagecp.In(ctx, second, d.path, "/root/", imagecp.Options{}); err != nil {
		t.Fatal(err)
	}
	fsckData(t, d)
	out := t.TempDir()
	if _, err := imagecp.Out(ctx, d.path, "/root", out, imagecp.Options{}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"guest-file": "from-guest\n", "second": "second\n"} {
		if b, err := os.ReadFile(filepath.Join(out, "root", name)); err != nil || string(b) != want {
			t.Errorf("cp out /root/%s = %q, %v", name, b, err)
		}
	}
	if _, err := imagecp.Out(ctx, d.path, "/etc/hosts", out, imagecp.Options{}); err == nil {
		t.Error("cp out of a file the device deleted succeeded")
	}
	img, err := image.OpenImage(d.path)
	if err != nil {
		t.Fatal(err)
	}
	v, err := imagecp.ReadView(img)
	if err != nil {
		t.Fatal(err)
	}
	changes, err := layer.Diff(v.Lower, v.Upper)
	img.Close()
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, c := range changes {
		lines = append(lines, c.String())
	}
	diff := strings.Join(lines, "\n")
	for _, want := range []string{"A /etc/copied.conf", "A /usr/app/start", "A /root/guest-file", "A /root/second", "D /etc/hosts"} {
		if !strings.Contains(diff, want+"\n") && !strings.HasSuffix(diff, want) {
			t.Errorf("rfs diff lacks %q:\n%s", want, diff)
		}
	}

	vm = bootDisk(t, d, "", nil)
	waitShell(t, vm)
	if got := run(t, vm, "cat /root/second /root/guest-file"); got != "second\nfrom-guest\n" {
		t.Errorf("the second boot sees %q", got)
	}
	shutdown(t, vm)
}
