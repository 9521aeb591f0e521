package e2e

import (
	"context"
	"crypto/ed25519"
	"io"
	"math/rand"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rfsbuild/rfs/builder"
	"github.com/rfsbuild/rfs/bundle"
	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/ptable"
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
	t.Parallel()
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
	v0 := releaseImage(t, board, "0.9", key, nil)
	amd := releaseImage(t, "qemu-amd64", "9", key, nil)
	dev := copyFile(t, v1)
	if !inPrivateNet(t) {
		return
	}
	reg := countingProxy(t, startRegistry(t))
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
	before := proxied(reg)
	vm.Send("rfs-init update " + refs["v2"] + "\n")
	expectLine(t, vm, `rebooting into slot b for a trial boot`, time.Minute)
	expectLine(t, vm, `update: trial boot of slot b \(version 2\)`, bootTimeout)
	expectLine(t, vm, `slot b \(version 2\) is healthy: committed`, bootTimeout)
	shellUp(t, vm)
	logTransfer(t, proxied(reg)-before, v2)
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

// TestUpdatePowerCut cuts the power (kills QEMU) at seeded random moments
// of an update from v1 to v2 — during the download, the slot write, the
// switch and the trial — at least 20 times. After every cut the device
// must boot v1 or v2, its data partition e2fsck-clean; an update that was
// cut is run again until it completes, and then the device starts over
// from a fresh v1.
func TestUpdatePowerCut(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU; skipped in -short mode")
	}
	t.Parallel()
	key := newUpdateKey(t)
	const board = "qemu-arm64"
	v1 := releaseImage(t, board, "1", key, nil)
	v2 := releaseImage(t, board, "2", key, func(c *builder.Config) {
		c.Files = append(c.Files, filesDir(t, map[string]string{"etc/new-in-2": "new in 2\n"}))
	})
	if !inPrivateNet(t) {
		return
	}
	ref := pushRelease(t, v2, startRegistry(t), "v2", key.priv)
	seed := time.Now().UnixNano()
	if s := os.Getenv("RFS_E2E_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	t.Logf("seed %d (RFS_E2E_SEED repeats the cut times)", seed)
	rnd := rand.New(rand.NewSource(seed))
	want := 20
	if n, _ := strconv.Atoi(os.Getenv("RFS_E2E_SOAK")); n > 0 {
		want = n // make soak
	}
	dev := copyFile(t, v1)
	cuts, completed := 0, 0
	written := false // /root/mine is on this device
	for round := 0; cuts < want && round < 3*want; round++ {
		vm, _ := startNet(t, dev, true, qemu.Network{Mode: qemu.NetInternet})
		waitShell(t, vm)
		version := settledVersion(t, vm)
		if version == "2" {
			checkFile(t, vm, "/etc/new-in-2", "new in 2")
			checkFile(t, vm, "/root/mine", "mine")
			vm.Close()
			completed++
			dev, written = copyFile(t, v1), false
			continue
		}
		if version != "1" {
			t.Fatalf("round %d: the device runs version %q, want 1 or 2", round, version)
		}
		if written {
			checkFile(t, vm, "/root/mine", "mine")
		}
		// The user's data, synced (a write not yet synced may be lost
		// in a cut, as on any ext4): it must survive every cut.
		run(t, vm, "echo mine > /root/mine && sync")
		written = true
		vm.Send("rfs-init update " + ref + "\n")
		// Updates from here take ~15-25 s to commit under TCG: cut
		// anywhere in the first 22 s, or (one round in five) let it run.
		if rnd.Intn(5) == 0 {
			expectLine(t, vm, `is healthy: committed`, 3*bootTimeout)
			vm.Close()
			continue
		}
		cut := time.Duration(rnd.Int63n(int64(22 * time.Second)))
		time.Sleep(cut)
		t.Logf("round %d: power cut %s after the update started, at: %s", round, cut.Round(time.Millisecond), lastUpdateLine(vm.Output()))
		vm.Close()
		cuts++
		fsckData(t, &dataDisk{path: dev, data: dataPartition(t, dev)})
	}
	if cuts < want || completed == 0 {
		t.Fatalf("%d power cuts and %d completed updates, want at least %d and 1", cuts, completed, want)
	}
	t.Logf("%d power cuts, %d updates completed", cuts, completed)
}

// settledVersion is the version of the committed slot the device runs:
// a boot that is a trial (the update was cut after its slot was ready, so
// this boot armed and tried it) is waited out first.
func settledVersion(t *testing.T, vm *qemu.VM) string {
	t.Helper()
	committed := regexp.MustCompile(`slot:\s+[ab] \(version ([^)]*)\), committed`)
	for range 3 {
		st := run(t, vm, "rfs-init status")
		if m := committed.FindStringSubmatch(st); m != nil {
			return m[1]
		}
		if !strings.Contains(st, "on trial") {
			t.Fatalf("rfs-init status names no committed slot and no trial:\n%s", st)
		}
		out, err := vm.Expect(regexp.MustCompile(`is healthy: committed|failed its health check`), bootTimeout)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, "failed its health check") {
			waitShell(t, vm)
		}
	}
	t.Fatal("the device does not settle on a committed slot")
	return ""
}

// lastUpdateLine is the last "rfs: update:" or boot line on the console.
func lastUpdateLine(out string) string {
	lines := regexp.MustCompile(`rfs: (update: [^\r\n]*|overlay ready[^\r\n]*|rfs-init [^\r\n]* starting)`).FindAllString(out, -1)
	if len(lines) == 0 {
		return "(before the update's first line)"
	}
	return lines[len(lines)-1]
}

// dataPartition is the data partition of the image at path.
func dataPartition(t *testing.T, path string) ptable.Partition {
	t.Helper()
	img, err := image.OpenImage(path)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	p, ok := img.Data()
	if !ok {
		t.Fatal("no data partition")
	}
	return ptable.Partition{Number: p.Index, PARTUUID: p.GUID, Start: p.Start, Size: p.Size}
}

// proxies counts the bytes each counting proxy sent, by its address.
var proxies sync.Map

// countingProxy listens on 127.0.0.1 and forwards every connection to
// target, counting the bytes sent back (what a guest downloads); it
// returns its own HOST:PORT.
func countingProxy(t *testing.T, target string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	n := new(atomic.Int64)
	proxies.Store(l.Addr().String(), n)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer up.Close()
				go io.Copy(up, c)
				// Counted as it goes: a guest keeps its connection open.
				io.Copy(countingWriter{c, n}, up)
			}()
		}
	}()
	return l.Addr().String()
}

type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// proxied is how many bytes the counting proxy at addr has sent.
func proxied(addr string) int64 {
	if n, ok := proxies.Load(addr); ok {
		return n.(*atomic.Int64).Load()
	}
	return -1
}

func fileSize(t *testing.T, p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// logTransfer logs what the v1 to v2 update moved against what other
// ways would move for the same change (bench/update.sh reads the line).
func logTransfer(t *testing.T, got int64, v2 string) {
	t.Helper()
	rel, err := bundle.ReadImage(v2, "")
	if err != nil {
		t.Fatal(err)
	}
	defer rel.Close()
	sizes := map[string]int64{}
	for _, p := range rel.Config.Parts {
		sizes[p.Role] += p.Size
	}
	t.Logf("update bytes: rfs %d, root only (Mender/RAUC rootfs) %d, kernel+initramfs+root (gokrazy boot+root) %d, image reflash %d",
		got, sizes["root"], sizes["kernel"]+sizes["initramfs"]+sizes["root"], fileSize(t, v2))
	// v2 changes the root only: the root, the boot files, the manifest and
	// the config travel, not the kernel or the initramfs the device has.
	if got < sizes["root"] || got > sizes["root"]+sizes["initramfs"]/2 {
		t.Errorf("the update moved %d bytes; the root is %d: the device should fetch the root and little else", got, sizes["root"])
	}
}
