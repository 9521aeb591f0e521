package fat

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/fat32"

	"github.com/rfsbuild/rfs/rootfs"
)

const testTime = 1700000000 // 2023-11-14 22:13:20 UTC

// randBytes is deterministic pseudo-random content.
func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for k := 0; k < 8; k++ {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

// build makes a tree: a key ending in "/" is a directory, anything else a file
// with the given content.
func build(t testing.TB, files map[string][]byte) *rootfs.Tree {
	t.Helper()
	tr := rootfs.New(testTime)
	keys := make([]string, 0, len(files))
	for k := range files {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		var n *rootfs.Node
		if strings.HasSuffix(k, "/") {
			n = rootfs.NewDir(0o755, testTime)
		} else {
			n = &rootfs.Node{Type: rootfs.Regular, Perm: 0o644, MTime: testTime, Content: rootfs.Bytes(files[k])}
		}
		if err := tr.Add(k, n); err != nil {
			t.Fatal(err)
		}
	}
	return tr
}

// listing is what a tree should look like when read back: path -> content,
// with directories as "path/" -> nil.
func listing(t testing.TB, tr *rootfs.Tree) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := tr.Walk(func(p string, n *rootfs.Node) error {
		if p == "/" {
			return nil
		}
		p = strings.TrimPrefix(p, "/")
		if n.Type == rootfs.Dir {
			out[p+"/"] = nil
			return nil
		}
		rc, err := n.Content.Open()
		if err != nil {
			return err
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		out[p] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// hostListing reads a directory tree of the host the same way.
func hostListing(t testing.TB, root string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		if d.IsDir() {
			out[rel+"/"] = nil
			return nil
		}
		b, err := os.ReadFile(p)
		out[rel] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func compareListings(t testing.TB, who string, want, got map[string][]byte) {
	t.Helper()
	bad := 0
	for p, w := range want {
		g, ok := got[p]
		switch {
		case !ok:
			t.Errorf("%s: %q missing", who, p)
		case !bytes.Equal(w, g):
			t.Errorf("%s: %q content differs (want %d bytes, got %d)", who, p, len(w), len(g))
		default:
			continue
		}
		if bad++; bad > 10 {
			t.Fatalf("%s: too many differences", who)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: unexpected %q", who, p)
		}
	}
}

// writeImage writes tr into a fresh sparse file of the given size.
func writeImage(t testing.TB, tr *rootfs.Tree, size int64, opts Options) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "fat.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := Write(f, size, tr, opts); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if fi, err := f.Stat(); err != nil || fi.Size() != size {
		t.Fatalf("image is %v bytes, want %d (%v)", fi.Size(), size, err)
	}
	return img
}

func needTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed: %v", name, err)
	}
	return p
}

var fsckSummary = regexp.MustCompile(`^\S+: \d+ files, \d+/\d+ clusters$`)

// checkFsck runs fsck.vfat in no-repair, verify mode and wants nothing but
// its banner and the summary line.
func checkFsck(t *testing.T, img string) {
	t.Helper()
	fsck := needTool(t, "fsck.vfat")
	out, err := exec.Command(fsck, "-n", "-V", img).CombinedOutput()
	if err != nil {
		t.Fatalf("fsck.vfat -n -V: %v\n%s", err, out)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		switch {
		case strings.HasPrefix(l, "fsck.fat "), l == "Starting check/repair pass.", l == "Starting verification pass.",
			fsckSummary.MatchString(l):
		default:
			t.Fatalf("fsck.vfat -n -V reports %q\n%s", l, out)
		}
	}
}

func mtoolsEnv() []string {
	return append(os.Environ(), "MTOOLSRC=/dev/null", "LC_ALL=C.UTF-8")
}

// checkMtools copies everything out with mcopy -s and compares, and checks
// that mdir lists the root.
func checkMtools(t *testing.T, img string, want map[string][]byte) {
	t.Helper()
	mcopy := needTool(t, "mcopy")
	mdir := needTool(t, "mdir")
	cmd := exec.Command(mdir, "-i", img, "-a", "::/")
	cmd.Env = mtoolsEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mdir: %v\n%s", err, out)
	}
	dest := t.TempDir()
	if len(want) > 0 {
		cmd = exec.Command(mcopy, "-s", "-n", "-i", img, "::/*", dest)
		cmd.Env = mtoolsEnv()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("mcopy -s: %v\n%s", err, out)
		}
	}
	compareListings(t, "mcopy", want, hostListing(t, dest))
}

// checkDiskfs reads the image back with go-diskfs, an independent reader.
func checkDiskfs(t *testing.T, img string, size int64, want map[string][]byte, label string) {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fsys, err := fat32.Read(file.New(f, true), size, 0, 512)
	if err != nil {
		t.Fatalf("go-diskfs fat32.Read: %v", err)
	}
	if got := strings.TrimRight(fsys.Label(), " "); got != label {
		t.Errorf("go-diskfs label %q, want %q", got, label)
	}
	got := map[string][]byte{}
	var walk func(dir string)
	walk = func(dir string) {
		ents, err := fsys.ReadDir(dir)
		if err != nil {
			t.Fatalf("go-diskfs ReadDir(%q): %v", dir, err)
		}
		for _, e := range ents {
			p := e.Name()
			if dir != "." {
				p = dir + "/" + e.Name()
			}
			if e.IsDir() {
				got[p+"/"] = nil
				walk(p)
				continue
			}
			// go-diskfs v1.9.4 cannot read a file that starts at cluster 0
			// (the spec's way, and mkfs/mcopy's, to store an empty file),
			// and its Read ignores the file size after a read that ends
			// inside a cluster: read in one call of exactly the size.
			info, err := e.Info()
			if err != nil {
				t.Fatalf("go-diskfs Info(%q): %v", p, err)
			}
			b := make([]byte, info.Size())
			if len(b) > 0 {
				fh, err := fsys.Open(p)
				if err != nil {
					t.Fatalf("go-diskfs Open(%q): %v", p, err)
				}
				_, err = io.ReadFull(fh, b)
				fh.Close()
				if err != nil {
					t.Fatalf("go-diskfs read %q: %v", p, err)
				}
			}
			got[p] = b
		}
	}
	walk(".")
	compareListings(t, "go-diskfs", want, got)
}

// checkMount loop-mounts the image read-only with the kernel's vfat driver.
func checkMount(t *testing.T, img string, want map[string][]byte) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loop-mounting needs root; skipped")
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Skipf("no loop devices: %v", err)
	}
	mnt := t.TempDir()
	out, err := exec.Command("mount", "-t", "vfat", "-o", "loop,ro,utf8", img, mnt).CombinedOutput()
	if err != nil && strings.Contains(string(out), "unknown filesystem type") {
		t.Skipf("the host kernel has no vfat driver (and none loads on demand), so no kernel mount check: %s", bytes.TrimSpace(out))
	}
	if err != nil {
		t.Fatalf("mount -t vfat -o loop,ro: %v: %s", err, out)
	}
	defer func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount: %v: %s", err, out)
		}
	}()
	compareListings(t, "kernel vfat", want, hostListing(t, mnt))
}

func names(prefix, suffix string, n int, size int) map[string][]byte {
	m := map[string][]byte{}
	for i := range n {
		m[fmt.Sprintf("%s%03d%s", prefix, i, suffix)] = randBytes(uint64(i), size)
	}
	return m
}

func merge(ms ...map[string][]byte) map[string][]byte {
	out := map[string][]byte{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

type testCase struct {
	name  string
	files map[string][]byte
	size  int64 // 0: MinSize
	// kernelOnly: names outside the BMP, which mtools 4 and go-diskfs
	// cannot decode (they read surrogate pairs as two unknown characters).
	kernelOnly bool
}

func testCases() []testCase {
	overlays := map[string][]byte{}
	for i, n := range []string{"i2c-rtc", "i2c-rtc-gpio", "i2c-gpio", "i2c-mux", "i2c-pwm-pca9685a", "i2c-sensor",
		"i2c0", "i2c1", "i2c3", "i2c4", "i2c5", "i2c6", "vc4-kms-v3d", "vc4-kms-v3d-pi4", "vc4-kms-v3d-pi5",
		"vc4-fkms-v3d", "vc4-kms-dpi-generic", "vc4-kms-dsi-7inch", "disable-bt", "disable-wifi", "dwc2"} {
		overlays["overlays/"+n+".dtbo"] = randBytes(uint64(100+i), 1000+37*i)
	}
	return []testCase{
		{name: "empty", files: map[string][]byte{}},
		{name: "nested", files: map[string][]byte{
			"a/b/c/d/e/deep.txt":   []byte("deep\n"),
			"a/b/x.bin":            randBytes(1, 3000),
			"a/EMPTYDIR/":          nil,
			"a/Other Dir/":         nil,
			"top.txt":              []byte("top\n"),
			"EFI/BOOT/BOOTX64.EFI": randBytes(2, 70000),
		}},
		{name: "many-files-one-dir", files: names("overlays/some-rather-long-overlay-name-", ".dtbo", 400, 100)},
		{name: "exact-cluster-of-entries", files: names("D/F", ".BIN", 14, 10)}, // ".", ".." + 14 = 16 slots = 512 bytes
		{name: "long-and-mixed-case", files: map[string][]byte{
			"config.txt":              []byte("arm_64bit=1\n"),
			"Config.Backup":           []byte("x"),
			"cmdline.txt":             []byte("console=serial0,115200\n"),
			"UPPER.TXT":               []byte("no lfn"),
			"MiXeD":                   []byte("mixed"),
			"x":                       []byte("x"),
			".hidden":                 []byte("dot"),
			"a.b.c.d":                 []byte("dots"),
			"with space.txt":          []byte("space"),
			" leading space":          []byte("lead"),
			"+plus,comma;semi=[br]":   []byte("odd"),
			"größe.txt":               []byte("umlaut"),
			"日本語のファイル名.bin":           []byte("cjk"),
			strings.Repeat("L", 255):  []byte("longest name"),
			strings.Repeat("ab", 13):  []byte("exactly two lfn entries"),
			"Dir.With.Dots/inner.TXT": []byte("inner"),
		}},
		{name: "8.3-collisions", files: merge(overlays, map[string][]byte{
			"bcm2711-rpi-4-b.dtb":      randBytes(10, 5000),
			"bcm2711-rpi-400.dtb":      randBytes(11, 5000),
			"bcm2711-rpi-cm4.dtb":      randBytes(12, 5000),
			"bcm2711-rpi-cm4s.dtb":     randBytes(13, 5000),
			"BCM271~1.DTB":             []byte("literal short name that a generated one would take"),
			"bcm2710-rpi-3-b.dtb":      randBytes(14, 5000),
			"bcm2710-rpi-3-b-plus.dtb": randBytes(15, 5000),
			"fixup4.dat":               randBytes(16, 5000),
			"fixup4cd.dat":             randBytes(17, 3000),
			"fixup4db.dat":             randBytes(18, 3000),
			"fixup4x.dat":              randBytes(19, 3000),
			"start4.elf":               randBytes(20, 9000),
			"start4cd.elf":             randBytes(21, 9000),
			"start4db.elf":             randBytes(22, 9000),
			"start4x.elf":              randBytes(23, 9000),
		}, names("collide-", "-sameprefix.txt", 30, 10))},
		{name: "non-BMP-names", kernelOnly: true, files: map[string][]byte{
			"emoji-🙂.txt": []byte("surrogates"), "🙂/𝄞": []byte("clef"),
		}},
		{name: "zero-length", files: map[string][]byte{
			"empty1": nil, "EMPTY2.TXT": {}, "dir/empty3.longname": nil, "dir/nonempty": []byte("1"),
		}},
		{name: "cluster-boundaries", files: map[string][]byte{
			"exact512": randBytes(30, 512), "exact1024": randBytes(31, 1024),
			"minus1": randBytes(32, 511), "plus1": randBytes(33, 513),
		}},
		{name: "large-file", files: map[string][]byte{
			"kernel8.img": randBytes(40, 9<<20+123), "initramfs": randBytes(41, 1<<20),
		}},
		{name: "odd-size", size: 40<<20 + 300, files: map[string][]byte{"f": randBytes(60, 70000)}},
		{name: "4k-clusters-300MiB", size: 300 << 20, files: map[string][]byte{
			"exact4096": randBytes(50, 4096), "small": []byte("s"), "big.bin": randBytes(51, 3<<20),
			"sub/dir/file": randBytes(52, 8193),
		}},
	}
}

func TestWriteReadBack(t *testing.T) {
	for _, tc := range testCases() {
		t.Run(tc.name, func(t *testing.T) {
			tr := build(t, tc.files)
			size := tc.size
			if size == 0 {
				size = MinSize(tr)
			}
			img := writeImage(t, tr, size, Options{Label: "boot", VolumeID: 0x1234abcd, MTime: testTime})
			want := listing(t, tr)
			t.Run("fsck", func(t *testing.T) { checkFsck(t, img) })
			if !tc.kernelOnly {
				t.Run("mtools", func(t *testing.T) { checkMtools(t, img, want) })
				t.Run("go-diskfs", func(t *testing.T) { checkDiskfs(t, img, size, want, "BOOT") })
			}
			t.Run("mount", func(t *testing.T) { checkMount(t, img, want) })
		})
	}
}

// TestHardLinks: one node under two names is stored twice (FAT has no hard
// links, and shared clusters would be cross-linked).
func TestHardLinks(t *testing.T) {
	tr := rootfs.New(testTime)
	n := &rootfs.Node{Type: rootfs.Regular, Content: rootfs.Bytes(randBytes(70, 5000))}
	for _, p := range []string{"a/kernel.img", "b/kernel.img", "kernel.img"} {
		if err := tr.Add(p, n); err != nil {
			t.Fatal(err)
		}
	}
	size := MinSize(tr)
	img := writeImage(t, tr, size, Options{MTime: testTime})
	want := listing(t, tr)
	checkFsck(t, img)
	checkMtools(t, img, want)
	checkDiskfs(t, img, size, want, "BOOT")
}
