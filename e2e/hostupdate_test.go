package e2e

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/builder"
	"github.com/rfsbuild/rfs/bundle"
	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/qemu"
)

// TestHostUpdate updates an image from the host: rfs update writes v2
// (from an OCI layout, offline) into the image's inactive slot without
// mounting anything; the image's first boot arms the trial, the trial
// boots slot b and commits it.
func TestHostUpdate(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU; skipped in -short mode")
	}
	t.Parallel()
	key := newUpdateKey(t)
	v1 := releaseImage(t, "qemu-arm64", "1", key, nil)
	v2 := releaseImage(t, "qemu-arm64", "2", key, func(c *builder.Config) {
		c.Files = append(c.Files, filesDir(t, map[string]string{"etc/new-in-2": "new in 2\n"}))
	})
	layout := filepath.Join(t.TempDir(), "release")
	if _, err := bundle.Push(context.Background(), v2, "oci-layout:"+layout+":v2", bundle.Options{Signer: bundle.SignWith(key.priv)}); err != nil {
		t.Fatal(err)
	}
	rfsBin := filepath.Join(t.TempDir(), "rfs")
	if out, err := exec.Command("go", "build", "-o", rfsBin, "../cmd/rfs").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dev := copyFile(t, v1)

	// Refused: an image without slots, and (unchanged image) a release
	// for another board.
	plain := buildImage(t, "qemu-arm64", nil)
	if out, err := exec.Command(rfsBin, "update", plain, "oci-layout:"+layout+":v2").CombinedOutput(); err == nil || !strings.Contains(string(out), "no A/B slots") {
		t.Errorf("rfs update of an image without slots: %v\n%s", err, out)
	}

	out, err := exec.Command(rfsBin, "update", dev, "oci-layout:"+layout+":v2").CombinedOutput()
	if err != nil {
		t.Fatalf("rfs update: %v\n%s", err, out)
	}
	t.Logf("rfs update:\n%s", out)
	if !strings.Contains(string(out), "kernel: the running slot has it") {
		t.Errorf("rfs update transferred the kernel the running slot holds:\n%s", out)
	}
	checkBootFAT(t, dev)
	if out, err := exec.Command(rfsBin, "inspect", dev).CombinedOutput(); err != nil || !strings.Contains(string(out), "ready") {
		t.Errorf("rfs inspect after rfs update (want slot b ready): %v\n%s", err, out)
	}

	vm, _ := startNet(t, dev, true, qemu.Network{Mode: qemu.NetRestricted})
	expectLine(t, vm, `update: slot b \(version 2\) is ready: rebooting into it for a trial boot`, bootTimeout)
	expectLine(t, vm, `update: trial boot of slot b \(version 2\)`, bootTimeout)
	expectLine(t, vm, `slot b \(version 2\) is healthy: committed`, bootTimeout)
	shellUp(t, vm)
	checkFile(t, vm, "/etc/new-in-2", "new in 2")
	if st := run(t, vm, "rfs-init status"); !strings.Contains(st, "b (version 2), committed") {
		t.Errorf("rfs-init status after the host update:\n%s", st)
	}
	if got := strings.Join(vm.Boots(), " "); got != "a b" {
		t.Errorf("boots %q, want %q (slot a arms the trial, slot b is tried and committed)", got, "a b")
	}
}

// checkBootFAT runs fsck.vfat -n on the image's boot partition.
func checkBootFAT(t *testing.T, path string) {
	t.Helper()
	img, err := image.OpenImage(path)
	if err != nil {
		t.Fatal(err)
	}
	boot, err := img.Boot()
	img.Close()
	if err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(t.TempDir(), "boot.fat")
	src, _ := os.Open(path)
	dst, _ := os.Create(cp)
	defer src.Close()
	if _, err := dst.ReadFrom(io.NewSectionReader(src, boot.Start, boot.Size)); err != nil {
		t.Fatal(err)
	}
	dst.Close()
	if out, err := exec.Command("fsck.vfat", "-n", cp).CombinedOutput(); err != nil {
		t.Errorf("fsck.vfat -n of the boot partition after rfs update: %v\n%s", err, out)
	}
}
