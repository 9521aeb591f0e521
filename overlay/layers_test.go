package overlay

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// layerFixture is a GPT disk: p1 the root squashfs ("L", with the test
// binary), p2 layer 1, p3 layer 2.
type layerFixture struct {
	loop  string
	guids [3]string
}

func (fx *layerFixture) dev(n int) string {
	return "/dev/" + filepath.Base(fx.loop) + "p" + strconv.Itoa(n)
}

// makeLayerSquashfs writes files (path -> content; "WHITEOUT" makes a
// char 0/0 device, overlayfs's whiteout) into a squashfs whose root has
// mode rootMode.
func makeLayerSquashfs(t *testing.T, rootMode os.FileMode, files map[string]string) string {
	t.Helper()
	mksq := needTool(t, "mksquashfs")
	dir := filepath.Join(t.TempDir(), "tree")
	os.Mkdir(dir, 0o755)
	for p, content := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if content == "WHITEOUT" {
			if err := unix.Mknod(full, unix.S_IFCHR|0o000, 0); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(dir, rootMode)
	out := filepath.Join(t.TempDir(), "layer.sqfs")
	run(t, "", mksq, dir, out, "-comp", "gzip", "-noappend", "-all-root", "-no-xattrs", "-quiet", "-no-progress")
	return out
}

// emptyPart is the PARTUUID of p4, an empty partition (not a squashfs).
const emptyPart = "11111111-2222-4333-8444-000000000004"

func setupLayers(t *testing.T) *layerFixture {
	needRoot(t)
	sg := needTool(t, "sgdisk")
	base := makeSquashfs(t, "L")
	l1 := makeLayerSquashfs(t, 0o751, map[string]string{"etc/hello": "layer1", "etc/l1": "1", "etc/gone": "g", "opt/dir/f": "f"})
	// Layer 2 hides a file of layer 1 (etc/gone), a file of the root
	// (etc/which) and a directory of the root (sbin); its root's mode (0750)
	// is the merged root's.
	l2 := makeLayerSquashfs(t, 0o750, map[string]string{"etc/hello": "layer2", "etc/l2": "2", "etc/gone": "WHITEOUT", "etc/which": "WHITEOUT", "sbin": "WHITEOUT"})
	fx := &layerFixture{guids: [3]string{"11111111-2222-4333-8444-000000000001", "11111111-2222-4333-8444-000000000002", "11111111-2222-4333-8444-000000000003"}}
	st, _ := os.Stat(base)
	baseMiB := st.Size()>>20 + 2
	img := filepath.Join(t.TempDir(), "layers.img")
	f, _ := os.Create(img)
	f.Truncate((baseMiB + 7) << 20)
	f.Close()
	run(t, "", sg, "--clear", "-n1:2048:+"+strconv.FormatInt(baseMiB, 10)+"M", "-u1:"+fx.guids[0],
		"-n2:0:+1M", "-u2:"+fx.guids[1], "-c2:rfs-layer-1", "-n3:0:+1M", "-u3:"+fx.guids[2], "-c3:rfs-layer-2", "-n4:0:+1M", "-u4:"+emptyPart, img)
	tbl := openTable(t, img, 512)
	for i, src := range []string{base, l1, l2} {
		copyAt(t, img, src, tbl.Partitions[i].Start)
	}
	fx.loop = attach(t, img)
	deadline := time.Now().Add(time.Second)
	for _, err := os.Stat(fx.loop + "p4"); err != nil; _, err = os.Stat(fx.loop + "p4") {
		if time.Now().After(deadline) {
			run(t, "", needTool(t, "partx"), "-a", fx.loop)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fx
}

var layersReadyRE = regexp.MustCompile(`(?m)^rfs: overlay ready \(lower=(/dev/\S+) squashfs \+2 layers, upper=tmpfs size=50%, \d+ms\)$`)

// TestBootLayers: two layers stacked on the root by the real kernel's
// overlayfs: the top layer's files win, whiteouts of a layer hide lower
// entries (a layer-1 file, a root file, a root directory), every layer is
// mounted read-only at /run/rfs/layers/N and listed in status.json.
func TestBootLayers(t *testing.T) {
	fx := setupLayers(t)
	out, err := runChild(t, "boot", "rfs.root=PARTUUID="+fx.guids[0]+" rfs.layers=PARTUUID="+fx.guids[1]+",PARTUUID="+strings.ToUpper(fx.guids[2])+
		" rfs.init="+testInit+" -- layers "+fx.dev(1)+" "+fx.dev(2)+" "+fx.dev(3)+" "+strings.Join(fx.guids[:], " "))
	if err != nil {
		t.Fatalf("boot child failed: %v", err)
	}
	if m := layersReadyRE.FindStringSubmatch(out); m == nil || m[1] != fx.dev(1) {
		t.Errorf("ready line: %v", m)
	}
	for _, w := range []string{"rfs: layer 1 PARTUUID=" + fx.guids[1] + " is " + fx.dev(2), "rfs: layer 2 PARTUUID=" + fx.guids[2] + " is " + fx.dev(3), "\nRFS-CHECK OK\n"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q", w)
		}
	}
}

// TestBootLayerMissing: a layer that is not there fails the boot (rescue
// shell), it is not skipped.
func TestBootLayerMissing(t *testing.T) {
	fx := setupLayers(t)
	const missing = "99999999-8888-4777-8666-555555555555"
	for _, tc := range []struct{ name, cmdline, want string }{
		{"missing", "rfs.root=PARTUUID=" + fx.guids[0] + " rfs.layers=PARTUUID=" + fx.guids[1] + ",PARTUUID=" + missing,
			"rfs: ERROR: layer 2: layer 2 device PARTUUID=" + missing + " not found\n"},
		{"not squashfs", "rfs.root=PARTUUID=" + fx.guids[0] + " rfs.layers=PARTUUID=" + emptyPart,
			"rfs: ERROR: layer 1: layer 1 PARTUUID=" + emptyPart + " (" + fx.dev(4) + `): not a squashfs (magic "\x00\x00\x00\x00", want "hsqs")` + "\n"},
		{"invalid", "rfs.root=PARTUUID=" + fx.guids[0] + " rfs.layers=PARTUUID=" + fx.guids[1] + ",LABEL=x",
			"rfs: ERROR: layers: rfs.layers=PARTUUID=" + fx.guids[1] + `,LABEL=x: layer 2 "LABEL=x": expected PARTUUID=<id> or /dev/NAME` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runChild(t, "fail", tc.cmdline)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 3 {
				t.Fatalf("child: %v, want exit 3 (halt)", err)
			}
			for _, w := range []string{tc.want, "rfs: test rescue\n"} {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q", w)
				}
			}
		})
	}
}

// layersChecks runs as /rfs-test-init in the overlay of TestBootLayers.
// args: dev1 dev2 dev3 guid1 guid2 guid3
func layersChecks(args []string) int {
	failed := false
	fail := func(format string, a ...any) {
		os.Stdout.WriteString("RFS-CHECK FAIL: " + fmtSprintf(format, a...) + "\n")
		failed = true
	}
	if len(args) != 6 {
		fail("args = %q", args)
		return 1
	}
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			return "ERR " + err.Error()
		}
		return string(b)
	}
	for p, want := range map[string]string{
		"/etc/hello": "layer2", "/etc/l1": "1", "/etc/l2": "2", "/opt/dir/f": "f",
		"/run/rfs/lower/etc/which": "L", "/run/rfs/lower/etc/hello": "lower",
		"/run/rfs/layers/1/etc/gone": "g", "/run/rfs/layers/1/etc/hello": "layer1", "/run/rfs/layers/2/etc/hello": "layer2",
	} {
		if got := read(p); got != want {
			fail("%s = %q, want %q", p, got, want)
		}
	}
	for _, p := range []string{"/etc/gone", "/etc/which", "/sbin"} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			fail("%s not hidden by layer 2's whiteout: %v", p, err)
		}
	}
	if st, err := os.Stat("/"); err != nil || st.Mode().Perm() != 0o750 {
		fail("mode of / = %v %v, want 0750 (the top layer's)", st.Mode(), err)
	}
	// Writes go to the upper; the layers stay as they are.
	if err := os.WriteFile("/etc/l1", []byte("up"), 0o644); err != nil {
		fail("write /etc/l1: %v", err)
	}
	if got := read("/run/rfs/upper/etc/l1"); got != "up" {
		fail("upper/etc/l1 = %q", got)
	}
	if got := read("/run/rfs/layers/1/etc/l1"); got != "1" {
		fail("layers/1/etc/l1 = %q", got)
	}
	if err := os.WriteFile("/run/rfs/layers/2/x", nil, 0o644); !errors.Is(err, unix.EROFS) {
		fail("write to layer 2: %v, want EROFS", err)
	}
	s, err := ReadStatus(StatusPath)
	if err != nil {
		fail("status: %v", err)
	} else {
		want := []LayerStatus{
			{Device: args[0], PARTUUID: args[3], Mountpoint: LowerDir, FSType: "squashfs"},
			{Device: args[1], PARTUUID: args[4], Mountpoint: "/run/rfs/layers/1", FSType: "squashfs"},
			{Device: args[2], PARTUUID: args[5], Mountpoint: "/run/rfs/layers/2", FSType: "squashfs"},
		}
		if len(s.Lower) != 3 || s.Lower[0] != want[0] || s.Lower[1] != want[1] || s.Lower[2] != want[2] {
			fail("status lower = %+v, want %+v", s.Lower, want)
		}
		if !regexp.MustCompile(`^lowerdir=\S*/run/rfs/layers/2:\S*/run/rfs/layers/1:\S*/run/rfs/lower,upperdir=`).MatchString(s.Overlay.Options) {
			fail("overlay options %q", s.Overlay.Options)
		}
	}
	if failed {
		return 1
	}
	os.Stdout.WriteString("RFS-CHECK OK\n")
	return 0
}
