package e2e

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/builder"
	"github.com/rfsbuild/rfs/ptable"
	"github.com/rfsbuild/rfs/qemu"
)

// bootPersist boots an image the way `rfs run --persist` does: guest
// writes land in the file (a Pi image must be a power of two in size).
func bootPersist(t *testing.T, img, extra string) *qemu.VM {
	t.Helper()
	dir := t.TempDir()
	cfg, _, err := qemu.ForImage(img, dir, true)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Append = strings.TrimSpace(cfg.Append + " " + extra)
	ctx, cancel := context.WithCancel(context.Background())
	vm, err := qemu.Start(ctx, cfg, nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		vm.Close()
		cancel()
		if t.Failed() {
			t.Logf("console:\n%s", tail(vm.Output(), 4000))
		}
	})
	return vm
}

// Issue 5 on a Raspberry Pi image (rpi4, MBR) in QEMU's raspi3b: the first
// boot grows the data partition to the end of the 256 MiB card; a file in
// /etc survives a reboot; rfs.reset removes it.
func TestPiPersistence(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU; skipped in -short mode")
	}
	t.Parallel()
	img := buildImage(t, "rpi4", func(c *builder.Config) { c.Size = 256 << 20 })
	tbl := readTable(t, img)
	st, _ := os.Stat(img)
	if tbl.Kind != ptable.TableMBR || len(tbl.Partitions) != 3 || st.Size() != 256<<20 {
		t.Fatalf("rpi4 image: %s, %d partitions, %d bytes", tbl.Kind, len(tbl.Partitions), st.Size())
	}
	p3 := tbl.Partitions[2]
	if p3.Start+p3.Size > st.Size()-(1<<20) {
		t.Fatalf("no free space after p3 (ends at %d of %d): nothing to grow", p3.Start+p3.Size, st.Size())
	}
	d := &dataDisk{path: img, data: p3, boot: tbl.Partitions[0]}

	vm := bootPersist(t, img, "")
	if _, err := vm.Expect(regexp.MustCompile(`rfs: data partition PARTUUID=[0-9a-f]{8}-03 is /dev/mmcblk0p3`), bootTimeout); err != nil {
		t.Fatal(err)
	}
	waitShell(t, vm)
	if !strings.Contains(vm.Output(), "grew the data filesystem") {
		t.Errorf("no growth on the first boot:\n%s", tail(vm.Output(), 3000))
	}
	status := run(t, vm, "cat /run/rfs/status.json")
	if !strings.Contains(status, `"mode": "data"`) || !strings.Contains(status, `"degraded": ""`) {
		t.Fatalf("status.json:\n%s", status)
	}
	run(t, vm, "echo pi > /etc/rfs-pi")
	shutdown(t, vm)

	// The MBR's p3 now ends at the end of the card; sfdisk and e2fsck agree.
	dump, err := exec.Command("sfdisk", "--dump", img).CombinedOutput()
	if err != nil {
		t.Fatalf("sfdisk --dump: %v\n%s", err, dump)
	}
	m := regexp.MustCompile(`(?m)^\S+3 : start=\s*(\d+), size=\s*(\d+), type=83`).FindStringSubmatch(string(dump))
	if m == nil {
		t.Fatalf("no p3 in sfdisk --dump:\n%s", dump)
	}
	start, _ := strconv.ParseInt(m[1], 10, 64)
	size, _ := strconv.ParseInt(m[2], 10, 64)
	if (start+size)*512 != st.Size() || start*512 != p3.Start {
		t.Errorf("p3 after the first boot: start %d size %d sectors; disk %d sectors\n%s", start, size, st.Size()/512, dump)
	}
	if out, err := exec.Command("sfdisk", "--verify", img).CombinedOutput(); err != nil {
		t.Errorf("sfdisk --verify: %v\n%s", err, out)
	}
	part, fs := fsckData(t, d)
	if fs < part-(1<<20) {
		t.Errorf("filesystem %d bytes on a %d-byte partition: not grown", fs, part)
	}
	t.Logf("data partition %d MiB -> %d MiB (fs %d MiB)", p3.Size>>20, part>>20, fs>>20)

	vm = bootPersist(t, img, "")
	waitShell(t, vm)
	if got := look(t, vm, "/etc/rfs-pi"); got != "pi" {
		t.Errorf("after a reboot: /etc/rfs-pi = %q", got)
	}
	if strings.Contains(vm.Output(), "grew the data filesystem") {
		t.Error("grew again on the second boot")
	}
	shutdown(t, vm)

	vm = bootPersist(t, img, "rfs.reset")
	waitShell(t, vm)
	if got := look(t, vm, "/etc/rfs-pi"); got != "gone" {
		t.Errorf("after rfs.reset: /etc/rfs-pi = %q", got)
	}
	shutdown(t, vm)
	fsckData(t, d)
}
