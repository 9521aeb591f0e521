// Package e2e builds real images and boots them in QEMU, asserting on what
// the guest's serial console says. These are the tests that prove the
// product works; they skip (with the reason) when QEMU is not installed.
package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rfsbuild/rfs/boards"
	"github.com/rfsbuild/rfs/builder"
	"github.com/rfsbuild/rfs/qemu"
	"github.com/rfsbuild/rfs/rootfs"
)

const bootTimeout = 120 * time.Second

// buildImage builds an image for board into a temp dir.
func buildImage(t *testing.T, board string, mod func(*builder.Config)) string {
	t.Helper()
	b, err := boards.Lookup(board)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath(b.QEMU.Binary); err != nil {
		t.Skipf("%s not installed (apt-get install qemu-system-arm qemu-system-x86)", b.QEMU.Binary)
	}
	cfg := builder.Config{
		Board:  b,
		Output: filepath.Join(t.TempDir(), board+".img"),
		Epoch:  builder.DefaultEpoch,
		Owner:  &rootfs.Owner{},
		Log:    t.Logf,
	}
	if mod != nil {
		mod(&cfg)
	}
	res, err := builder.Build(context.Background(), cfg)
	if err != nil {
		t.Fatalf("build %s: %v", board, err)
	}
	return res.Path
}

// boot starts QEMU on an image the way `rfs run` does.
func boot(t *testing.T, img, extraCmdline string, otherDisks ...string) *qemu.VM {
	t.Helper()
	dir := t.TempDir()
	cfg, _, err := qemu.ForImage(img, dir, false)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Append = strings.TrimSpace(cfg.Append + " " + extraCmdline)
	cfg.OtherDisks = otherDisks
	return startVM(t, cfg, dir)
}

// startVM starts QEMU with the console logged to dir/console.log, stops it
// when the test ends, and shows the console's tail if the test failed.
func startVM(t *testing.T, cfg qemu.Config, dir string) *qemu.VM {
	t.Helper()
	logf, err := os.Create(filepath.Join(dir, "console.log"))
	if err != nil {
		t.Fatal(err)
	}
	vm, err := qemu.Start(context.Background(), cfg, logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		vm.Close()
		logf.Close()
		if t.Failed() {
			t.Logf("console:\n%s", tail(vm.Output(), 6000))
		}
	})
	return vm
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// waitShell waits for the overlay and a working shell on the console.
func waitShell(t *testing.T, vm *qemu.VM) {
	t.Helper()
	if _, err := vm.Expect(regexp.MustCompile(`rfs: overlay ready \([^)]*\)`), bootTimeout); err != nil {
		t.Fatal(err)
	}
	shellUp(t, vm)
}

// shellUp waits for a shell on the console once the overlay is ready (it
// may start before or after we look, so ask it something), then keeps the
// kernel's informational messages off the console: they would interleave
// with command output ("cat used greatest stack depth ...").
func shellUp(t *testing.T, vm *qemu.VM) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := vm.Run("true", 5*time.Second); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no shell on the console")
		}
	}
	// Plain shell, no dmesg -n: u-root's dmesg has no such flag.
	if _, err := vm.Run("echo 1 > /proc/sys/kernel/printk", 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, vm *qemu.VM, cmd string) string {
	t.Helper()
	out, err := vm.Run(cmd, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestBootOverlay(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU; skipped in -short mode")
	}
	for _, board := range []string{"qemu-arm64", "qemu-amd64"} {
		t.Run(board, func(t *testing.T) {
			t.Parallel()
			img := buildImage(t, board, func(c *builder.Config) { c.Upper = "tmpfs" })
			vm := boot(t, img, "")
			waitShell(t, vm)

			// / is an overlay of the squashfs lower and a tmpfs upper.
			mounts := run(t, vm, "cat /proc/mounts")
			rootLine := regexp.MustCompile(`(?m)^overlay / overlay (\S+)`).FindStringSubmatch(mounts)
			if rootLine == nil {
				t.Fatalf("/ is not an overlay:\n%s", mounts)
			}
			// The kernel lists only options that differ from its defaults;
			// redirect_dir/index/metacopy off are these kernels' defaults,
			// so assert nothing turned them on, and that the init asked.
			if !strings.Contains(rootLine[1], "lowerdir=/run/rfs/lower") {
				t.Errorf("overlay options %q lack the lower", rootLine[1])
			}
			for _, bad := range []string{"redirect_dir=on", "redirect_dir=follow", "index=on", "metacopy=on", "volatile"} {
				if strings.Contains(rootLine[1], bad) {
					t.Errorf("overlay options %q contain %s", rootLine[1], bad)
				}
			}
			if !regexp.MustCompile(`(?m)^/dev/vda2 /run/rfs/lower squashfs ro[,\s]`).MatchString(mounts) {
				t.Errorf("lower is not /dev/vda2 squashfs ro:\n%s", mounts)
			}
			if !regexp.MustCompile(`(?m)^\S+ /run/rfs/upper tmpfs ro[,\s]`).MatchString(mounts) {
				t.Errorf("upper is not exposed as a read-only tmpfs at /run/rfs/upper:\n%s", mounts)
			}

			// A file written to / lands in the upper, not in the lower.
			run(t, vm, "echo hello-upper > /etc/rfs-e2e")
			if got := run(t, vm, "cat /run/rfs/upper/etc/rfs-e2e"); got != "hello-upper\n" {
				t.Errorf("upper has %q", got)
			}
			if _, err := vm.Run("test -e /run/rfs/lower/etc/rfs-e2e", 30*time.Second); err == nil {
				t.Error("the new file is visible in the lower")
			}
			// The on-device diff sees it (docker diff's A, and C for its parent).
			if out := run(t, vm, "rfs-init diff"); !strings.Contains(out, "A /etc/rfs-e2e\n") || !strings.Contains(out, "C /etc\n") {
				t.Errorf("rfs-init diff:\n%s", out)
			}
			// The lower and the exposed upper are read-only.
			if out, err := vm.Run("touch /run/rfs/lower/x 2>&1", 30*time.Second); err == nil || !strings.Contains(out, "Read-only file system") {
				t.Errorf("writing to the lower: %q, %v", out, err)
			}
			if _, err := vm.Run("touch /run/rfs/upper/x", 30*time.Second); err == nil {
				t.Error("the exposed upper is writable")
			}
			// Busybox applets run, from every usual path.
			if out := run(t, vm, "/bin/busybox echo applets-ok && /sbin/mountpoint / && /usr/bin/env true && ls /usr/bin | wc -l"); !strings.Contains(out, "applets-ok") {
				t.Errorf("busybox: %q", out)
			}
			status := run(t, vm, "cat /run/rfs/status.json")
			for _, want := range []string{`"tmpfs"`, "redirect_dir=off,index=off,metacopy=off", `"/dev/vda2"`} {
				if !strings.Contains(status, want) {
					t.Errorf("status.json lacks %s:\n%s", want, status)
				}
			}
			if out := run(t, vm, "hostname; . /etc/os-release; echo $ID $VARIANT_ID"); !strings.Contains(out, "rfs "+board) {
				t.Errorf("hostname/os-release: %q", out)
			}
		})
	}
}
