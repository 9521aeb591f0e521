package e2e

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rfsbuild/rfs/boards"
	"github.com/rfsbuild/rfs/builder"
	"github.com/rfsbuild/rfs/qemu"
)

// needUEFI skips unless the pc board can be built and booted: QEMU, OVMF
// and systemd's EFI stub.
func needUEFI(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("boots QEMU; skipped in -short mode")
	}
	b, _ := boards.Lookup("pc")
	if _, err := os.Stat(b.UEFI.Stub); err != nil {
		t.Skipf("systemd's EFI stub %s not installed (apt-get install systemd-boot-efi)", b.UEFI.Stub)
	}
	found := false
	for _, fw := range b.QEMU.Firmware {
		if _, err := os.Stat(fw.Code); err == nil {
			found = true
		}
	}
	if !found {
		t.Skip("OVMF not installed (apt-get install ovmf)")
	}
	if _, err := exec.LookPath(b.QEMU.Binary); err != nil {
		t.Skipf("%s not installed (apt-get install qemu-system-x86)", b.QEMU.Binary)
	}
}

// bootUEFI boots img through OVMF as `rfs run [--persist]` does: no -kernel,
// the firmware finds EFI/BOOT/BOOTX64.EFI on the ESP.
func bootUEFI(t *testing.T, img string, persist bool) *qemu.VM {
	t.Helper()
	dir := t.TempDir()
	cfg, _, err := qemu.ForImage(img, dir, persist)
	if err != nil {
		t.Fatal(err)
	}
	if args := strings.Join(cfg.Args(), " "); strings.Contains(args, "-kernel") || !strings.Contains(args, "if=pflash") {
		t.Fatalf("not a firmware boot: %s", args)
	}
	return startVM(t, cfg, dir)
}

var readyRE = regexp.MustCompile(`rfs: overlay ready \(lower=(\S+) squashfs, upper=([^,]*), (\d+)ms\)`)

// TestBootUEFI builds the pc board and boots it under OVMF: the UKI on the
// ESP starts, the kernel and the init print on the serial console, / is
// the overlay of the squashfs on /dev/vda2; with rfs.upper=data, on a disk
// larger than the image, the first boot grows the data partition and moves
// the backup GPT to the end, and /etc survives a reboot.
func TestBootUEFI(t *testing.T) {
	needUEFI(t)
	t.Run("tmpfs", func(t *testing.T) {
		t.Parallel()
		start := time.Now()
		vm := bootUEFI(t, buildImage(t, "pc", func(c *builder.Config) { c.Upper = "tmpfs" }), false)
		line, err := vm.Expect(readyRE, bootTimeout)
		if err != nil {
			t.Fatal(err)
		}
		m := readyRE.FindStringSubmatch(line)
		t.Logf("OVMF (TCG): overlay ready %.1fs after QEMU started (init %sms)", time.Since(start).Seconds(), m[3])
		if m[1] != "/dev/vda2" || !strings.HasPrefix(m[2], "tmpfs") {
			t.Errorf("ready line %q: want lower /dev/vda2, a tmpfs upper", m[0])
		}
		out := vm.Output()
		// The kernel came through the firmware (the stub hands it the EFI
		// system table) and prints on the serial port.
		for _, want := range []string{"Linux version", "efi: EFI v", "by EDK II", "console [ttyS0] enabled"} {
			if !strings.Contains(out, want) {
				t.Errorf("console lacks %q", want)
			}
		}
		shellUp(t, vm)
		mounts := run(t, vm, "cat /proc/mounts")
		if !regexp.MustCompile(`(?m)^overlay / overlay \S*lowerdir=/run/rfs/lower`).MatchString(mounts) {
			t.Errorf("/ is not the overlay:\n%s", mounts)
		}
		if !regexp.MustCompile(`(?m)^/dev/vda2 /run/rfs/lower squashfs ro[,\s]`).MatchString(mounts) {
			t.Errorf("lower is not /dev/vda2 squashfs ro:\n%s", mounts)
		}
		// Both consoles: the screen (tty0) and the serial port, which is
		// /dev/console (the last console=).
		cmdline := run(t, vm, "cat /proc/cmdline")
		if !strings.Contains(cmdline, "console=tty0 console=ttyS0,115200") {
			t.Errorf("/proc/cmdline %q", cmdline)
		}
		if got := run(t, vm, "cat /sys/class/tty/console/active"); !strings.Contains(got, "tty0") || !strings.Contains(got, "ttyS0") {
			t.Errorf("active consoles %q: want tty0 and ttyS0", got)
		}
		if out := run(t, vm, ". /etc/os-release; echo $ID $VARIANT_ID; ls /sys/firmware/efi >/dev/null && echo efi"); out != "rfs pc\nefi\n" {
			t.Errorf("os-release / EFI: %q", out)
		}
	})
	t.Run("data", func(t *testing.T) {
		t.Parallel()
		img := buildImage(t, "pc", dataUpper)
		// Written to a disk 64 MiB larger than the image.
		st, err := os.Stat(img)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(img, st.Size()+64<<20); err != nil {
			t.Fatal(err)
		}
		vm := bootUEFI(t, img, true)
		waitShell(t, vm)
		out := vm.Output()
		// The partition table is rewritten with the backup GPT at the new
		// end (sgdisk -v below), the partition and filesystem grown.
		if !strings.Contains(out, "rfs: data partition /dev/vda3: 64 MiB -> 128 MiB (gpt table)") || !strings.Contains(out, "rfs: grew the data filesystem on /dev/vda3 from 64 MiB to 128 MiB") {
			t.Errorf("the first boot on a larger disk did not grow the data partition")
		}
		if st := run(t, vm, "cat /run/rfs/status.json"); !strings.Contains(st, `"mode": "data"`) || !strings.Contains(st, `"degraded": ""`) {
			t.Fatalf("status.json:\n%s", st)
		}
		run(t, vm, "echo kept > /etc/rfs-persist")
		shutdown(t, vm)
		if sg, err := exec.LookPath("sgdisk"); err == nil {
			if out, err := exec.Command(sg, "-v", img).CombinedOutput(); err != nil || !strings.Contains(string(out), "No problems found") {
				t.Errorf("sgdisk -v after the first boot: %v\n%s", err, out)
			}
		}

		vm = bootUEFI(t, img, true)
		waitShell(t, vm)
		if got := run(t, vm, "cat /etc/rfs-persist"); got != "kept\n" {
			t.Errorf("after a reboot /etc/rfs-persist is %q", got)
		}
		if out := vm.Output(); strings.Contains(out, "moved the backup GPT") || strings.Contains(out, "grew the data") {
			t.Error("the second boot moved the backup GPT or grew the data partition again")
		}
		shutdown(t, vm)
	})
}
