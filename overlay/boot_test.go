package overlay

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The integration tests re-exec the test binary:
//   - with RFS_TEST_CHILD set, in a private mount namespace, to run the
//     boot stages against the real kernel in a scratch root;
//   - as /rfs-test-init (argv[0]) inside the booted overlay, where it
//     checks the result from the point of view of the new init.
func TestMain(m *testing.M) {
	if os.Args[0] == testInit {
		if len(os.Args) > 1 && os.Args[1] == "persist" {
			os.Exit(persistChecks(os.Args[2:]))
		}
		if len(os.Args) > 1 && os.Args[1] == "layers" {
			os.Exit(layersChecks(os.Args[2:]))
		}
		os.Exit(initChecks(os.Args[1:]))
	}
	if os.Args[0] == "rfs-init" { // the installed copy, e.g. the background gc
		os.Exit(Helper(os.Args[1:], os.Stdout, os.Stderr))
	}
	if c := os.Getenv("RFS_TEST_CHILD"); c != "" {
		os.Exit(child(c))
	}
	code := m.Run()
	for _, d := range tempDirs {
		os.RemoveAll(d)
	}
	if persistSq != "" {
		os.RemoveAll(filepath.Dir(persistSq))
	}
	os.Exit(code)
}

const (
	testInit  = "/rfs-test-init"
	oldRootFD = 100 // the old initramfs root, kept open across the exec
)

type fixture struct {
	loopA, loopB string // whole loop devices: A is GPT, B is MBR
	guidA        string // PARTUUID of the squashfs on A (partition 1)
	mbrB         string // PARTUUID of the squashfs on B (partition 2)
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("integration test needs root (mounts, loop devices)")
	}
	for _, fs := range []string{"squashfs", "overlay", "tmpfs", "devtmpfs"} {
		b, _ := os.ReadFile("/proc/filesystems")
		if !strings.Contains(string(b), "\t"+fs+"\n") {
			t.Skipf("kernel has no %s", fs)
		}
	}
}

func isStatic(p string) bool {
	f, err := elf.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, ph := range f.Progs {
		if ph.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

// makeSquashfs builds a squashfs holding the test binary as /rfs-test-init
// and /etc/which containing which.
func makeSquashfs(t *testing.T, which string) string {
	sqCacheMu.Lock()
	defer sqCacheMu.Unlock()
	if p, ok := sqCache[which]; ok {
		return p
	}
	p := makeSquashfsUncached(t, which)
	// Keep it for the other tests (the image is read-only to them).
	dir, err := os.MkdirTemp("", "rfs-test-sq")
	if err != nil {
		t.Fatal(err)
	}
	keep := filepath.Join(dir, "root.sqfs")
	if err := os.Rename(p, keep); err != nil {
		b, _ := os.ReadFile(p)
		os.WriteFile(keep, b, 0o644)
	}
	tempDirs = append(tempDirs, dir)
	sqCache[which] = keep
	return keep
}

var (
	sqCacheMu sync.Mutex
	sqCache   = map[string]string{}
	tempDirs  []string // removed by TestMain
)

func makeSquashfsUncached(t *testing.T, which string) string {
	mksq := needTool(t, "mksquashfs")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if !isStatic(self) {
		// Fail, don't skip: a test-only import that pulls in cgo (net, via
		// some library) once silently turned every real-kernel boot test off.
		t.Fatal("test binary is dynamically linked, so it cannot run inside the squashfs: keep overlay's tests free of cgo imports (move cross-package tests elsewhere), or run with CGO_ENABLED=0")
	}
	dir := filepath.Join(t.TempDir(), "tree")
	for _, d := range []string{"etc", "sbin", "dev", "proc", "sys", "run", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(dir, 0o751) // an unusual root mode, to see it carried to the upper
	os.WriteFile(filepath.Join(dir, "etc/which"), []byte(which), 0o644)
	os.WriteFile(filepath.Join(dir, "etc/hello"), []byte("lower"), 0o644)
	bin, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, testInit[1:]), bin, 0o755)
	out := filepath.Join(t.TempDir(), "root.sqfs")
	run(t, "", mksq, dir, out, "-comp", "gzip", "-noappend", "-all-root", "-no-xattrs", "-quiet", "-no-progress")
	return out
}

func copyAt(t *testing.T, img, src string, off int64) {
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
}

func attach(t *testing.T, img string) string {
	losetup := needTool(t, "losetup")
	dev := strings.TrimSpace(run(t, "", losetup, "--find", "--show", "--partscan", img))
	t.Cleanup(func() {
		if out, err := exec.Command(losetup, "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v %s", dev, err, out)
		}
	})
	return dev
}

// setup makes two disks, both holding an rfs-like squashfs:
// A: GPT, partition 1 = squashfs "A", partition 2 = empty;
// B: MBR, partition 1 = empty, partition 2 = squashfs "B".
func setup(t *testing.T, kernelParts bool) fixture {
	needRoot(t)
	sg, sf := needTool(t, "sgdisk"), needTool(t, "sfdisk")
	sqA, sqB := makeSquashfs(t, "A"), makeSquashfs(t, "B")
	st, _ := os.Stat(sqA)
	partMiB := st.Size()>>20 + 2
	fx := fixture{guidA: "3d2c1b0a-5f4e-4b6a-9c8d-0123456789ab", mbrB: "c0de5eed-02"}

	imgA := filepath.Join(t.TempDir(), "a.img")
	f, _ := os.Create(imgA)
	f.Truncate((2*partMiB + 4) << 20)
	f.Close()
	run(t, "", sg, "--clear", "-n1:2048:+"+strconv.FormatInt(partMiB, 10)+"M", "-u1:"+fx.guidA,
		"-n2:0:+1M", "-u2:R", imgA)
	copyAt(t, imgA, sqA, 2048*512)

	imgB := filepath.Join(t.TempDir(), "b.img")
	f, _ = os.Create(imgB)
	f.Truncate((partMiB + 4) << 20)
	f.Close()
	run(t, "label: dos\nlabel-id: 0xc0de5eed\n\nstart=2048, size=2048, type=c\nstart=4096, type=83\n", sf, "--no-reread", "--no-tell-kernel", imgB)
	copyAt(t, imgB, sqB, 4096*512)

	fx.loopA, fx.loopB = attach(t, imgA), attach(t, imgB)
	partx := needTool(t, "partx")
	for _, lp := range [][2]string{{fx.loopA, fx.loopA + "p1"}, {fx.loopB, fx.loopB + "p2"}} {
		// (Not TrimSuffix of p: /dev/loop2p1 minus "p1", then "p2", is /dev/loo.)
		loop, p := lp[0], lp[1]
		if !kernelParts {
			// Make the init create the partition devices itself.
			exec.Command(partx, "-d", loop).Run()
			if _, err := os.Stat(p); err == nil {
				t.Fatalf("%s still there after partx -d", p)
			}
			continue
		}
		deadline := time.Now().Add(time.Second)
		for {
			if _, err := os.Stat(p); err == nil {
				break
			}
			if time.Now().After(deadline) {
				// This kernel has no partition parser (e.g. no
				// CONFIG_EFI_PARTITION): let partx add them.
				run(t, "", partx, "-a", loop)
				if _, err := os.Stat(p); err != nil {
					t.Fatalf("%s did not appear after losetup --partscan and partx -a", p)
				}
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return fx
}

// runChild runs the test binary as child scenario name in a new mount
// namespace and returns its output.
func runChild(t *testing.T, name, cmdline string, extraEnv ...string) (string, error) {
	self, _ := os.Executable()
	dir := t.TempDir()
	cmdlineFile := filepath.Join(dir, "cmdline")
	os.WriteFile(cmdlineFile, []byte(cmdline+"\n"), 0o644)
	root := filepath.Join(dir, "root")
	os.Mkdir(root, 0o755)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, self, "-test.run=^$")
	cmd.Env = append(os.Environ(), "RFS_TEST_CHILD="+name, "RFS_TEST_ROOT="+root, "RFS_TEST_CMDLINE="+cmdlineFile)
	cmd.Env = append(cmd.Env, extraEnv...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS}
	out, err := cmd.CombinedOutput()
	t.Logf("child %s output:\n%s", name, out)
	// The namespace is gone with the child: nothing may leak into ours.
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); bytes.Contains(mi, []byte(root)) {
		t.Errorf("mounts under %s leaked into the test's namespace", root)
	}
	return string(out), err
}

var readyRE = regexp.MustCompile(`(?m)^rfs: overlay ready \(lower=(/dev/\S+) squashfs, upper=tmpfs size=(\S+), (\d+)ms\)$`)

func TestBootGPT(t *testing.T) {
	fx := setup(t, true)
	want := filepath.Base(fx.loopA) + "p1"
	out, err := runChild(t, "boot", "console=ttyS0 rfs.root=PARTUUID="+strings.ToUpper(fx.guidA)+
		" rfs.upper=tmpfs:size=64M rfs.rootwait=5 rfs.init="+testInit+" rfs.bogus=1 -- check /dev/"+want+" "+fx.guidA+" A")
	checkBoot(t, out, err, "/dev/"+want, "64M")
	if !strings.Contains(out, "rfs: warning: unknown parameter rfs.bogus=1 ignored\n") {
		t.Error("no warning for rfs.bogus")
	}
	if !strings.Contains(out, "rfs: root PARTUUID="+fx.guidA+" is /dev/"+want+" (gpt partition 1 of "+filepath.Base(fx.loopA)) {
		t.Error("no root found line")
	}
}

func TestBootMBR(t *testing.T) {
	fx := setup(t, true)
	want := filepath.Base(fx.loopB) + "p2"
	out, err := runChild(t, "boot", "rfs.root=PARTUUID="+fx.mbrB+" rfs.debug rfs.init="+testInit+" -- check /dev/"+want+" "+fx.mbrB+" B")
	checkBoot(t, out, err, "/dev/"+want, "50%")
}

func TestBootDevicePath(t *testing.T) {
	fx := setup(t, true)
	want := "/dev/" + filepath.Base(fx.loopA) + "p1"
	out, err := runChild(t, "boot", "rfs.root="+want+" rfs.init="+testInit+" -- check "+want+" "+fx.guidA+" A")
	checkBoot(t, out, err, want, "50%")
}

// TestBootAddsPartition: the kernel made no partition devices; the init
// finds the root in the GPT and adds the partition itself (BLKPG).
func TestBootAddsPartition(t *testing.T) {
	fx := setup(t, false)
	want := filepath.Base(fx.loopA) + "p1"
	out, err := runChild(t, "boot", "rfs.root=PARTUUID="+fx.guidA+" rfs.debug rfs.init="+testInit+" -- check /dev/"+want+" "+fx.guidA+" A")
	checkBoot(t, out, err, "/dev/"+want, "50%")
	if !strings.Contains(out, "rfs: kernel has no device for partition 1 of "+filepath.Base(fx.loopA)+" (no gpt partition support?): added it from the table\n") {
		t.Error("no line about adding the partition")
	}
}

// TestBootShellAfter: rfs.shell=after runs the shell with everything
// mounted; when it exits, the boot goes on.
func TestBootShellAfter(t *testing.T) {
	fx := setup(t, true)
	want := filepath.Base(fx.loopA) + "p1"
	out, err := runChild(t, "boot", "rfs.root=PARTUUID="+fx.guidA+" rfs.shell=after rfs.init="+testInit+" -- check /dev/"+want+" "+fx.guidA+" A")
	checkBoot(t, out, err, "/dev/"+want, "50%")
	for _, w := range []string{"rfs: rfs.shell=after: overlay is mounted at /sysroot; exit the shell to switch root\n",
		"SHELL RAN\nSHELL SEES SYSROOT\nSHELL SEES STATUS\nrfs: rescue shell exited\n"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q", w)
		}
	}
	if strings.Index(out, "SHELL RAN") > strings.Index(out, "rfs: overlay ready") {
		t.Error("shell ran after switch_root")
	}
}

// TestBootShellBefore: rfs.shell runs the shell before the root is looked
// for; when it exits, the boot goes on.
func TestBootShellBefore(t *testing.T) {
	fx := setup(t, true)
	want := filepath.Base(fx.loopA) + "p1"
	out, err := runChild(t, "boot", "rfs.root=PARTUUID="+fx.guidA+" rfs.shell rfs.init="+testInit+" -- check /dev/"+want+" "+fx.guidA+" A")
	checkBoot(t, out, err, "/dev/"+want, "50%")
	if !strings.Contains(out, "SHELL RAN\nrfs: rescue shell exited\nrfs: waiting up to 30s for root") {
		t.Error("shell did not run before the root wait")
	}
}

func checkBoot(t *testing.T, out string, err error, dev, size string) {
	t.Helper()
	if err != nil {
		t.Fatalf("boot child failed: %v", err)
	}
	m := readyRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no ready line in output")
	}
	if m[1] != dev || m[2] != size {
		t.Errorf("ready line says lower=%s size=%s, want %s %s", m[1], m[2], dev, size)
	}
	if strings.Count(out, "rfs: overlay ready") != 1 {
		t.Error("ready line printed more than once")
	}
	if !strings.Contains(out, "\nRFS-CHECK OK\n") {
		t.Error("checks inside the booted root did not pass")
	}
	// Everything the init printed is prefixed.
	for _, l := range strings.Split(out[:strings.Index(out, m[0])], "\n") {
		if l != "" && !strings.HasPrefix(l, "rfs: ") && !strings.HasPrefix(l, "SHELL ") {
			t.Errorf("init output line without prefix: %q", l)
		}
	}
}

// child runs in a private mount namespace (CLONE_NEWNS from the parent).
func child(name string) int {
	root := os.Getenv("RFS_TEST_ROOT")
	fail := func(format string, args ...any) int {
		os.Stdout.WriteString("CHILD FAIL: " + sprintf(format, args...) + "\n")
		return 1
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fail("make / private: %v", err)
	}
	// The scratch root is a tmpfs, like the kernel's initramfs rootfs.
	if err := unix.Mount("tmpfs", root, "tmpfs", 0, "mode=0755"); err != nil {
		return fail("mount scratch root: %v", err)
	}
	for _, d := range []string{"dev", "proc", "sys", "run", "sysroot", "bin", "keep"} {
		os.Mkdir(filepath.Join(root, d), 0o755)
	}
	os.WriteFile(filepath.Join(root, "init"), []byte("initramfs file"), 0o755)
	os.WriteFile(filepath.Join(root, "bin/busybox"), []byte("initramfs file"), 0o755)
	// Another filesystem inside the initramfs: deletion must not cross it.
	if err := unix.Mount("tmpfs", filepath.Join(root, "keep"), "tmpfs", 0, ""); err != nil {
		return fail("mount keep: %v", err)
	}
	os.WriteFile(filepath.Join(root, "keep/precious"), []byte("x"), 0o644)

	b := NewBoot(root, os.Stdout)
	b.CmdlinePath = os.Getenv("RFS_TEST_CMDLINE")
	b.Console = "" // the shell writes to our stdout, not the VM console
	b.Halt = func() { os.Stdout.WriteString("CHILD HALT\n"); os.Exit(3) }
	childTestHooks(b)

	switch name {
	case "boot":
		// Keep a handle on the old root for the checks after switch_root
		// (fd without O_CLOEXEC: it survives the exec).
		fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fail("open root: %v", err)
		}
		if err := unix.Dup3(fd, oldRootFD, 0); err != nil {
			return fail("dup root fd: %v", err)
		}
		// A stand-in for busybox sh, for rfs.shell.
		os.WriteFile(filepath.Join(root, "bin/sh"), []byte("#!/bin/sh\necho SHELL RAN\n"+
			"test -f "+root+"/sysroot/etc/which && echo SHELL SEES SYSROOT\n"+
			"test -f "+root+"/run/rfs/status.json && echo SHELL SEES STATUS\n"), 0o755)
		b.Run()
		return fail("Run returned")
	case "fail":
		if err := b.MountEarly(); err != nil {
			return fail("MountEarly: %v", err)
		}
		before := mountsUnder(root)
		b.ReadParams()
		err := b.Prepare()
		if err == nil {
			return fail("Prepare succeeded")
		}
		b.Report(err)
		if after := mountsUnder(root); !slices.Equal(before, after) {
			return fail("mounts not undone:\nbefore %q\nafter  %q", before, after)
		}
		if _, err := os.Stat(filepath.Join(root, StatusPath)); err == nil {
			return fail("status.json left behind")
		}
		// The rescue shell: a script standing in for busybox sh.
		os.WriteFile(filepath.Join(root, "bin/sh"), []byte("#!/bin/sh\necho \"RESCUE SHELL PATH=$PATH HOME=$HOME TERM=$TERM\"\n"), 0o755)
		b.Rescue("test rescue")
		os.Remove(filepath.Join(root, "bin/sh"))
		b.Rescue("no shell")
		return fail("Rescue without a shell returned")
	}
	return fail("unknown child %q", name)
}

func sprintf(format string, args ...any) string {
	if len(args) == 0 {
		return format
	}
	var b strings.Builder
	// fmt is fine in tests; keep the helper tiny.
	b.WriteString(fmtSprintf(format, args...))
	return b.String()
}

func mountsUnder(root string) []string {
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	var out []string
	for _, l := range strings.Split(string(mi), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && strings.HasPrefix(f[4], root) {
			out = append(out, f[4])
		}
	}
	return out
}

func TestBootFailures(t *testing.T) {
	fx := setup(t, true)
	for _, tc := range []struct {
		name, cmdline string
		want          []string
	}{
		{"unknown partuuid", "rfs.root=PARTUUID=99999999-8888-4777-8666-555555555555 rfs.rootwait=0.3", []string{
			"rfs: ERROR: root: root device PARTUUID=99999999-8888-4777-8666-555555555555 not found\n",
			"rfs: looked for PARTUUID=99999999-8888-4777-8666-555555555555 for 0.3s (",
			"rfs: block devices seen:\n",
			"rfs:   " + filepath.Base(fx.loopA) + " (", " gpt disk-id=",
			"rfs:     " + filepath.Base(fx.loopA) + "p1 (", ") partition 1 PARTUUID=" + fx.guidA + "\n",
			"rfs:   " + filepath.Base(fx.loopB) + " (", " mbr disk-id=c0de5eed\n",
			"rfs:     " + filepath.Base(fx.loopB) + "p2 (", ") partition 2 PARTUUID=c0de5eed-02\n",
		}},
		{"unknown mbr id", "rfs.root=PARTUUID=c0de5eed-03 rfs.rootwait=0", []string{
			"rfs: ERROR: root: root device PARTUUID=c0de5eed-03 not found\n",
		}},
		{"no root", "quiet", []string{"rfs: ERROR: root: no root device given: add rfs.root=PARTUUID=<id>"}},
		{"not squashfs", "rfs.root=PARTUUID=c0de5eed-01", []string{
			"rfs: ERROR: root: root PARTUUID=c0de5eed-01 (/dev/" + filepath.Base(fx.loopB) + "p1): not a squashfs (magic \"\\x00\\x00\\x00\\x00\", want \"hsqs\")\n",
		}},
		{"missing init (undo after overlay)", "rfs.root=PARTUUID=" + fx.guidA + " rfs.init=/sbin/nope", []string{
			"rfs: ERROR: switch_root: init /sbin/nope not found in the root filesystem: no such file or directory\n",
			"rfs: set rfs.init=/path to the init of the image (default /sbin/init)\n",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runChild(t, "fail", tc.cmdline)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 3 {
				t.Fatalf("child: %v, want exit 3 (halt)", err)
			}
			for _, w := range append(tc.want,
				"rfs: test rescue\n", "RESCUE SHELL PATH=/sbin:/bin:/usr/sbin:/usr/bin HOME=/ TERM=linux\n", "rfs: rescue shell exited\n",
				"rfs: ERROR: cannot start rescue shell ", "CHILD HALT\n") {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q", w)
				}
			}
		})
	}
}

// initChecks runs as /rfs-test-init inside the booted overlay.
// args: check <lower device> <partuuid> <which>
func initChecks(args []string) int {
	failed := false
	fail := func(format string, a ...any) {
		os.Stdout.WriteString("RFS-CHECK FAIL: " + fmtSprintf(format, a...) + "\n")
		failed = true
	}
	if len(args) != 4 || args[0] != "check" {
		fail("args = %q", args)
		return 1
	}
	dev, partuuid, which := args[1], args[2], args[3]
	if env := os.Environ(); !slices.Equal(env, InitEnv) {
		fail("env = %q", env)
	}
	if wd, _ := os.Getwd(); wd != "/" {
		fail("cwd = %q", wd)
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs("/", &sfs); err != nil || uint32(sfs.Type) != unix.OVERLAYFS_SUPER_MAGIC {
		fail("/ is not overlay: type %#x %v", sfs.Type, err)
	}
	if b, _ := os.ReadFile("/etc/which"); string(b) != which {
		fail("/etc/which = %q, want %q: wrong lower", b, which)
	}
	// Root attributes come from the lower (mode 0751).
	if st, err := os.Stat("/"); err != nil || st.Mode().Perm() != 0o751 {
		fail("mode of / = %v %v, want 0751", st.Mode(), err)
	}
	// Writes land in the upper only (after the staging mount was detached).
	if err := os.WriteFile("/newfile", []byte("hi"), 0o644); err != nil {
		fail("write /newfile: %v", err)
	}
	if b, err := os.ReadFile("/run/rfs/upper/newfile"); err != nil || string(b) != "hi" {
		fail("upper/newfile = %q %v", b, err)
	}
	if _, err := os.Stat("/run/rfs/lower/newfile"); !errors.Is(err, os.ErrNotExist) {
		fail("newfile in lower: %v", err)
	}
	if err := os.WriteFile("/etc/hello", []byte("changed"), 0o644); err != nil {
		fail("copy-up /etc/hello: %v", err)
	}
	if b, _ := os.ReadFile("/run/rfs/upper/etc/hello"); string(b) != "changed" {
		fail("upper/etc/hello = %q", b)
	}
	if b, _ := os.ReadFile("/run/rfs/lower/etc/hello"); string(b) != "lower" {
		fail("lower/etc/hello = %q", b)
	}
	if err := os.WriteFile("/run/rfs/lower/x", nil, 0o644); !errors.Is(err, unix.EROFS) {
		fail("write to lower: %v, want EROFS", err)
	}
	if err := os.WriteFile("/run/rfs/upper/x", nil, 0o644); !errors.Is(err, unix.EROFS) {
		fail("write to upper view: %v, want EROFS", err)
	}
	if err := os.Remove("/run/rfs/upper/newfile"); !errors.Is(err, unix.EROFS) {
		fail("remove in upper view: %v, want EROFS", err)
	}
	for _, p := range []string{"/dev/null", "/proc/self/mountinfo", "/sys/class/block"} {
		if _, err := os.Stat(p); err != nil {
			fail("%s: %v", p, err)
		}
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	var rootLine string
	for _, l := range strings.Split(string(mi), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && f[4] == "/" {
			rootLine = l // the last one is on top
		}
		if len(f) > 4 && strings.Contains(f[4], ".upper-rw") {
			fail("staging mount still attached: %s", l)
		}
	}
	if !strings.Contains(rootLine, " - overlay overlay ") || strings.Contains(rootLine, "volatile") ||
		!strings.Contains(rootLine, "lowerdir=") {
		fail("mountinfo for /: %q", rootLine)
	}
	s, err := ReadStatus(StatusPath)
	if err != nil {
		fail("status: %v", err)
	} else {
		if s.Mode != "tmpfs" || len(s.Lower) != 1 || s.Lower[0].Device != dev || s.Lower[0].PARTUUID != partuuid ||
			s.Lower[0].FSType != "squashfs" || s.Lower[0].Mountpoint != LowerDir || s.Upper.Type != "tmpfs" ||
			s.Upper.Mountpoint != UpperDir || !strings.Contains(s.Overlay.Options, "redirect_dir=off,index=off,metacopy=off") ||
			s.Init != testInit || s.Degraded != "" || s.Version != Version || s.Timings.Total <= 0 || s.Timings.SwitchRoot <= 0 {
			fail("status = %+v", s)
		}
		if b, _ := os.ReadFile(StatusPath); !bytes.Contains(b, []byte(`"timings_ms"`)) {
			fail("status.json: %s", b)
		}
	}
	// The old initramfs (fd 100, kept across exec): emptied except for the
	// mount points it had (other filesystems are not crossed).
	f, err := os.Open("/proc/self/fd/100")
	if err != nil {
		fail("old root fd: %v", err)
	} else {
		names, _ := f.Readdirnames(-1)
		f.Close()
		slices.Sort(names)
		if !slices.Equal(names, []string{"keep", "sysroot"}) {
			fail("old initramfs still has %q, want [keep sysroot]", names)
		}
		if _, err := os.Stat("/proc/self/fd/100/keep/precious"); err != nil {
			fail("deletion crossed into another filesystem: %v", err)
		}
	}
	if failed {
		return 1
	}
	os.Stdout.WriteString("RFS-CHECK OK\n")
	return 0
}

var _ = io.Discard
