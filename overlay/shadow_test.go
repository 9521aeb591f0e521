package overlay

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestShadowed(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (whiteouts are device nodes, opaque dirs trusted xattrs)")
	}
	dir := t.TempDir()
	upper, newL, oldL := filepath.Join(dir, "upper"), filepath.Join(dir, "new"), filepath.Join(dir, "old")
	write := func(root, p, content string) {
		os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755)
		if err := os.WriteFile(filepath.Join(root, p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range []string{oldL, newL} {
		write(l, "etc/same", "same")
		write(l, "etc/deleted-same", "x")
		write(l, "opaque-same/a", "a")
	}
	write(oldL, "etc/passwd", "root:v1")
	write(newL, "etc/passwd", "root:v2")
	write(newL, "etc/new", "release")
	write(oldL, "etc/gone", "v1 only")
	write(newL, "etc/gone", "back, changed")
	write(oldL, "opaque-changed/a", "a")
	write(newL, "opaque-changed/b", "b")

	write(upper, "etc/passwd", "root:mine")
	write(upper, "etc/same", "mine")
	write(upper, "etc/new", "mine")
	write(upper, "etc/untouched-by-release", "mine")
	for _, wh := range []string{"etc/gone", "etc/deleted-same"} {
		if err := unix.Mknod(filepath.Join(upper, wh), unix.S_IFCHR|0o600, 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"opaque-same", "opaque-changed"} {
		os.MkdirAll(filepath.Join(upper, d), 0o755)
		if err := unix.Setxattr(filepath.Join(upper, d), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
			t.Skipf("no trusted xattrs here: %v", err)
		}
	}
	got, truncated, err := Shadowed(upper, newL, oldL)
	if err != nil || truncated {
		t.Fatalf("Shadowed: %v (truncated %v)", err, truncated)
	}
	want := map[string]string{
		"/etc/passwd": WhyChanged, "/etc/new": WhyAdded, "/etc/gone": WhyRestored, "/opaque-changed": WhyOpaqueDir,
	}
	if len(got) != len(want) {
		t.Errorf("Shadowed = %+v, want %v", got, want)
	}
	for _, s := range got {
		if want[s.Path] != s.Why {
			t.Errorf("%s: %q, want %q", s.Path, s.Why, want[s.Path])
		}
	}
}
