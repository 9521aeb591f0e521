package main

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestFlashArgsAndRefusals(t *testing.T) {
	dir := t.TempDir()
	if _, err := execute(t, "flash", "only-one"); err == nil || !strings.Contains(err.Error(), "need IMAGE and DEVICE") {
		t.Errorf("one argument: %v", err)
	}
	img := filepath.Join(dir, "x.img")
	os.WriteFile(img, []byte(strings.Repeat("rfs!", 1<<18)), 0o644) // 1 MiB, no table
	if _, err := execute(t, "flash", img, filepath.Join(dir, "out"), "--to-file"); err == nil || !strings.Contains(err.Error(), "not a disk image") {
		t.Errorf("no partition table: %v", err)
	}
	os.WriteFile(img, withMBR(strings.Repeat("rfs!", 1<<18)), 0o644)
	if _, err := execute(t, "flash", img, "/dev/null"); err == nil || !strings.Contains(err.Error(), "not a block device (add --to-file") {
		t.Errorf("/dev/null: %v", err)
	}
	if _, err := execute(t, "flash", img, filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing target: %v", err)
	}
	if _, err := execute(t, "flash", filepath.Join(dir, "nope.img"), "/dev/null"); err == nil || !strings.Contains(err.Error(), "image:") {
		t.Errorf("missing image: %v", err)
	}
	out := filepath.Join(dir, "copy.img")
	if msg, err := execute(t, "flash", img, out, "--to-file"); err != nil || !strings.Contains(msg, "rfs: verified") {
		t.Fatalf("--to-file: %v\n%s", err, msg)
	}
	a, _ := os.ReadFile(img)
	b, _ := os.ReadFile(out)
	if string(a) != string(b) {
		t.Error("--to-file copy differs")
	}
}

// withMBR returns content with an MBR in its first sector: one Linux
// partition from sector 1 to the end (rfs flash wants a disk image).
func withMBR(content string) []byte {
	b := []byte(content)
	clear(b[:512])
	e := b[446:]
	e[4] = 0x83
	binary.LittleEndian.PutUint32(e[8:], 1)
	binary.LittleEndian.PutUint32(e[12:], uint32(len(b)/512-1))
	b[510], b[511] = 0x55, 0xaa
	return b
}

func TestFlashList(t *testing.T) {
	root := t.TempDir()
	w := func(rel, s string) {
		p := filepath.Join(root, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(s+"\n"), 0o644)
	}
	dev := "sys/devices/pci0000:00/usb1/1-1/host0/target0:0:0/0:0:0:0/block/sdb"
	w(dev+"/dev", "8:16")
	w(dev+"/size", "60437492")
	w(dev+"/removable", "1")
	w(dev+"/device/vendor", "SanDisk")
	w(dev+"/device/model", "Ultra")
	w(dev+"/sdb1/partition", "1")
	w(dev+"/sdb1/dev", "8:17")
	os.MkdirAll(filepath.Join(root, "sys/block"), 0o755)
	os.Symlink("../devices/pci0000:00/usb1/1-1/host0/target0:0:0/0:0:0:0/block/sdb", filepath.Join(root, "sys/block/sdb"))
	w("proc/self/mountinfo", "40 26 8:17 / /media/stick rw - vfat /dev/sdb1 rw")
	msg, err := execute(t, "flash", "--list", "--system-root", root)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"/dev/sdb", "28.8 GiB", "usb", "SanDisk Ultra", "sdb1:/media/stick", "needs --unmount"} {
		if !strings.Contains(msg, want) {
			t.Errorf("--list lacks %q:\n%s", want, msg)
		}
	}
}

// On a loop device (root): not removable, so --force and, without a
// terminal, --yes are needed; then it is written and verified.
func TestFlashLoopCLI(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for loop devices (losetup)")
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "x.img")
	os.WriteFile(img, withMBR(strings.Repeat("rfs!", 1<<20)), 0o644) // 4 MiB
	back := filepath.Join(dir, "back")
	os.WriteFile(back, make([]byte, 8<<20), 0o644)
	o, err := exec.Command("losetup", "--find", "--show", back).CombinedOutput()
	if err != nil {
		t.Skipf("losetup: %v %s", err, o)
	}
	dev := strings.TrimSpace(string(o))
	defer exec.Command("losetup", "-d", dev).Run()
	if _, err := execute(t, "flash", img, dev); err == nil || !strings.Contains(err.Error(), "not a removable disk") {
		t.Errorf("without --force: %v", err)
	}
	if _, err := execute(t, "flash", img, dev, "--force"); err == nil || !strings.Contains(err.Error(), "add --force --yes") {
		t.Errorf("without --yes: %v", err)
	}
	if _, err := execute(t, "flash", img, dev, "--to-file", "--force", "--yes"); err == nil || !strings.Contains(err.Error(), "drop --to-file") {
		t.Errorf("--to-file on a device: %v", err)
	}
	msg, err := execute(t, "flash", img, dev, "--force", "--yes")
	if err != nil || !strings.Contains(msg, "rfs: verified 5.0 MiB") {
		t.Fatalf("--force --yes: %v\n%s", err, msg)
	}
}
