package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rfsbuild/rfs/builder"
)

// The init must mount its own image's root even when another rfs image (with
// a different build ID, so different PARTUUIDs) is the first disk.
func TestBootFindsOwnRootAmongDisks(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU; skipped in -short mode")
	}
	t.Parallel()
	other := buildImage(t, "qemu-arm64", func(c *builder.Config) { c.Hostname = "other" })
	mine := buildImage(t, "qemu-arm64", func(c *builder.Config) { c.Hostname = "mine" })
	vm := boot(t, mine, "", other)
	waitShell(t, vm)
	if out := run(t, vm, "hostname"); out != "mine\n" {
		t.Errorf("booted the wrong root: hostname %q", out)
	}
	if mounts := run(t, vm, "cat /proc/mounts"); !strings.Contains(mounts, "/dev/vdb2 /run/rfs/lower squashfs") {
		t.Errorf("lower is not the second disk's root partition:\n%s", mounts)
	}
}

// rfs.shell stops in the initramfs with a shell; a root that never appears
// ends in the rescue shell with a message naming what was looked for.
func TestRescueShell(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU; skipped in -short mode")
	}
	t.Parallel()
	img := buildImage(t, "qemu-arm64", nil)

	t.Run("rfs.shell", func(t *testing.T) {
		vm := boot(t, img, "rfs.shell")
		if _, err := vm.Expect(regexp.MustCompile(`rfs: .*shell`), bootTimeout); err != nil {
			t.Fatal(err)
		}
		out, err := vm.Run("echo in-initramfs; ls /init", 30*time.Second)
		if err != nil || !strings.Contains(out, "in-initramfs") {
			t.Fatalf("rescue shell: %q, %v", out, err)
		}
	})
	t.Run("missing root", func(t *testing.T) {
		vm := boot(t, img, "rfs.root=PARTUUID=00000000-0000-4000-8000-000000000000 rfs.rootwait=2")
		if _, err := vm.Expect(regexp.MustCompile(`00000000-0000-4000-8000-000000000000`), bootTimeout); err != nil {
			t.Fatal(err)
		}
		if _, err := vm.Expect(regexp.MustCompile(`(?i)rescue shell`), 30*time.Second); err != nil {
			t.Fatal(err)
		}
		if out, err := vm.Run("echo alive", 30*time.Second); err != nil || !strings.Contains(out, "alive") {
			t.Fatalf("no working rescue shell: %q, %v", out, err)
		}
	})
}

// `rfs run --expect` is the scripted interface: 0 when the text appears,
// 2 on timeout.
func TestRunExpectCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU; skipped in -short mode")
	}
	t.Parallel()
	img := buildImage(t, "qemu-amd64", nil)
	rfsBin := filepath.Join(t.TempDir(), "rfs")
	if out, err := exec.Command("go", "build", "-o", rfsBin, "../cmd/rfs").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	before, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(rfsBin, "run", img, "--expect", "rfs: overlay ready", "--timeout", "120s")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("rfs run --expect: %v\n%s", err, tail(string(out), 3000))
	}
	cmd = exec.Command(rfsBin, "run", img, "--expect", "this never appears", "--timeout", "3s")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Fatalf("rfs run --expect on timeout: %v (want exit status 2)\n%s", err, tail(string(out), 2000))
	}
	if !strings.Contains(string(out), "did not appear") {
		t.Errorf("timeout message: %s", tail(string(out), 500))
	}
	after, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("rfs run modified the image without --persist")
	}
}

// login: true puts getty on the console; root (no password set) logs in.
func TestLoginConsole(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU; skipped in -short mode")
	}
	t.Parallel()
	img := buildImage(t, "qemu-arm64", func(c *builder.Config) { c.Login = true })
	vm := boot(t, img, "")
	if _, err := vm.Expect(regexp.MustCompile(`rfs login: `), bootTimeout); err != nil {
		t.Fatal(err)
	}
	if err := vm.Send("root\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := vm.Expect(regexp.MustCompile(`root login on`), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if out := run(t, vm, "id -u"); out != "0\n" {
		t.Fatalf("id -u after login = %q", out)
	}
}
