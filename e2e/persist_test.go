package e2e

import (
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rfsbuild/rfs/builder"
	"github.com/rfsbuild/rfs/datapart"
	"github.com/rfsbuild/rfs/qemu"
)

// Issue 5 in QEMU: the upper lives on the data partition (rfs-data, p3,
// made by the builder). Should an image lack it, the test adds one by hand
// with the same properties and passes rfs.data/rfs.boot/rfs.upper=data.

// dataUpper builds images with rfs.upper=data.
func dataUpper(c *builder.Config) { c.Upper = "data" }

var dataLineRE = regexp.MustCompile(`rfs: data partition PARTUUID=\S+ is /dev/\S+`)

func shutdown(t *testing.T, vm *qemu.VM) {
	t.Helper()
	vm.Run("sync", 30*time.Second)
	vm.Close()
}

// A file written to /etc survives a reboot; each reset trigger (kernel
// command line, flag file on the FAT boot partition, rfs-init reset on the
// device) removes it, once.
func TestDataPersistence(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU; skipped in -short mode")
	}
	t.Parallel()
	d := withDataPartition(t, buildImage(t, "qemu-arm64", dataUpper), 0)
	if d.handDid {
		t.Log("the builder made no rfs-data partition: added one by hand")
	}
	write := func(extra string) {
		t.Helper()
		vm := bootDisk(t, d, extra, nil)
		waitShell(t, vm)
		st := run(t, vm, "cat /run/rfs/status.json")
		if !strings.Contains(st, `"mode": "data"`) || !strings.Contains(st, `"degraded": ""`) {
			t.Fatalf("status.json:\n%s", st)
		}
		if m := regexp.MustCompile(`(?s)"timings_ms": (\{.*?\})`).FindStringSubmatch(st); m != nil {
			t.Logf("boot timings (ms, TCG): %s", strings.Join(strings.Fields(m[1]), " "))
		}
		run(t, vm, "echo kept > /etc/rfs-persist")
		shutdown(t, vm)
	}
	expect := func(extra, want string) *qemu.VM {
		t.Helper()
		vm := bootDisk(t, d, extra, nil)
		waitShell(t, vm)
		out, _ := vm.Run("cat /etc/rfs-persist 2>/dev/null || echo gone", 30*time.Second)
		if out != want+"\n" {
			t.Fatalf("boot with %q: /etc/rfs-persist: %q, want %q\n%s", extra, out, want, tail(vm.Output(), 3000))
		}
		return vm
	}
	write("")
	shutdown(t, expect("", "kept"))

	// Kernel command line.
	vm := expect("rfs.reset", "gone")
	if !strings.Contains(vm.Output(), "rfs: factory reset (cmdline)") {
		t.Error("no reset line on the console")
	}
	run(t, vm, "echo kept > /etc/rfs-persist")
	shutdown(t, vm)
	shutdown(t, expect("", "kept"))

	// Flag file on the FAT boot partition, as a PC with a card reader makes it.
	if mcopy, err := exec.LookPath("mcopy"); err != nil {
		t.Log("no mtools: flag trigger not tested in QEMU")
	} else {
		flag := filepath.Join(t.TempDir(), datapart.ResetFlagFile)
		os.WriteFile(flag, []byte("\r\n"), 0o644)
		fat := d.path + "@@" + strconv.FormatInt(d.boot.Start, 10)
		if out, err := exec.Command(mcopy, "-i", fat, flag, "::"+datapart.ResetFlagFile).CombinedOutput(); err != nil {
			t.Fatalf("mcopy: %v %s", err, out)
		}
		vm := expect("", "gone")
		if !strings.Contains(vm.Output(), "rfs: factory reset (flag)") {
			t.Error("no flag reset line on the console")
		}
		run(t, vm, "echo kept > /etc/rfs-persist")
		shutdown(t, vm)
		if out, err := exec.Command("mdir", "-i", fat, "::"+datapart.ResetFlagFile).CombinedOutput(); err == nil {
			t.Errorf("flag still on the boot partition:\n%s", out)
		}
		shutdown(t, expect("", "kept"))
	}

	// On the device: rfs-init reset reboots (QEMU runs with -no-reboot: it exits).
	vm = bootDisk(t, d, "", nil)
	waitShell(t, vm)
	vm.Send("/run/rfs/bin/rfs-init reset\n")
	if err := vm.ExpectString("factory reset of the upper layer (volumes are kept) scheduled", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	vm.Expect(regexp.MustCompile(`QEMU-never-prints-this`), 60*time.Second) // returns when QEMU exits
	vm.Close()
	vm = expect("", "gone")
	if st := run(t, vm, "/run/rfs/bin/rfs-init status"); !strings.Contains(st, " by command (upper)") || !strings.Contains(st, "upper:         data") {
		t.Errorf("rfs-init status:\n%s", st)
	}
	shutdown(t, vm)
	fsckData(t, d)
}

// A corrupted data partition boots degraded (tmpfs upper) with the reason
// on the console, and the partition is left as it was.
func TestDataCorrupt(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU; skipped in -short mode")
	}
	t.Parallel()
	d := withDataPartition(t, buildImage(t, "qemu-arm64", dataUpper), 0)
	f, _ := os.OpenFile(d.path, os.O_RDWR, 0)
	f.WriteAt([]byte("garbage!"), d.data.Start+1024+0x78) // superblock checksum no longer matches
	f.Close()
	vm := bootDisk(t, d, "", nil)
	if _, err := vm.Expect(regexp.MustCompile(`rfs: DEGRADED: cannot mount data partition [^\n]*`), bootTimeout); err != nil {
		t.Fatal(err)
	}
	waitShell(t, vm)
	if st := run(t, vm, "/run/rfs/bin/rfs-init status"); !strings.Contains(st, "DEGRADED:") || !strings.Contains(st, "upper:         tmpfs") {
		t.Errorf("status:\n%s", st)
	}
	run(t, vm, "echo x > /etc/x")
	vm.Close()
	f, _ = os.Open(d.path)
	defer f.Close()
	b := make([]byte, 8)
	f.ReadAt(b, d.data.Start+1024+0x78)
	if string(b) != "garbage!" {
		t.Error("the degraded boot wrote to the data partition's superblock")
	}
}

// QEMU killed at random moments during reset and during first-boot growth
// (seeded: RFS_E2E_SEED): every next boot succeeds, not degraded, and the
// reset/growth is complete or not done at all; sgdisk -v and e2fsck are
// clean afterwards.
func TestPowerLossQEMU(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU; skipped in -short mode")
	}
	seed := time.Now().UnixNano()
	if s := os.Getenv("RFS_E2E_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	t.Logf("seed %d (RFS_E2E_SEED)", seed)
	img := buildImage(t, "qemu-arm64", dataUpper)
	resetTrials, growTrials := 12, 8
	if n, _ := strconv.Atoi(os.Getenv("RFS_E2E_SOAK")); n > 0 {
		resetTrials, growTrials = n, n
	}
	checkBoot := func(t *testing.T, d *dataDisk) *qemu.VM {
		t.Helper()
		vm := bootDisk(t, d, "", nil)
		waitShell(t, vm)
		st := run(t, vm, "cat /run/rfs/status.json")
		if !strings.Contains(st, `"mode": "data"`) || !strings.Contains(st, `"degraded": ""`) {
			t.Fatalf("boot after the kill is not a data boot:\n%s\n%s", st, tail(vm.Output(), 3000))
		}
		return vm
	}
	t.Run("reset", func(t *testing.T) {
		t.Parallel()
		rng := rand.New(rand.NewSource(seed))
		d := withDataPartition(t, img, 0)
		vm := checkBoot(t, d)
		run(t, vm, "echo 1 > /etc/m")
		shutdown(t, vm)
		done := 0
		for i := 0; i < resetTrials; i++ {
			vm := bootDisk(t, d, "rfs.reset", nil)
			if _, err := vm.Expect(dataLineRE, bootTimeout); err != nil {
				t.Fatal(err)
			}
			delay := time.Duration(rng.Intn(800)) * time.Millisecond
			time.Sleep(delay)
			vm.Close()
			vm = checkBoot(t, d)
			out := run(t, vm, "test -e /etc/m && echo kept || echo reset")
			if strings.TrimSpace(out) == "reset" {
				done++
			}
			t.Logf("trial %d: killed %v after the data partition was found: %s%s", i, delay, strings.TrimSpace(out),
				map[bool]string{true: " (completed at the next boot)"}[strings.Contains(vm.Output(), "completing factory reset")])
			run(t, vm, "echo 1 > /etc/m")
			shutdown(t, vm)
		}
		t.Logf("%d/%d trials ended reset, the rest untouched", done, resetTrials)
		fsckData(t, d)
	})
	t.Run("grow", func(t *testing.T) {
		t.Parallel()
		rng := rand.New(rand.NewSource(seed + 1))
		for i := 0; i < growTrials; i++ {
			d := withDataPartition(t, img, 96)
			vm := bootDisk(t, d, "", nil)
			if _, err := vm.Expect(dataLineRE, bootTimeout); err != nil {
				t.Fatal(err)
			}
			delay := time.Duration(rng.Intn(800)) * time.Millisecond
			time.Sleep(delay)
			out := vm.Output()
			vm.Close()
			vm = checkBoot(t, d)
			shutdown(t, vm)
			if out, err := exec.Command("sgdisk", "-v", d.path).CombinedOutput(); err != nil || !strings.Contains(string(out), "No problems found") {
				t.Errorf("trial %d: sgdisk -v: %v\n%s", i, err, out)
			}
			part, fs := fsckData(t, d)
			st, _ := os.Stat(d.path)
			if d.data.Start+part < st.Size()-1<<20 || fs < part-1<<20 {
				t.Errorf("trial %d: not grown: partition %d bytes, filesystem %d, disk %d", i, part, fs, st.Size())
			}
			t.Logf("trial %d: killed %v after the data partition was found (grown before the kill: %v); next boot: partition %d MiB, fs %d MiB",
				i, delay, strings.Contains(out, "grew the data filesystem"), part>>20, fs>>20)
		}
	})
}
