package e2e

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rfsbuild/rfs/apps"
	"github.com/rfsbuild/rfs/builder"
)

// TestURootUserland boots the u-root userland on both QEMU boards: the rfs init mounts the
// overlay and hands over to u-root's init, which starts gosh on the console.
func TestURootUserland(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU; skipped in -short mode")
	}
	for _, board := range []string{"qemu-arm64", "qemu-amd64"} {
		t.Run(board, func(t *testing.T) {
			t.Parallel()
			testURoot(t, board)
		})
	}
}

func testURoot(t *testing.T, board string) {
	img := buildImage(t, board, func(c *builder.Config) {
		c.Userland = "u-root"
		c.Upper = "tmpfs"
	})
	vm := boot(t, img, "")
	waitShell(t, vm) // the overlay line, then a command run by gosh
	if !strings.Contains(vm.Output(), "Welcome to u-root") {
		t.Error("u-root's init did not start")
	}
	mounts := run(t, vm, "cat /proc/mounts")
	if !regexp.MustCompile(`(?m)^overlay / overlay \S*lowerdir=/run/rfs/lower`).MatchString(mounts) {
		t.Fatalf("/ is not the rfs overlay:\n%s", mounts)
	}
	if out := run(t, vm, "ls /bbin"); !strings.Contains(out, "gosh") || !strings.Contains(out, "bb") {
		t.Errorf("ls /bbin: %q", out)
	}
	if out := run(t, vm, "echo hi > /root/x; cat /run/rfs/upper/root/x"); !strings.Contains(out, "hi") {
		t.Errorf("a write did not land in the upper: %q", out)
	}
	// u-root's init bind-mounts a tmpfs copy of /etc over /etc (documented
	// in docs/architecture.md): writes there stay off the upper.
	run(t, vm, "echo hi > /etc/rfs-e2e")
	if _, err := vm.Run("cat /run/rfs/upper/etc/rfs-e2e", 30*time.Second); err == nil {
		t.Error("/etc writes reach the upper: u-root's /etc tmpfs copy is gone, update docs/architecture.md")
	}
}

// TestAppService boots the hello app as a service: its output is on the
// console after boot, and it is restarted when killed — by busybox init's
// respawn, or on u-root (whose init restarts nothing) by the rfs init's
// supervisor started as u-root's uinit.
func TestAppService(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU; skipped in -short mode")
	}
	for _, userland := range []string{"busybox", "u-root"} {
		t.Run(userland, func(t *testing.T) {
			t.Parallel()
			testAppService(t, userland)
		})
	}
}

func testAppService(t *testing.T, userland string) {
	img := buildImage(t, "qemu-arm64", func(c *builder.Config) {
		c.Upper = "tmpfs"
		c.Userland = userland
		c.Apps = []apps.App{{Path: "./hello", Service: true}}
		c.AppsDir = "testdata"
	})
	vm := boot(t, img, "")
	// vm.Expect consumes the console up to its match; the app may print
	// before or after the overlay line, so look at the whole output.
	waitShell(t, vm)
	started := regexp.MustCompile(`hello-app: started pid (\d+)`)
	var first string
	deadline := time.Now().Add(30 * time.Second)
	for first == "" {
		if m := started.FindStringSubmatch(vm.Output()); m != nil {
			first = m[1]
		} else if time.Now().After(deadline) {
			t.Fatal("no hello-app output on the console after boot")
		} else {
			time.Sleep(200 * time.Millisecond)
		}
	}
	if userland == "busybox" {
		if out := run(t, vm, "pidof hello"); strings.TrimSpace(out) != first {
			t.Errorf("pidof hello = %q, want %s", out, first)
		}
	}
	run(t, vm, "kill "+first)
	deadline = time.Now().Add(30 * time.Second)
	for {
		all := started.FindAllStringSubmatch(vm.Output(), -1)
		if len(all) >= 2 && all[len(all)-1][1] != first {
			t.Logf("restarted: pid %s -> %s", first, all[len(all)-1][1])
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("hello was not restarted after kill")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if userland == "busybox" {
		if out := run(t, vm, "pidof hello"); strings.TrimSpace(out) == first || strings.TrimSpace(out) == "" {
			t.Errorf("after the restart pidof hello = %q", out)
		}
	}
}
