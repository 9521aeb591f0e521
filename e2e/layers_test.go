package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/builder"
	"github.com/rfsbuild/rfs/squashfs"
)

// replayJournal replays the data partition's ext4 journal in place
// (QEMU is killed after a sync, so committed metadata may sit in the
// journal). rfs replays a journal in memory (TestPowerCut covers it);
// these tests replay first so they check the layer logic alone.
func replayJournal(t *testing.T, d *dataDisk) {
	t.Helper()
	p, ok := readTable(t, d.path).Find(d.data.PARTUUID)
	if !ok {
		t.Fatal("data partition gone")
	}
	f, err := os.OpenFile(d.path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, p.Size)
	if _, err := f.ReadAt(buf, p.Start); err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(t.TempDir(), "data.fs")
	os.WriteFile(cp, buf, 0o644)
	exec.Command("e2fsck", "-E", "journal_only", "-y", cp).Run()
	if buf, err = os.ReadFile(cp); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(buf, p.Start); err != nil {
		t.Fatal(err)
	}
}

// Boot, change files on the device, power off; then rfs diff and rfs
// commit read the image from the host (no root, no mount).
func TestLayersDiffCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU; skipped in -short mode")
	}
	t.Parallel()
	d := withDataPartition(t, buildImage(t, "qemu-arm64", dataUpper), 0)
	vm := bootDisk(t, d, "", nil)
	waitShell(t, vm)
	run(t, vm, "echo hello > /etc/added && echo changed > /etc/hostname && rm /etc/shadow && mkdir -p /opt/app/sub && echo x > /opt/app/sub/f && ln -s /etc/added /etc/added-link")
	shutdown(t, vm)
	replayJournal(t, d)

	rfsBin := filepath.Join(t.TempDir(), "rfs")
	if out, err := exec.Command("go", "build", "-o", rfsBin, "../cmd/rfs").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(rfsBin, "diff", d.path).CombinedOutput()
	if err != nil {
		t.Fatalf("rfs diff: %v\n%s", err, out)
	}
	t.Logf("rfs diff:\n%s", out)
	for _, want := range []string{"C /etc\n", "A /etc/added\n", "A /etc/added-link\n", "C /etc/hostname\n", "D /etc/shadow\n", "A /opt/app\n", "A /opt/app/sub/f\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("rfs diff: no %q", strings.TrimSpace(want))
		}
	}
	dir := t.TempDir()
	layerImg, flatImg, ociTar := filepath.Join(dir, "layer.sqfs"), filepath.Join(dir, "flat.sqfs"), filepath.Join(dir, "layer.tar")
	for _, args := range [][]string{{"commit", d.path, "-o", layerImg, "--oci", ociTar}, {"commit", d.path, "-o", flatImg, "--flatten"}, {"inspect", d.path}} {
		if out, err := exec.Command(rfsBin, args...).CombinedOutput(); err != nil {
			t.Fatalf("rfs %s: %v\n%s", strings.Join(args, " "), err, out)
		} else {
			t.Logf("rfs %s:\n%s", strings.Join(args, " "), out)
		}
	}
	read := func(p string) map[string]string {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		r, err := squashfs.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		r.Walk(func(p string, ino *squashfs.Inode) error {
			got[p] = ino.Type.String()
			if ino.Type.String() == "chardev" {
				got[p] += " " + string(rune('0'+ino.Major)) + "/" + string(rune('0'+ino.Minor))
			}
			return nil
		})
		return got
	}
	l := read(layerImg)
	if l["/etc/added"] != "file" || l["/etc/shadow"] != "chardev 0/0" || l["/opt/app/sub/f"] != "file" {
		t.Errorf("layer: %v", l)
	}
	f := read(flatImg)
	if f["/etc/added"] != "file" || f["/etc/shadow"] != "" || f["/etc/passwd"] != "file" || f["/usr/bin/busybox"] != "file" {
		t.Errorf("flattened: /etc/added %q /etc/shadow %q /etc/passwd %q busybox %q", f["/etc/added"], f["/etc/shadow"], f["/etc/passwd"], f["/usr/bin/busybox"])
	}
}

// buildRFS builds the rfs command into a temp dir.
func buildRFS(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "rfs")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/rfs").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// copyData writes the data partition of src over the one of dst (same
// size: both images have the builder's 64 MiB data partition, ungrown).
func copyData(t *testing.T, src, dst *dataDisk) {
	t.Helper()
	if src.data.Size != dst.data.Size {
		t.Fatalf("data partitions differ in size: %d and %d", src.data.Size, dst.data.Size)
	}
	in, err := os.Open(src.path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	buf := make([]byte, src.data.Size)
	if _, err := in.ReadAt(buf, src.data.Start); err != nil {
		t.Fatal(err)
	}
	out, err := os.OpenFile(dst.path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := out.WriteAt(buf, dst.data.Start); err != nil {
		t.Fatal(err)
	}
}

// The stacking loop of issue 6: change files on a device, commit its
// upper into a layer, rebuild with --layer and boot with a fresh data
// partition: the changes come from the lower side. Then the new image with
// the old device's data partition (the lower replaced under an existing
// upper): the upper's changes still show over the layer.
func TestLayersStack(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU; skipped in -short mode")
	}
	t.Parallel()
	rfsBin := buildRFS(t)
	old := withDataPartition(t, buildImage(t, "qemu-arm64", dataUpper), 0)
	vm := bootDisk(t, old, "", nil)
	waitShell(t, vm)
	run(t, vm, "echo added > /etc/added && echo changed > /etc/hostname && rm /etc/shadow && mkdir -p /opt/app && echo x > /opt/app/f")
	shutdown(t, vm)
	replayJournal(t, old)

	layerFile := filepath.Join(t.TempDir(), "layer.sqfs")
	if out, err := exec.Command(rfsBin, "commit", old.path, "-o", layerFile).CombinedOutput(); err != nil {
		t.Fatalf("rfs commit: %v\n%s", err, out)
	}
	withLayer := buildImage(t, "qemu-arm64", func(c *builder.Config) { dataUpper(c); c.Layers = []string{layerFile} })
	if out, err := exec.Command(rfsBin, "inspect", withLayer).CombinedOutput(); err != nil || !strings.Contains(string(out), "rfs-layer-1") || !strings.Contains(string(out), layerFile) {
		t.Errorf("rfs inspect: %v\n%s", err, out)
	} else {
		t.Logf("rfs inspect:\n%s", out)
	}

	// A fresh data partition: everything comes from the layer.
	fresh := withDataPartition(t, withLayer, 0)
	var console strings.Builder
	vm = bootDisk(t, fresh, "", &console)
	waitShell(t, vm)
	if !regexp.MustCompile(`rfs: overlay ready \(lower=/dev/vda2 squashfs \+1 layer, upper=data /dev/vda4, \d+ms\)`).MatchString(console.String()) {
		t.Errorf("no ready line with the layer in:\n%s", tail(console.String(), 3000))
	}
	got := run(t, vm, "cat /etc/added /etc/hostname /opt/app/f; test -e /etc/shadow && echo SHADOW; test -e /etc/passwd && echo PASSWD; "+
		"for f in etc/added etc/hostname etc/shadow opt/app; do test -e /run/rfs/upper/$f && echo UPPER:$f; done; cat /run/rfs/layers/1/etc/added")
	for _, w := range []string{"added\nchanged\nx\nPASSWD\n", "\nadded"} {
		if !strings.Contains(got, w) {
			t.Errorf("fresh data, layer below: no %q in:\n%s", w, got)
		}
	}
	if strings.Contains(got, "SHADOW") || strings.Contains(got, "UPPER:") {
		t.Errorf("fresh data: deleted file back, or changes in the upper:\n%s", got)
	}
	st := run(t, vm, "cat /run/rfs/status.json")
	if !strings.Contains(st, `"mountpoint": "/run/rfs/layers/1"`) || !strings.Contains(st, `"degraded": ""`) {
		t.Errorf("status.json:\n%s", st)
	}
	shutdown(t, vm)

	// The old device again, one more change; then its data partition
	// under the new image.
	vm = bootDisk(t, old, "", nil)
	waitShell(t, vm)
	run(t, vm, "echo added2 > /etc/added && echo later > /etc/later")
	shutdown(t, vm)
	replayJournal(t, old)
	kept := withDataPartition(t, withLayer, 0)
	copyData(t, old, kept)
	vm = bootDisk(t, kept, "", nil)
	waitShell(t, vm)
	got = run(t, vm, "cat /etc/added /etc/later /etc/hostname /opt/app/f; test -e /etc/shadow && echo SHADOW; echo new > /etc/new && cat /etc/new /run/rfs/upper/etc/later")
	if want := "added2\nlater\nchanged\nx\nnew\nlater\n"; !strings.Contains(got, want) || strings.Contains(got, "SHADOW") {
		t.Errorf("kept upper over the new lower: got\n%s\nwant %q", got, want)
	}
	st = run(t, vm, "cat /run/rfs/status.json")
	if !strings.Contains(st, `"mode": "data"`) || !strings.Contains(st, `"degraded": ""`) || !strings.Contains(st, "/run/rfs/layers/1") {
		t.Errorf("status.json:\n%s", st)
	}
	shutdown(t, vm)
	replayJournal(t, kept)
	// rfs diff of the new image compares the kept upper with the root plus
	// the layer: /etc/later is new, /etc/added changed against the layer.
	out, err := exec.Command(rfsBin, "diff", kept.path).CombinedOutput()
	t.Logf("rfs diff (kept upper over root + layer):\n%s", out)
	if err != nil || !strings.Contains(string(out), "A /etc/later\n") || !strings.Contains(string(out), "C /etc/added\n") || strings.Contains(string(out), "A /opt/app/f\n") {
		t.Errorf("rfs diff: %v", err)
	}
}
