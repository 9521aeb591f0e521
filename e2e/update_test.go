package e2e

import (
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rfsbuild/rfs/builder"
	"github.com/rfsbuild/rfs/bundle"
	"github.com/rfsbuild/rfs/qemu"
	"github.com/rfsbuild/rfs/slots"
	"github.com/rfsbuild/rfs/updatesig"
)

// updateKey is an update key pair: the public half as rfs.yaml's
// public_key carries it, the private half to sign pushes.
type updateKey struct {
	pub  string
	priv ed25519.PrivateKey
}

func newUpdateKey(t *testing.T) updateKey {
	t.Helper()
	priv, pub, err := updatesig.Generate()
	if err != nil {
		t.Fatal(err)
	}
	pem, err := updatesig.MarshalPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return updateKey{pub: string(pem), priv: priv}
}

// filesDir writes files (path → content) into a directory for --files.
func filesDir(t *testing.T, files map[string]string) builder.Files {
	t.Helper()
	dir := t.TempDir()
	for p, content := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return builder.Files{Src: dir, Dest: "/"}
}

// releaseImage builds a qemu-arm64 release with A/B slots: the agent on
// DHCP, the update key, a 5 s health check, /etc/reset-me as a reset
// path, and /etc/app.conf saying the version.
func releaseImage(t *testing.T, board, version string, key updateKey, mod func(*builder.Config)) string {
	t.Helper()
	return buildImage(t, board, func(c *builder.Config) {
		dhcpOnly(c)
		c.Version = version
		c.Update = &builder.UpdateSettings{Config: slots.Config{
			PublicKey: key.pub, HealthSeconds: 5, ResetPaths: []string{"/etc/reset-me"},
		}}
		c.Files = append(c.Files, filesDir(t, map[string]string{
			"etc/app.conf": "app " + version + "\n", "etc/reset-me": "release " + version + "\n",
		}))
		if mod != nil {
			mod(c)
		}
	})
}

// pushRelease pushes img's release to the registry at reg as tag, signed
// with priv (nil: unsigned), and returns the reference a guest on QEMU's
// user network uses (10.0.2.2 is the host's loopback).
func pushRelease(t *testing.T, img, reg, tag string, priv ed25519.PrivateKey) string {
	t.Helper()
	opts := bundle.Options{}
	if priv != nil {
		opts.Signer = bundle.SignWith(priv)
	}
	if _, err := bundle.Push(context.Background(), img, reg+"/rfs/dev:"+tag, opts); err != nil {
		t.Fatalf("push %s: %v", tag, err)
	}
	_, port, _ := strings.Cut(reg, ":")
	return "http://10.0.2.2:" + port + "/rfs/dev:" + tag
}

// TestUpdate is a device's life through field updates from a real
// registry (Debian's docker-registry on loopback, in a private network
// namespace): refusals, an update that keeps the upper and reports what
// it shadows, and three trials that roll back on their own.
func TestUpdate(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU; skipped in -short mode")
	}
	key, other := newUpdateKey(t), newUpdateKey(t)
	const board = "qemu-arm64"
	v1 := releaseImage(t, board, "1", key, nil)
	v2 := releaseImage(t, board, "2", key, func(c *builder.Config) {
		c.Files = append(c.Files, filesDir(t, map[string]string{"etc/new-in-2": "new in 2\n"}))
	})
	v3init := releaseImage(t, board, "3", key, func(c *builder.Config) { c.Cmdline = "rfs.init=/sbin/missing" })
	v3health := releaseImage(t, board, "3", key, func(c *builder.Config) {
		c.Update.Config.HealthCommand = "test -e /etc/not-there"
	})
	v3panic := releaseImage(t, board, "3", key, func(c *builder.Config) { c.Cmdline = "rdinit=/not-there" })
	v0 := releaseImage(t, board, "0", key, nil)
	amd := releaseImage(t, "qemu-amd64", "9", key, nil)
	dev := copyFile(t, v1)
	if !inPrivateNet(t) {
		return
	}
	reg := startRegistry(t)
	refs := map[string]string{
		"v2": pushRelease(t, v2, reg, "v2", key.priv), "unsigned": pushRelease(t, v2, reg, "unsigned", nil),
		"other-key": pushRelease(t, v2, reg, "other-key", other.priv), "older": pushRelease(t, v0, reg, "v0", key.priv),
		"amd64": pushRelease(t, amd, reg, "amd64", key.priv), "v3init": pushRelease(t, v3init, reg, "v3init", key.priv),
		"v3health": pushRelease(t, v3health, reg, "v3health", key.priv), "v3panic": pushRelease(t, v3panic, reg, "v3panic", key.priv),
	}
	vm, _ := startNet(t, dev, true, qemu.Network{Mode: qemu.NetInternet})
	waitShell(t, vm)
	run(t, vm, "echo mine > /root/mine; echo mine > /etc/app.conf; echo mine > /etc/reset-me")

	checkRefusals := func(when string) {
		for _, c := range []struct{ ref, want string }{
			{"unsigned", "not signed"}, {"other-key", "another key"}, {"older", "older"}, {"amd64", "qemu-amd64"},
		} {
			out := run(t, vm, "rfs-init update "+refs[c.ref]+" 2>&1; echo rc=$?")
			if !strings.Contains(out, "rc=1") || !strings.Contains(out, c.want) {
				t.Errorf("%s: rfs-init update %s:\n%s\nwant exit 1 and %q", when, c.ref, out, c.want)
			}
		}
		if st := run(t, vm, "rfs-init status"); strings.Contains(st, "armed") {
			t.Errorf("%s: a refused release armed a trial:\n%s", when, st)
		}
	}
	checkRefusals("on v1")

	// v2: downloaded through the registry, tried, committed.
	vm.Send("rfs-init update " + refs["v2"] + "\n")
	expectLine(t, vm, `rebooting into slot b for a trial boot`, time.Minute)
	expectLine(t, vm, `update: trial boot of slot b \(version 2\)`, bootTimeout)
	expectLine(t, vm, `slot b \(version 2\) is healthy: committed`, bootTimeout)
	shellUp(t, vm)
	checkFile(t, vm, "/root/mine", "mine")
	checkFile(t, vm, "/etc/new-in-2", "new in 2")
	checkFile(t, vm, "/etc/app.conf", "mine")      // the upper's copy wins...
	checkFile(t, vm, "/etc/reset-me", "release 2") // ...except on a reset path
	st := run(t, vm, "rfs-init status")
	for _, want := range []string{"b (version 2), committed", "/etc/app.conf: changed by the release", "/etc/reset-me: the upper's copy was dropped"} {
		if !strings.Contains(st, want) {
			t.Errorf("rfs-init status after the update lacks %q:\n%s", want, st)
		}
	}

	// A reboot stays on the committed slot.
	vm.Send("reboot\n")
	waitShell(t, vm)
	if st := run(t, vm, "rfs-init status"); !strings.Contains(st, "b (version 2), committed") {
		t.Errorf("after a reboot:\n%s", st)
	}
	checkRefusals("on v2")

	// Three bad releases, each rolled back to v2 on its own.
	for _, c := range []struct{ ref, why string }{
		{"v3init", "the init failed on slot a"},
		{"v3health", "health check failed: command"},
		{"v3panic", "did not come up"},
	} {
		vm.Send("rfs-init update " + refs[c.ref] + "\n")
		expectLine(t, vm, `rebooting into slot a for a trial boot`, time.Minute)
		expectLine(t, vm, `update: rolled back to slot b|failed its health check|rebooting into slot b`, 3*bootTimeout)
		waitShell(t, vm)
		st := run(t, vm, "rfs-init status")
		if !strings.Contains(st, "b (version 2), committed") || !strings.Contains(st, "version 3 rolled back") || !strings.Contains(st, c.why) {
			t.Errorf("%s: after the rollback:\n%s\nwant slot b committed and a rollback saying %q", c.ref, st, c.why)
		}
		checkFile(t, vm, "/root/mine", "mine")
	}
	t.Logf("boots: %v", vm.Boots())
}

// expectLine waits for a console line matching re.
func expectLine(t *testing.T, vm *qemu.VM, re string, timeout time.Duration) {
	t.Helper()
	if _, err := vm.Expect(regexp.MustCompile(re), timeout); err != nil {
		t.Fatalf("waiting for %q: %v", re, err)
	}
}

// checkFile compares a guest file's content (trimmed).
func checkFile(t *testing.T, vm *qemu.VM, path, want string) {
	t.Helper()
	if got := strings.TrimSpace(run(t, vm, "cat "+path)); got != want {
		t.Errorf("%s = %q, want %q", path, got, want)
	}
}
