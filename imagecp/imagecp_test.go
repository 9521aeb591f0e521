package imagecp

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/image/imagetest"
	"github.com/rfsbuild/rfs/layer"
	"github.com/rfsbuild/rfs/rootfs"
)

// testImage is an image whose lower has /etc, /usr/bin (and /bin ->
// usr/bin), /var/lib/gone/x, a volume at /var/data; its upper is made
// by the test.
func testImage(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"debugfs", "e2fsck", "mke2fs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skip(tool + " not installed")
		}
	}
	root := imagetest.Tree(t, map[string]string{
		"/etc/hosts": "127.0.0.1 localhost\n", "/etc/rfs/volumes": "data /var/data\n",
		"/usr/bin/tool": "#!/bin/sh\n", "/var/lib/gone/x": "x", "/opt/keep": "k",
	})
	if err := root.Add("/bin", &rootfs.Node{Type: rootfs.Symlink, Perm: 0o777, Target: "usr/bin"}); err != nil {
		t.Fatal(err)
	}
	etc := root.Lookup("/etc")
	etc.Perm, etc.UID, etc.GID, etc.MTime = 0o750, 7, 8, 1_600_000_000
	path, _ := imagetest.Write(t, imagetest.Spec{Table: "gpt", Parts: []imagetest.Part{
		{Role: image.RoleBoot}, {Role: image.RoleRoot, Tree: root}, {Role: image.RoleData},
	}})
	return path
}

// debugfs runs commands on img's data partition, as a device would have
// left it (whiteouts).
func debugfs(t *testing.T, img string, cmds ...string) {
	t.Helper()
	i, err := image.OpenImage(img)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := i.Data()
	i.Close()
	var s script
	for _, c := range cmds {
		s.add(c)
	}
	if err := runDebugfs(context.Background(), fsSpec(img, data.Start), &s); err != nil {
		t.Fatal(err)
	}
}

func view(t *testing.T, img string) *View {
	t.Helper()
	i, err := image.OpenImage(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { i.Close() }) // file contents are read lazily
	v, err := ReadView(i)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func fsck(t *testing.T, img string) {
	t.Helper()
	i, err := image.OpenImage(img)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := i.Data()
	i.Close()
	if out, err := exec.Command("e2fsck", "-fn", fsSpec(img, data.Start)).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck -fn: %v\n%s", err, out)
	}
}

func content(t *testing.T, n *rootfs.Node) string {
	t.Helper()
	if n == nil || n.Type != rootfs.Regular {
		t.Fatalf("not a file: %+v", n)
	}
	r, err := n.Content.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b := make([]byte, n.Content.Size())
	if _, err := r.Read(b); err != nil && len(b) > 0 {
		t.Fatal(err)
	}
	return string(b)
}

// hostTree writes a source directory: a file, a subdir, a symlink, a fifo.
func hostTree(t *testing.T) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "app")
	for _, d := range []string{src, src + "/sub dir"} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(src+"/run.sh", []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(src+`/sub dir/q"uote`, []byte("q"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../run.sh", src+"/sub dir/link"); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("mkfifo", src+"/fifo").Run(); err != nil {
		t.Fatal(err)
	}
	old := time.Unix(1_500_000_000, 0)
	for _, p := range []string{src + "/run.sh", src + "/sub dir", src} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	return src
}

func TestCopyIn(t *testing.T) {
	img := testImage(t)
	ctx := context.Background()
	// The device deleted /var/lib/gone (a whiteout, on a never-booted
	// data partition: upper/ made here).
	debugfs(t, img, "mkdir /upper", "mkdir /upper/var", "mkdir /upper/var/lib", "cd /upper/var/lib", "mknod gone c 0 0")
	src := hostTree(t)
	file := filepath.Join(t.TempDir(), "new.conf")
	if err := os.WriteFile(file, []byte("new\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	o := Options{Log: &log}
	for _, c := range []struct{ src, dst string }{
		{file, "/etc/new.conf"}, // /etc copied up from the lower
		{src, "/opt/"},          // into an existing lower directory
		{file, "/bin/"},         // through the /bin -> usr/bin symlink
		{src, "/var/lib/gone"},  // over a whiteout: an opaque directory
		{file, "/etc/hosts"},    // replaces a lower file
		{file, "/etc/new.conf"}, // replaces the copy just made
	} {
		if _, err := In(ctx, c.src, img, c.dst, o); err != nil {
			t.Fatalf("cp %s IMG:%s: %v", c.src, c.dst, err)
		}
	}
	fsck(t, img)
	if !strings.Contains(log.String(), "copied up /etc") || !strings.Contains(log.String(), "/var/lib/gone was deleted") {
		t.Errorf("log:\n%s", log.String())
	}
	v := view(t, img)
	m := v.Merged
	if got := content(t, m.Lookup("/etc/new.conf")); got != "new\n" {
		t.Errorf("/etc/new.conf = %q", got)
	}
	if n := m.Lookup("/etc/new.conf"); n.Perm != 0o640 || n.UID != 0 {
		t.Errorf("/etc/new.conf mode %o uid %d", n.Perm, n.UID)
	}
	if e := v.Upper.Lookup("/etc"); e == nil || e.Perm != 0o750 || e.UID != 7 || e.GID != 8 || e.MTime != 1_600_000_000 {
		t.Errorf("copied-up /etc: %+v", e)
	}
	if got := content(t, m.Lookup("/usr/bin/new.conf")); got != "new\n" {
		t.Errorf("/usr/bin/new.conf = %q", got)
	}
	if m.Lookup("/var/lib/gone/x") != nil || m.Lookup("/var/lib/gone/run.sh") == nil {
		t.Errorf("/var/lib/gone: the lower's x shows or the copy is missing")
	}
	if !layer.IsOpaque(v.Upper.Lookup("/var/lib/gone")) {
		t.Errorf("/var/lib/gone is not opaque")
	}
	for _, dir := range []string{"/opt/app", "/var/lib/gone"} {
		if n := m.Lookup(dir + "/run.sh"); n == nil || n.Perm != 0o755 || n.MTime != 1_500_000_000 {
			t.Errorf("%s/run.sh: %+v", dir, n)
		}
		if n := m.Lookup(dir + "/sub dir/link"); n == nil || n.Type != rootfs.Symlink || n.Target != "../run.sh" {
			t.Errorf("%s/sub dir/link: %+v", dir, n)
		}
		if got := content(t, m.Lookup(dir+`/sub dir/q"uote`)); got != "q" {
			t.Errorf(`%s/sub dir/q"uote = %q`, dir, got)
		}
		if n := m.Lookup(dir + "/fifo"); n == nil || n.Type != rootfs.FIFO {
			t.Errorf("%s/fifo: %+v", dir, n)
		}
		if n := m.Lookup(dir); n.MTime != 1_500_000_000 || n.Perm != 0o755 {
			t.Errorf("%s: %+v", dir, n)
		}
	}
	changes, err := layer.Diff(v.Lower, v.Upper)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, c := range changes {
		lines = append(lines, c.String())
	}
	for _, want := range []string{"C /etc", "C /etc/hosts", "A /etc/new.conf", "A /opt/app", "A /opt/app/sub dir/link", "C /usr/bin", "A /usr/bin/new.conf", "C /var/lib/gone", "D /var/lib/gone/x", "A /var/lib/gone/run.sh"} {
		if !slices.Contains(lines, want) {
			t.Errorf("rfs diff lacks %q:\n%s", want, strings.Join(lines, "\n"))
		}
	}
}

func TestCopyInRefusals(t *testing.T) {
	img := testImage(t)
	src := hostTree(t)
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, []byte("f"), 0o644); err != nil {
		t.Fatal(err)
	}
	varDir := filepath.Join(t.TempDir(), "var")
	if err := os.Mkdir(varDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ src, dst, err string }{
		{src, "/etc/hosts", "cannot copy the directory"},
		{file, "etc/x", "must be absolute"},
		{file, "/nope/x", "/nope: no such file"},
		{file, "/nope/", "/nope: no such file"},
		{file, "/proc/x", "under /proc"},
		{file, "/run", "under /run"},
		{file, "/var/data/x", "volume data"},
		{varDir, "/", "volume data"}, // /var holds the volume
		{file, "/etc/hosts/x", "not a directory"},
		{filepath.Join(t.TempDir(), "missing"), "/etc/", "no such file"},
	} {
		_, err := In(context.Background(), c.src, img, c.dst, Options{})
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("cp %s IMG:%s: %v, want %q", c.src, c.dst, err, c.err)
		}
	}
	fsck(t, img)
}

func TestCopyOut(t *testing.T) {
	img := testImage(t)
	ctx := context.Background()
	src := hostTree(t)
	if _, err := In(ctx, src, img, "/opt/", Options{}); err != nil {
		t.Fatal(err)
	}
	debugfs(t, img, "cd /upper/opt", "mknod keep c 0 0")
	dst := t.TempDir()
	res, err := Out(ctx, img, "/opt", dst, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Path != filepath.Join(dst, "opt") {
		t.Errorf("copied to %s", res.Path)
	}
	if _, err := os.Lstat(filepath.Join(dst, "opt/keep")); !os.IsNotExist(err) {
		t.Errorf("the deleted /opt/keep was copied out: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(dst, "opt/app/run.sh"))
	if err != nil || string(b) != "#!/bin/sh\necho hi\n" {
		t.Errorf("run.sh = %q, %v", b, err)
	}
	if st, err := os.Stat(filepath.Join(dst, "opt/app/run.sh")); err != nil || st.Mode().Perm() != 0o755 || st.ModTime().Unix() != 1_500_000_000 {
		t.Errorf("run.sh: %v %v", st, err)
	}
	if l, err := os.Readlink(filepath.Join(dst, "opt/app/sub dir/link")); err != nil || l != "../run.sh" {
		t.Errorf("link = %q, %v", l, err)
	}
	if st, err := os.Lstat(filepath.Join(dst, "opt/app/fifo")); err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("fifo: %v %v", st, err)
	}
	// A file to a new name, then over an existing file, through /bin.
	if _, err := Out(ctx, img, "/bin/tool", filepath.Join(dst, "tool"), Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Out(ctx, img, "/etc/hosts", filepath.Join(dst, "tool"), Options{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "tool")); string(b) != "127.0.0.1 localhost\n" {
		t.Errorf("tool = %q", b)
	}
	for _, c := range []struct{ src, dst, err string }{
		{"/opt/keep", dst, "no such file"},
		{"/etc", filepath.Join(dst, "tool"), "is a file"},
		{"/etc/hosts", filepath.Join(dst, "no/such/dir"), "does not exist"},
		{"/var/data", dst, "volume"},
	} {
		if _, err := Out(ctx, img, c.src, c.dst, Options{}); err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("cp IMG:%s %s: %v, want %q", c.src, c.dst, err, c.err)
		}
	}
}

func TestResolve(t *testing.T) {
	tr := imagetest.Tree(t, map[string]string{"/usr/bin/x": "x", "/etc/f": "f"})
	for p, target := range map[string]string{"/bin": "usr/bin", "/abs": "/usr", "/loop": "loop", "/up": "../../etc"} {
		if err := tr.Add(p, &rootfs.Node{Type: rootfs.Symlink, Target: target}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		in, want string
		follow   bool
		found    bool
		err      string
	}{
		{"/bin/x", "/usr/bin/x", false, true, ""},
		{"/abs/bin/y", "/usr/bin/y", false, false, ""},
		{"/bin", "/bin", false, true, ""},
		{"/bin", "/usr/bin", true, true, ""},
		{"/up/f", "/etc/f", false, true, ""},
		{"/", "/", false, true, ""},
		{"/loop/x", "", false, false, "too many levels"},
		{"/etc/f/x", "", false, false, "not a directory"},
		{"/nope/x", "", false, false, "no such file"},
	} {
		p, n, err := Resolve(tr, c.in, c.follow)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("Resolve(%q) = %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || p != c.want || (n != nil) != c.found {
			t.Errorf("Resolve(%q, %v) = %q, %v, %v; want %q found %v", c.in, c.follow, p, n != nil, err, c.want, c.found)
		}
	}
}

// A data partition whose journal needs recovery (a power cut) is replayed
// before debugfs writes, and says so; the result is e2fsck clean.
func TestCopyInRecoversJournal(t *testing.T) {
	img := testImage(t)
	// debugfs writes a journal transaction and leaves it unreplayed.
	debugfs(t, img, "mkdir /upper", "jo", "jw -b 300 /etc/hostname", "jc")
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, []byte("f"), 0o644); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	if _, err := In(context.Background(), file, img, "/etc/", Options{Log: &log}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "journal needs recovery") {
		t.Errorf("log: %q", log.String())
	}
	fsck(t, img)
	if got := content(t, view(t, img).Merged.Lookup("/etc/f")); got != "f" {
		t.Errorf("/etc/f = %q", got)
	}
}
