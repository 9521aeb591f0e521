package overlay

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rfsbuild/rfs/agentconf"
	"github.com/rfsbuild/rfs/datapart"
	"github.com/rfsbuild/rfs/ext4fs/ext4sb"
	"github.com/rfsbuild/rfs/ptable"
)

// Real-kernel tests of the data partition: each "boot" is the boot child
// (private mount namespace) run on the same loop device, so the data
// partition carries over from one boot to the next.
//
// The host kernel has no vfat: the test boot partition is ext2 and the
// child sets Boot.BootFSType (the flag logic is the same; QEMU e2e tests
// use the real FAT).

// childTestHooks applies the test knobs given to the boot child.
func childTestHooks(b *Boot) {
	// Never the host's clock: say what would be set.
	b.SetClock = func(t time.Time) error {
		os.Stdout.WriteString("RFS-TEST CLOCK SET " + t.UTC().Format(time.RFC3339) + "\n")
		return nil
	}
	if fs := os.Getenv("RFS_TEST_BOOTFS"); fs != "" {
		b.BootFSType = fs
	}
	if w := os.Getenv("RFS_TEST_DATAWAIT"); w != "" {
		d, _ := time.ParseDuration(w)
		DataWait = d
	}
	if k, _ := strconv.Atoi(os.Getenv("RFS_TEST_CRASH")); k > 0 {
		n := 0
		crashHook = func(step string) {
			n++
			if n == k {
				os.Stdout.WriteString("CRASH after step " + step + "\n")
				os.Exit(42)
			}
		}
	}
}

var (
	persistSqOnce sync.Once
	persistSq     string
	persistSqErr  string
)

// persistSquashfs builds (once per test binary) the lower for the data
// tests: the test binary as /rfs-test-init, two volumes (app, seeded from
// /var/lib/app; new, at a path the lower lacks).
func persistSquashfs(t *testing.T) string {
	needRoot(t)
	mksq := needTool(t, "mksquashfs")
	self, _ := os.Executable()
	if !isStatic(self) {
		t.Skip("test binary is dynamically linked; cannot run it inside the squashfs")
	}
	persistSqOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rfs-persist-lower")
		if err != nil {
			persistSqErr = err.Error()
			return
		}
		persistSq = filepath.Join(dir, "root.sqfs")
		if err := buildPersistLower(mksq, self, persistSq, "persist-a"); err != nil {
			persistSqErr = err.Error()
		}
	})
	if persistSqErr != "" {
		t.Fatal(persistSqErr)
	}
	return persistSq
}

// buildPersistLower writes the data tests' lower to out, with buildID as
// BUILD_ID in its /etc/os-release.
func buildPersistLower(mksq, self, out, buildID string) error {
	tree, err := os.MkdirTemp(filepath.Dir(out), "tree")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tree)
	for _, d := range []string{"etc/rfs", "sbin", "dev", "proc", "sys", "run", "tmp", "var/lib/app/sub"} {
		os.MkdirAll(filepath.Join(tree, d), 0o755)
	}
	os.WriteFile(filepath.Join(tree, "etc/hello"), []byte("lower"), 0o644)
	os.WriteFile(filepath.Join(tree, "etc/os-release"), []byte("ID=rfs\nBUILD_ID="+buildID+"\n"), 0o644)
	os.WriteFile(filepath.Join(tree, "var/lib/app/seed"), []byte("seed"), 0o640)
	os.WriteFile(filepath.Join(tree, "var/lib/app/sub/deep"), []byte("deep"), 0o600)
	os.Symlink("seed", filepath.Join(tree, "var/lib/app/link"))
	os.WriteFile(filepath.Join(tree, "etc/rfs/volumes"), []byte("# volumes\napp /var/lib/app\nnew /srv/new # not in the lower\nBAD /x\n"), 0o644)
	bin, _ := os.ReadFile(self)
	os.WriteFile(filepath.Join(tree, testInit[1:]), bin, 0o755)
	if b, err := exec.Command(mksq, tree, out, "-comp", "gzip", "-noappend", "-all-root", "-no-xattrs", "-quiet", "-no-progress").CombinedOutput(); err != nil {
		return fmt.Errorf("mksquashfs: %v %s", err, b)
	}
	return nil
}

type dataFixture struct {
	img, loop         string
	mbr               bool
	boot, root, data  string // PARTUUIDs
	bootOff, dataOff  int64  // bytes
	bootSize, dataLen int64  // bytes (as built)
}

func (fx *dataFixture) part(n int) string { return fx.loop + "p" + strconv.Itoa(n) }

// newDataDisk builds a disk: p1 boot (ext2 here, FAT on real images), p2
// the squashfs, p3 the ext4 data partition (label rfs-data, upper/ work/
// volumes/), then extraMiB of free space after it (an image written to a
// larger medium: the backup GPT stays where it was).
func newDataDisk(t *testing.T, mbr bool, dataMiB, extraMiB int64, mkfsArgs ...string) *dataFixture {
	sq := persistSquashfs(t)
	st, _ := os.Stat(sq)
	sqMiB := st.Size()>>20 + 1
	fx := &dataFixture{mbr: mbr, bootOff: 1 << 20, bootSize: 4 << 20, dataLen: dataMiB << 20}
	rootOff := fx.bootOff + fx.bootSize
	fx.dataOff = rootOff + sqMiB<<20
	total := fx.dataOff + fx.dataLen + 1<<20
	dir := t.TempDir()
	fx.img = filepath.Join(dir, "disk.img")
	f, _ := os.Create(fx.img)
	f.Truncate(total)
	f.Close()
	s := func(b int64) string { return strconv.FormatInt(b/512, 10) }
	if mbr {
		id := rand.Uint32() | 1
		fx.boot, fx.root, fx.data = fmt.Sprintf("%08x-01", id), fmt.Sprintf("%08x-02", id), fmt.Sprintf("%08x-03", id)
		run(t, fmt.Sprintf("label: dos\nlabel-id: 0x%08x\n\nstart=%s, size=%s, type=c\nstart=%s, size=%s, type=83\nstart=%s, size=%s, type=83\n",
			id, s(fx.bootOff), s(fx.bootSize), s(rootOff), s(sqMiB<<20), s(fx.dataOff), s(fx.dataLen)),
			needTool(t, "sfdisk"), "--no-reread", "--no-tell-kernel", "-q", fx.img)
	} else {
		g := func() string {
			b := make([]byte, 16)
			rand.Read(b)
			b[6] = b[6]&0x0f | 0x40
			b[8] = b[8]&0x3f | 0x80
			return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
		}
		fx.boot, fx.root, fx.data = g(), g(), g()
		run(t, "", needTool(t, "sgdisk"), "--clear",
			"-n1:"+s(fx.bootOff)+":+4M", "-t1:0700", "-u1:"+fx.boot,
			"-n2:"+s(rootOff)+":+"+strconv.FormatInt(sqMiB, 10)+"M", "-u2:"+fx.root,
			"-n3:"+s(fx.dataOff)+":+"+strconv.FormatInt(dataMiB, 10)+"M", "-t3:0fc63daf-8483-4772-8e79-3d69d8477de4", "-u3:"+fx.data, "-c3:rfs-data",
			fx.img)
	}
	copyAt(t, fx.img, sq, rootOff)
	// The boot partition.
	bootFS := filepath.Join(dir, "boot.fs")
	run(t, "", needTool(t, "mke2fs"), "-q", "-F", "-t", "ext2", "-L", "BOOT", bootFS, "4M")
	copyAt(t, fx.img, bootFS, fx.bootOff)
	os.Remove(bootFS)
	// The data partition, as the builder makes it.
	seed := filepath.Join(dir, "seed")
	for _, d := range []string{datapart.Upper, datapart.Work, datapart.Volumes} {
		os.MkdirAll(filepath.Join(seed, d), 0o755)
	}
	dataFS := filepath.Join(dir, "data.fs")
	args := append([]string{"-q", "-F", "-t", "ext4", "-b", "4096", "-L", datapart.Label, "-d", seed}, mkfsArgs...)
	run(t, "", needTool(t, "mke2fs"), append(args, dataFS, strconv.FormatInt(dataMiB, 10)+"M")...)
	copyAt(t, fx.img, dataFS, fx.dataOff)
	os.Remove(dataFS)
	if extraMiB > 0 {
		os.Truncate(fx.img, total+extraMiB<<20)
	}
	fx.loop = attachParts(t, fx.img, 3)
	return fx
}

// attachParts attaches img and makes sure partition devices 1..n exist
// (this kernel may lack the partition parsers: partx -a).
func attachParts(t *testing.T, img string, n int) string {
	loop := attach(t, img)
	deadline := time.Now().Add(300 * time.Millisecond)
	for {
		if _, err := os.Stat(loop + "p" + strconv.Itoa(n)); err == nil {
			return loop
		}
		if time.Now().After(deadline) {
			run(t, "", needTool(t, "partx"), "-a", loop)
			return loop
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (fx *dataFixture) cmdline(extra string, checks ...string) string {
	return "rfs.root=PARTUUID=" + fx.root + " rfs.data=PARTUUID=" + fx.data + " rfs.boot=PARTUUID=" + fx.boot +
		" rfs.upper=data rfs.rootwait=5 rfs.init=" + testInit + " " + extra + " -- persist " + strings.Join(checks, " ")
}

// boot runs one boot on the fixture; checks run inside the booted root
// (see persistChecks). It fails the test unless the checks pass.
func (fx *dataFixture) bootOK(t *testing.T, extra string, checks ...string) string {
	t.Helper()
	out, err := fx.bootEnv(t, extra, nil, checks...)
	if err != nil || !strings.Contains(out, "\nRFS-CHECK OK\n") {
		t.Fatalf("boot (%s) failed: %v", extra, err)
	}
	return out
}

func (fx *dataFixture) bootEnv(t *testing.T, extra string, env []string, checks ...string) (string, error) {
	t.Helper()
	env = append([]string{"RFS_TEST_BOOTFS=ext2", "RFS_TEST_DATAWAIT=1s"}, env...)
	return runChild(t, "boot", fx.cmdline(extra, checks...), env...)
}

// writeFlag puts the reset flag on the (ext2) boot partition.
func (fx *dataFixture) writeFlag(t *testing.T, content string) {
	f := filepath.Join(t.TempDir(), "flag")
	os.WriteFile(f, []byte(content), 0o644)
	run(t, "", needTool(t, "debugfs"), "-w", "-R", "write "+f+" "+datapart.ResetFlagFile, fx.part(1))
}

func (fx *dataFixture) hasFlag(t *testing.T) bool {
	out := run(t, "", needTool(t, "debugfs"), "-R", "ls -l /", fx.part(1))
	return strings.Contains(out, datapart.ResetFlagFile)
}

func hashRange(t *testing.T, img string, off, n int64) [32]byte {
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, io.NewSectionReader(f, off, n))
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

// persistChecks runs as /rfs-test-init inside the booted root. Ops:
//
//	mode:M          status mode is M (data or tmpfs)
//	deg:TEXT        status degraded contains TEXT, _ for spaces ("deg:" = not degraded)
//	w:PATH=DATA     write a file
//	e:PATH=DATA     file content is DATA
//	a:PATH          PATH does not exist
//	d:PATH          PATH is a directory
//	empty:DIR       remove everything in DIR
//	ro:PATH         creating PATH fails with EROFS
//	reset, resetall rfs-init reset [--all] --no-reboot
//	status          print rfs-init status
//	probe:PATH      print "PROBE PATH 1" if it exists, else "PROBE PATH 0"
//	gcwait          wait for the background trash deletion, print its log
//	build:ID        status: the base lower's build ID is ID
//	made:ID         status: the upper was made against ID ("made:" = the same lower)
//	rec:ID          the data partition's upper record names ID
func persistChecks(args []string) int {
	failed := false
	fail := func(format string, a ...any) {
		os.Stdout.WriteString("RFS-CHECK FAIL: " + fmt.Sprintf(format, a...) + "\n")
		failed = true
	}
	s, err := ReadStatus(StatusPath)
	if err != nil {
		fail("status: %v", err)
		return 1
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(l); len(f) > 4 && (strings.Contains(f[4], ".data-rw") || strings.Contains(f[4], "/.boot")) {
			fail("staging mount left: %s", l)
		}
	}
	if bytes.Contains(mi, []byte("volatile")) {
		fail("volatile overlay")
	}
	for _, op := range args {
		k, v, _ := strings.Cut(op, ":")
		p, data, _ := strings.Cut(v, "=")
		switch k {
		case "mode":
			if s.Mode != v {
				fail("mode %q, want %q", s.Mode, v)
			}
		case "deg":
			v = strings.ReplaceAll(v, "_", " ")
			if v == "" && s.Degraded != "" || !strings.Contains(s.Degraded, v) {
				fail("degraded %q, want %q", s.Degraded, v)
			}
		case "w":
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
				fail("write %s: %v", p, err)
			}
		case "e":
			if b, err := os.ReadFile(p); err != nil || string(b) != data {
				fail("%s = %q %v, want %q", p, b, err, data)
			}
		case "a":
			if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
				fail("%s exists (%v)", p, err)
			}
		case "d":
			if st, err := os.Stat(p); err != nil || !st.IsDir() {
				fail("%s is not a directory: %v", p, err)
			}
		case "empty":
			ents, _ := os.ReadDir(p)
			for _, e := range ents {
				if err := os.RemoveAll(filepath.Join(p, e.Name())); err != nil {
					fail("empty %s: %v", p, err)
				}
			}
		case "ro":
			if err := os.WriteFile(p, nil, 0o644); !errors.Is(err, unix.EROFS) {
				fail("write %s: %v, want EROFS", p, err)
			}
		case "reset", "resetall":
			a := []string{"reset", "--no-reboot"}
			if k == "resetall" {
				a = append(a, "--all")
			}
			if c := Helper(a, os.Stdout, os.Stdout); c != 0 {
				fail("rfs-init reset: exit %d", c)
			}
		case "clock":
			if s.Clock == nil || s.Clock.Source != v {
				fail("clock %+v, want source %s", s.Clock, v)
			}
		case "status":
			Helper([]string{"status"}, os.Stdout, os.Stdout)
			b, _ := json.Marshal(s.Timings)
			os.Stdout.WriteString("TIMINGS " + string(b) + "\n")
		case "probe":
			_, err := os.Lstat(v)
			os.Stdout.WriteString("PROBE " + v + " " + map[bool]string{false: "0", true: "1"}[err == nil] + "\n")
		case "gcwait":
			for {
				var ws unix.WaitStatus
				if _, err := unix.Wait4(-1, &ws, 0, nil); err != nil {
					break
				}
			}
			b, _ := os.ReadFile(GCLogPath)
			os.Stdout.WriteString("GCLOG " + string(b))
		case "build":
			if len(s.Lower) == 0 || s.Lower[0].BuildID != v {
				fail("lower %+v, want build ID %q", s.Lower, v)
			}
		case "made":
			if s.Upper.MadeAgainst != v {
				fail("upper made against %q, want %q", s.Upper.MadeAgainst, v)
			}
		case "rec":
			f, err := os.Open(filepath.Join(DataDir, datapart.UpperRecordFile))
			if err != nil {
				fail("upper record: %v", err)
				break
			}
			rec, err := datapart.ParseUpperRecord(f)
			f.Close()
			if err != nil || rec.LowerBuildID != v {
				fail("upper record %+v %v, want %q", rec, err, v)
			}
		default:
			fail("unknown op %q", op)
		}
	}
	if failed {
		return 1
	}
	os.Stdout.WriteString("RFS-CHECK OK\n")
	return 0
}

// A file written to /etc and to a volume survives a reboot; the volume is
// seeded from the lower once; upper/work are not writable from the
// booted system, volumes are.
func TestDataPersists(t *testing.T) {
	t.Parallel()
	fx := newDataDisk(t, false, 32, 0)
	out := fx.bootOK(t, "", "mode:data", "deg:", "e:/var/lib/app/seed=seed", "e:/var/lib/app/sub/deep=deep", "e:/var/lib/app/link=seed",
		"d:/srv/new", "w:/etc/persist=1", "w:/var/lib/app/v=vol", "w:/srv/new/n=new",
		"ro:/run/rfs/upper/x", "ro:/run/rfs/data/upper/x", "ro:/run/rfs/data/work/x", "w:/run/rfs/data/volumes/app/direct=d",
		"e:/run/rfs/upper/etc/persist=1", "a:/run/rfs/upper/var/lib/app/v", "status")
	if !regexp.MustCompile(`rfs: overlay ready \(lower=/dev/\S+ squashfs, upper=data /dev/\S+p3, \d+ms\)`).MatchString(out) {
		t.Error("no data ready line")
	}
	if !strings.Contains(out, "rfs: warning: /etc/rfs/volumes line 4: bad volume name \"BAD\"") {
		t.Error("no warning for the bad volume line")
	}
	logTimings(t, out)
	fx.bootOK(t, "", "mode:data", "e:/etc/persist=1", "e:/var/lib/app/v=vol", "e:/var/lib/app/direct=d", "e:/srv/new/n=new",
		"e:/var/lib/app/seed=seed", "empty:/var/lib/app")
	// An emptied volume is not seeded again.
	fx.bootOK(t, "", "a:/var/lib/app/seed", "e:/etc/persist=1")
	// rfs.upper=tmpfs given at boot wins: clean upper, volumes still mounted.
	fx.bootOK(t, "rfs.upper=tmpfs", "mode:tmpfs", "deg:", "a:/etc/persist", "w:/var/lib/app/t=1")
	fx.bootOK(t, "", "mode:data", "e:/etc/persist=1", "e:/var/lib/app/t=1")
	if out := run(t, "", needTool(t, "e2fsck"), "-fn", fx.part(3)); !strings.Contains(out, "clean") && !strings.Contains(out, "files") {
		t.Errorf("e2fsck: %s", out)
	}
}

// TestClockRestore: the saved time on the data partition sets the clock
// forward early at boot (the setter is the test's: the host clock is
// left alone), status.json says so, and the agent's files on the data
// partition (the clock, the identity) are where agentconf says, survive
// a reboot and a factory reset; reset --all wipes the identity only.
func TestClockRestore(t *testing.T) {
	t.Parallel()
	fx := newDataDisk(t, false, 16, 0)
	f := filepath.Join(t.TempDir(), "clock")
	os.WriteFile(f, []byte("2150-01-02T03:04:05Z"), 0o644)
	run(t, "", needTool(t, "debugfs"), "-w", "-R", "write "+f+" "+agentconf.ClockFile, fx.part(3))
	data := agentconf.DataDir + "/"
	out := fx.bootOK(t, "", "clock:saved", "e:"+data+agentconf.ClockFile+"=2150-01-02T03:04:05Z",
		"w:"+data+agentconf.IdentityDir+"/key=k")
	if !strings.Contains(out, "RFS-TEST CLOCK SET 2150-01-02T03:04:05Z\n") || !strings.Contains(out, "to the saved time 2150-01-02T03:04:05Z\n") {
		t.Error("the clock was not set to the saved time")
	}
	key := data + agentconf.IdentityDir + "/key"
	fx.bootOK(t, "", "clock:saved", "e:"+key+"=k", "reset")
	// A factory reset keeps the identity and the saved time; reset --all
	// wipes the identity (the agent makes a new one), not the time.
	fx.bootOK(t, "", "clock:saved", "e:"+key+"=k", "resetall")
	fx.bootOK(t, "", "clock:saved", "a:"+data+agentconf.IdentityDir)
}

// TestUpperRecordsLower: a persistent upper records the build ID of its
// lower on the data partition; a boot on a lower of another build says so
// once (console and status.json) and records the new one; a reset starts
// the record over.
func TestUpperRecordsLower(t *testing.T) {
	t.Parallel()
	fx := newDataDisk(t, false, 32, 0)
	fx.bootOK(t, "", "mode:data", "build:persist-a", "made:", "rec:persist-a", "w:/etc/persist=1")
	self, _ := os.Executable()
	other := filepath.Join(t.TempDir(), "b.sqfs")
	if err := buildPersistLower(needTool(t, "mksquashfs"), self, other, "persist-b"); err != nil {
		t.Fatal(err)
	}
	fx.writeLower(t, other)
	out := fx.bootOK(t, "", "build:persist-b", "made:persist-a", "rec:persist-b", "e:/etc/persist=1")
	want := "rfs: the upper on /dev/" + filepath.Base(fx.part(3)) + " was made against build persist-a; the lower is now build persist-b\n"
	if !strings.Contains(out, want) {
		t.Errorf("no line %q in:\n%s", want, out)
	}
	out = fx.bootOK(t, "", "build:persist-b", "made:", "rec:persist-b")
	if strings.Contains(out, "made against") {
		t.Error("the difference is reported again")
	}
	// Back to the first lower, with a reset: a new upper, a new record.
	fx.writeLower(t, persistSquashfs(t))
	out = fx.bootOK(t, "rfs.reset", "build:persist-a", "made:", "rec:persist-a", "a:/etc/persist")
	if strings.Contains(out, "made against") {
		t.Error("a reset upper reported as made against another build")
	}
}

// writeLower replaces the squashfs in p2 (the same size: the lowers of
// the data tests differ only in their build ID).
func (fx *dataFixture) writeLower(t *testing.T, sq string) {
	t.Helper()
	b, err := os.ReadFile(sq)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(fx.part(2), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

func logTimings(t *testing.T, out string) {
	if m := regexp.MustCompile(`TIMINGS (.*)`).FindStringSubmatch(out); m != nil {
		t.Logf("boot timings (ms): %s", m[1])
	}
}

// Each reset trigger wipes the upper and keeps volumes; --all (flag
// content "all", rfs.reset=all, rfs-init reset --all) wipes both.
func TestResetTriggers(t *testing.T) {
	for _, tc := range []struct {
		name    string
		all     bool
		trigger string
	}{
		{"cmdline", false, datapart.TriggerCmdline}, {"flag", false, datapart.TriggerFlag}, {"command", false, datapart.TriggerCommand},
		{"cmdline all", true, datapart.TriggerCmdline}, {"flag all", true, datapart.TriggerFlag}, {"command all", true, datapart.TriggerCommand},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fx := newDataDisk(t, tc.name == "flag", 32, 0) // one MBR disk too
			first := []string{"w:/etc/persist=1", "w:/var/lib/app/v=vol"}
			extra := ""
			switch tc.trigger {
			case datapart.TriggerCommand:
				first = append(first, map[bool]string{false: "reset", true: "resetall"}[tc.all])
			case datapart.TriggerCmdline:
				extra = map[bool]string{false: "rfs.reset", true: "rfs.reset=all"}[tc.all]
			}
			fx.bootOK(t, "", first...)
			if tc.trigger == datapart.TriggerFlag {
				fx.writeFlag(t, map[bool]string{false: "\n", true: "all\n"}[tc.all])
			}
			want := []string{"mode:data", "a:/etc/persist", "gcwait"}
			if tc.all {
				want = append(want, "a:/var/lib/app/v", "e:/var/lib/app/seed=seed")
			} else {
				want = append(want, "e:/var/lib/app/v=vol", "e:/var/lib/app/seed=seed")
			}
			out := fx.bootOK(t, extra, append(want, "status")...)
			if !strings.Contains(out, "rfs: factory reset done in ") {
				t.Error("no reset line")
			}
			if !strings.Contains(out, "last reset:    ") || !strings.Contains(out, " by "+tc.trigger+" ") {
				t.Errorf("status does not show the last reset by %s", tc.trigger)
			}
			if !strings.Contains(out, "GCLOG ") || !strings.Contains(out, "rfs-init gc: deleted ") {
				t.Error("no background trash deletion")
			}
			if tc.trigger == datapart.TriggerFlag && fx.hasFlag(t) {
				t.Error("flag not cleared")
			}
			// The next boot does not reset again (one-shot triggers).
			fx.bootOK(t, "", "w:/etc/again=1")
			fx.bootOK(t, "", "e:/etc/again=1")
		})
	}
}

// Missing, not ext4, corrupt or full data partitions boot with a tmpfs
// upper, say why, and change nothing on the partition.
func TestDegraded(t *testing.T) {
	t.Run("missing", func(t *testing.T) {
		t.Parallel()
		fx := newDataDisk(t, false, 16, 0)
		fx.data = "0badda7a-0000-4000-8000-000000000000"
		out := fx.bootOK(t, "", "mode:tmpfs", "deg:PARTUUID=0badda7a-0000-4000-8000-000000000000_not_found", "w:/etc/x=1", "a:/run/rfs/data/upper")
		if !strings.Contains(out, "rfs: DEGRADED: data partition PARTUUID=0badda7a-0000-4000-8000-000000000000 not found: using a tmpfs upper") {
			t.Error("no DEGRADED console line")
		}
		if !strings.Contains(out, "upper=tmpfs size=50%, DEGRADED,") {
			t.Error("ready line does not say degraded")
		}
	})
	for _, tc := range []struct {
		name, want string
		damage     func(f *os.File, off int64)
	}{
		{"not ext4", "no_ext2/3/4_superblock", func(f *os.File, off int64) { f.WriteAt([]byte{0, 0}, off+1024+0x38) }},
		{"corrupt", "cannot_mount_data_partition", func(f *os.File, off int64) { f.WriteAt([]byte("garbage!"), off+1024+0x78) }}, // volume name: superblock checksum fails
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fx := newDataDisk(t, true, 16, 0)
			fx.bootOK(t, "", "w:/etc/persist=1")
			f, _ := os.OpenFile(fx.img, os.O_RDWR, 0)
			tc.damage(f, fx.dataOff)
			f.Close()
			exec.Command("blockdev", "--flushbufs", fx.part(3)).Run()
			before := hashRange(t, fx.img, fx.dataOff, fx.dataLen)
			fx.bootOK(t, "rfs.reset=all", "mode:tmpfs", "deg:"+tc.want, "a:/etc/persist", "w:/etc/x=1")
			if hashRange(t, fx.img, fx.dataOff, fx.dataLen) != before {
				t.Error("the degraded boot changed the data partition")
			}
		})
	}
	t.Run("full", func(t *testing.T) {
		t.Parallel()
		fx := newDataDisk(t, false, 16, 0)
		fx.bootOK(t, "", "w:/etc/persist=1")
		mnt := t.TempDir()
		if err := unix.Mount(fx.part(3), mnt, "ext4", 0, ""); err != nil {
			t.Fatal(err)
		}
		var sfs unix.Statfs_t
		unix.Statfs(mnt, &sfs)
		f, _ := os.Create(filepath.Join(mnt, "volumes/fill"))
		if err := unix.Fallocate(int(f.Fd()), 0, 0, int64(sfs.Bfree)*int64(sfs.Bsize)-64<<10); err != nil {
			t.Logf("fallocate: %v", err)
		}
		f.Close()
		unix.Unmount(mnt, 0)
		fx.bootOK(t, "", "mode:tmpfs", "deg:is_full", "a:/etc/persist", "d:/run/rfs/data/volumes", "status")
		// The operator frees space; the next boot uses the data upper again.
		unix.Mount(fx.part(3), mnt, "ext4", 0, "")
		os.Remove(filepath.Join(mnt, "volumes/fill"))
		unix.Unmount(mnt, 0)
		fx.bootOK(t, "", "mode:data", "deg:", "e:/etc/persist=1")
	})
}

// An image written to a larger disk: the first boot grows the data
// partition and its filesystem; sgdisk -v, sfdisk and e2fsck are clean.
func TestGrow(t *testing.T) {
	for _, mbr := range []bool{false, true} {
		t.Run(map[bool]string{false: "gpt", true: "mbr"}[mbr], func(t *testing.T) {
			t.Parallel()
			fx := newDataDisk(t, mbr, 16, 48)
			out := fx.bootOK(t, "", "mode:data", "w:/etc/persist=1", "status")
			if !strings.Contains(out, "rfs: grew the data filesystem on ") && !noResizeCap(t, out, fx) {
				t.Error("no growth line")
			}
			logTimings(t, out)
			checkGrown(t, fx)
			out = fx.bootOK(t, "", "e:/etc/persist=1")
			if strings.Contains(out, "grew") {
				t.Error("grew again on the second boot")
			}
		})
	}
}

// noResizeCap: online ext4 resize needs CAP_SYS_RESOURCE, which some
// sandboxes (this CI VM) drop even for root. Then the test checks the
// init's table growth, grows the filesystem offline with resize2fs for
// the tool checks, and leaves the ioctl to the QEMU e2e tests.
func noResizeCap(t *testing.T, out string, fx *dataFixture) bool {
	b, _ := os.ReadFile("/proc/self/status")
	m := regexp.MustCompile(`CapEff:\s*([0-9a-f]+)`).FindSubmatch(b)
	if m == nil {
		return false
	}
	caps, _ := strconv.ParseUint(string(m[1]), 16, 64)
	if caps&(1<<unix.CAP_SYS_RESOURCE) != 0 || !strings.Contains(out, "cannot grow the ext4 filesystem") ||
		!strings.Contains(out, "operation not permitted") {
		return false
	}
	t.Logf("no CAP_SYS_RESOURCE here: EXT4_IOC_RESIZE_FS is refused (EPERM); growing the filesystem offline (resize2fs) for the checks")
	time.Sleep(100 * time.Millisecond)
	run(t, "", needTool(t, "e2fsck"), "-fy", fx.part(3))
	run(t, "", needTool(t, "resize2fs"), fx.part(3))
	return true
}

// checkGrown: the table and the filesystem reach the end of the disk and
// the tools find nothing wrong.
func checkGrown(t *testing.T, fx *dataFixture) {
	t.Helper()
	st, _ := os.Stat(fx.img)
	f, _ := os.Open(fx.img)
	tbl, err := ptable.ReadTable(f, st.Size(), 512)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	p, ok := tbl.Find(fx.data)
	if !ok {
		t.Fatal("data partition gone")
	}
	slack := int64(1 << 20)
	if p.Start+p.Size < st.Size()-slack {
		t.Errorf("data partition ends at %d, disk is %d bytes", p.Start+p.Size, st.Size())
	}
	if tbl.Backup {
		t.Error("primary GPT invalid")
	}
	if fx.mbr {
		out := run(t, "", needTool(t, "sfdisk"), "--dump", fx.img)
		if !strings.Contains(out, "size="+strings.Repeat(" ", 0)) {
			t.Logf("%s", out)
		}
		if vout, err := exec.Command(needTool(t, "sfdisk"), "--verify", fx.img).CombinedOutput(); err != nil {
			t.Errorf("sfdisk --verify: %v\n%s", err, vout)
		}
	} else {
		out := run(t, "", needTool(t, "sgdisk"), "-v", fx.img)
		if !strings.Contains(out, "No problems found") {
			t.Errorf("sgdisk -v:\n%s", out)
		}
		run(t, "", needTool(t, "sfdisk"), "--dump", fx.img)
	}
	var eout []byte
	for i := 0; i < 20; i++ { // the child's namespace may take a moment to let go
		eout, err = exec.Command(needTool(t, "e2fsck"), "-fn", fx.part(3)).CombinedOutput()
		if err == nil || !bytes.Contains(eout, []byte("in use")) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Errorf("e2fsck -fn: %v\n%s", err, eout)
	}
	d, _ := os.Open(fx.part(3))
	sb, err := ext4sb.Read(d, 0)
	d.Close()
	if err != nil || int64(sb.BlocksCount)*int64(sb.BlockSize) < p.Size-slack {
		t.Errorf("filesystem %+v, partition %d bytes: %v", sb, p.Size, err)
	}
}

// Power loss during a reset: the boot is cut after step k of the reset
// (for every k); the next boot must succeed and be fully reset or not
// reset at all — the upper file and (with all) the volume file go
// together. The trigger rotates (seeded) between cmdline, flag, command.
func TestPowerLossReset(t *testing.T) {
	t.Parallel()
	seed := time.Now().UnixNano()
	if s := os.Getenv("RFS_TEST_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	t.Logf("seed %d (RFS_TEST_SEED)", seed)
	rng := rand.New(rand.NewSource(seed))
	fx := newDataDisk(t, false, 16, 0)
	fx.bootOK(t, "", "w:/etc/m=1", "w:/var/lib/app/v=1")
	for k := 1; ; k++ {
		all := rng.Intn(2) == 0
		trig := []string{datapart.TriggerCmdline, datapart.TriggerFlag, datapart.TriggerCommand}[rng.Intn(3)]
		if k == 1 { // step 1 is writing the intent: not part of a resumed command reset
			trig = []string{datapart.TriggerCmdline, datapart.TriggerFlag}[rng.Intn(2)]
		}
		extra := ""
		switch trig {
		case datapart.TriggerCmdline:
			extra = map[bool]string{false: "rfs.reset", true: "rfs.reset=all"}[all]
		case datapart.TriggerFlag:
			fx.writeFlag(t, map[bool]string{false: "", true: "all"}[all])
		case datapart.TriggerCommand:
			fx.bootOK(t, "", map[bool]string{false: "reset", true: "resetall"}[all])
		}
		out, err := fx.bootEnv(t, extra, []string{"RFS_TEST_CRASH=" + strconv.Itoa(k)})
		crashed := strings.Contains(out, "CRASH after step ")
		if !crashed && (err != nil || !strings.Contains(out, "RFS-CHECK OK")) {
			t.Fatalf("k=%d: boot without crash failed: %v", k, err)
		}
		step := regexp.MustCompile(`CRASH after step (\S+)`).FindStringSubmatch(out)
		// The next boot (no trigger on the command line).
		out2 := fx.bootOK(t, "", "probe:/etc/m", "probe:/var/lib/app/v")
		mGone, vGone := strings.Contains(out2, "PROBE /etc/m 0\n"), strings.Contains(out2, "PROBE /var/lib/app/v 0\n")
		name := "none"
		if step != nil {
			name = step[1]
		}
		t.Logf("k=%d trigger=%s all=%v crash=%s: upper reset=%v volume reset=%v", k, trig, all, name, mGone, vGone)
		if !all && vGone {
			t.Errorf("k=%d: a reset without all wiped the volume", k)
		}
		if all && mGone != vGone {
			t.Errorf("k=%d: half a reset --all: upper reset=%v volume reset=%v", k, mGone, vGone)
		}
		if trig == datapart.TriggerFlag && fx.hasFlag(t) {
			t.Errorf("k=%d: flag still set after the next boot", k)
		}
		if !crashed && k > 1 {
			break
		}
		if k > 20 {
			t.Fatal("reset never completed without a crash")
		}
		fx.bootOK(t, "", "w:/etc/m=1", "w:/var/lib/app/v=1")
	}
}

// Power loss during first-boot growth, after every step, GPT and MBR: the
// next boot succeeds and ends fully grown with clean tools.
func TestPowerLossGrow(t *testing.T) {
	for _, mbr := range []bool{false, true} {
		t.Run(map[bool]string{false: "gpt", true: "mbr"}[mbr], func(t *testing.T) {
			t.Parallel()
			for k := 1; k < 10; k++ {
				fx := newDataDisk(t, mbr, 16, 32)
				out, err := fx.bootEnv(t, "", []string{"RFS_TEST_CRASH=" + strconv.Itoa(k)}, "w:/etc/persist=1")
				step := regexp.MustCompile(`CRASH after step (\S+)`).FindStringSubmatch(out)
				if step == nil {
					if err != nil {
						t.Fatalf("k=%d: boot failed: %v", k, err)
					}
					noResizeCap(t, out, fx)
					checkGrown(t, fx)
					t.Logf("k=%d: no crash (all %d steps done)", k, k-1)
					return
				}
				t.Logf("k=%d: crashed after %s", k, step[1])
				out = fx.bootOK(t, "", "mode:data", "w:/etc/persist=1")
				noResizeCap(t, out, fx)
				checkGrown(t, fx)
			}
			t.Fatal("growth has more steps than expected")
		})
	}
}

// A reset of an upper with 100k files: the user waits for renames and
// fsyncs only; deleting happens in the background. Logs both figures.
func TestReset100k(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	t.Parallel()
	fx := newDataDisk(t, false, 128, 0, "-N", "120000")
	fx.bootOK(t, "", "w:/etc/persist=1")
	mnt := t.TempDir()
	if err := unix.Mount(fx.part(3), mnt, "ext4", 0, ""); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	for d := 0; d < 100; d++ {
		dir := filepath.Join(mnt, datapart.Upper, "many", strconv.Itoa(d))
		os.MkdirAll(dir, 0o755)
		for i := 0; i < 1000; i++ {
			f, err := os.Create(filepath.Join(dir, strconv.Itoa(i)))
			if err != nil {
				unix.Unmount(mnt, 0)
				t.Fatal(err)
			}
			f.Close()
		}
	}
	t.Logf("created 100k files in %v", time.Since(t0))
	unix.Unmount(mnt, 0)
	out := fx.bootOK(t, "rfs.reset", "a:/etc/persist", "a:/many", "gcwait", "status")
	m := regexp.MustCompile(`rfs: factory reset done in ([0-9.]+)ms`).FindStringSubmatch(out)
	g := regexp.MustCompile(`rfs-init gc: deleted (\d+) entries from \S+ in ([0-9.]+)s`).FindStringSubmatch(out)
	if m == nil || g == nil {
		t.Fatal("no reset/gc figures in the output")
	}
	t.Logf("RESET 100k files: wipe (what boot waits for) %sms; background deletion of %s entries %ss", m[1], g[1], g[2])
	logTimings(t, out)
}
