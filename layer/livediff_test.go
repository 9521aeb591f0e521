//go:build linux

package layer_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rfsbuild/rfs/layer"
	"github.com/rfsbuild/rfs/overlay"
)

// The on-device diff (overlay.LiveDiff, in the init) must agree with the host's (package layer) on the
// same lower and upper: whiteouts, an opaque directory, added, changed and
// unchanged copied-up files.
func TestLiveDiffMatchesHostDiff(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: whiteouts are char 0/0 device nodes and opaque dirs trusted.* xattrs")
	}
	lower, upper := t.TempDir(), t.TempDir()
	write := func(root, p, content string) {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"etc/passwd", "etc/hosts", "etc/same", "usr/bin/tool", "var/lib/app/a", "var/lib/app/b", "opt/old/x"} {
		write(lower, p, "lower "+p)
	}
	// Keep every directory's mtime equal in both layers, as a copy-up does.
	write(upper, "etc/passwd", "changed")          // C
	write(upper, "etc/new", "added")               // A
	write(upper, "etc/same", "lower etc/same")     // copied up, unchanged: not listed
	write(upper, "home/user/notes", "added tree")  // A for the whole tree
	write(upper, "var/lib/app/c", "in opaque dir") // opaque dir: C + D for a and b
	if err := unix.Setxattr(filepath.Join(upper, "var/lib/app"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Skipf("no trusted.* xattrs on %s: %v", upper, err)
	}
	if err := os.MkdirAll(filepath.Join(upper, "usr/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(filepath.Join(upper, "usr/bin/tool"), unix.S_IFCHR, 0); err != nil { // D
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(upper, "opt"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(filepath.Join(upper, "opt/old"), unix.S_IFCHR, 0); err != nil { // D of a subtree
		t.Fatal(err)
	}
	// Same metadata on directories present in both, so only content decides.
	for _, d := range []string{"etc", "usr", "usr/bin", "var", "var/lib", "var/lib/app", "opt", "."} {
		st, err := os.Stat(filepath.Join(lower, d))
		if err != nil {
			t.Fatal(err)
		}
		os.Chtimes(filepath.Join(upper, d), st.ModTime(), st.ModTime())
	}
	same := filepath.Join(upper, "etc/same")
	st, _ := os.Stat(filepath.Join(lower, "etc/same"))
	os.Chtimes(same, st.ModTime(), st.ModTime())

	live, err := overlay.LiveDiff(upper, []string{lower})
	if err != nil {
		t.Fatal(err)
	}
	lt, err := layer.ReadDir(lower)
	if err != nil {
		t.Fatal(err)
	}
	ut, err := layer.ReadDir(upper)
	if err != nil {
		t.Fatal(err)
	}
	host, err := layer.Diff(lt, ut)
	if err != nil {
		t.Fatal(err)
	}
	var a, b []string
	for _, c := range live {
		a = append(a, c.Kind+" "+c.Path)
	}
	for _, c := range host {
		b = append(b, c.String())
	}
	if !slices.Equal(a, b) {
		t.Fatalf("on-device diff:\n%q\nhost diff:\n%q", a, b)
	}
	for _, want := range []string{"C /etc/passwd", "A /etc/new", "A /home/user/notes", "D /usr/bin/tool", "D /opt/old", "C /var/lib/app", "D /var/lib/app/a", "A /var/lib/app/c"} {
		if !slices.Contains(a, want) {
			t.Errorf("diff lacks %q: %q", want, a)
		}
	}
	if slices.Contains(a, "C /etc/same") {
		t.Error("an unchanged copied-up file is listed")
	}
}
