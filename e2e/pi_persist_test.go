package e2e

import (
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rfsbuild/rfs/builder"
	"github.com/rfsbuild/rfs/ptable"
)

// Issue 5 on Raspberry Pi images (rpi4 and the universal rpi, MBR) in
// QEMU's raspi4b: the first boot grows the data partition to the end of
// the 256 MiB card; a file in /etc survives a reboot; rfs.reset removes it.
func TestPiPersistence(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU; skipped in -short mode")
	}
	for _, board := range []string{"rpi4", "rpi"} {
		t.Run(board, func(t *testing.T) {
			t.Parallel()
			needMachine(t, board, "raspi4b")
			piPersistence(t, board)
		})
	}
}

// piPersistence is TestPiPersistence on one board, booted as rfs run
// --persist boots it.
func piPersistence(t *testing.T, board string) {
	img := buildImage(t, board, func(c *builder.Config) { c.Size = 256 << 20 })
	tbl := readTable(t, img)
	st, _ := os.Stat(img)
	if tbl.Kind != ptable.TableMBR || len(tbl.Partitions) != 3 || st.Size() != 256<<20 {
		t.Fatalf("%s image: %s, %d partitions, %d bytes", board, tbl.Kind, len(tbl.Partitions), st.Size())
	}
	p3 := tbl.Partitions[2]
	if p3.Start+p3.Size > st.Size()-(1<<20) {
		t.Fatalf("no free space after p3 (ends at %d of %d): nothing to grow", p3.Start+p3.Size, st.Size())
	}
	d := &dataDisk{path: img, data: p3, boot: tbl.Partitions[0]}

	t0 := time.Now()
	vm := bootPi(t, img, "", true, "")
	if _, err := vm.Expect(regexp.MustCompile(`rfs: data partition PARTUUID=[0-9a-f]{8}-03 is /dev/mmcblk\dp3`), bootTimeout); err != nil {
		t.Fatal(err)
	}
	waitShell(t, vm)
	t.Logf("first boot (growing the data partition): a shell after %s", time.Since(t0).Round(time.Second))
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

	t0 = time.Now()
	vm = bootPi(t, img, "", true, "")
	waitShell(t, vm)
	t.Logf("reboot: a shell after %s", time.Since(t0).Round(time.Second))
	if got := look(t, vm, "/etc/rfs-pi"); got != "pi" {
		t.Errorf("after a reboot: /etc/rfs-pi = %q", got)
	}
	if strings.Contains(vm.Output(), "grew the data filesystem") {
		t.Error("grew again on the second boot")
	}
	shutdown(t, vm)

	vm = bootPi(t, img, "", true, "rfs.reset")
	waitShell(t, vm)
	if got := look(t, vm, "/etc/rfs-pi"); got != "gone" {
		t.Errorf("after rfs.reset: /etc/rfs-pi = %q", got)
	}
	shutdown(t, vm)
	fsckData(t, d)
}
