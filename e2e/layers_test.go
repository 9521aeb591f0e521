package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/squashfs"
)

// replayJournal replays the data partition's ext4 journal in place
// (QEMU is killed after a sync, so committed metadata may sit in the
// journal; rfs diff reads the filesystem as it is on disk and refuses an
// unreplayed journal).
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
