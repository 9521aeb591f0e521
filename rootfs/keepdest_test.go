package rootfs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A --files source's own mode and owner never replace the destination's
// (mktemp -d makes 0700 directories); its subdirectories' modes do apply,
// and SystemDirProblems reports the system directories they spoil.
func TestKeepDest(t *testing.T) {
	src := t.TempDir()
	os.Chmod(src, 0o700)
	os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644)
	os.Mkdir(filepath.Join(src, "sub"), 0o750)

	spoiler := t.TempDir() // makes /etc and /tmp unusable
	os.Mkdir(filepath.Join(spoiler, "etc"), 0o700)
	os.Mkdir(filepath.Join(spoiler, "tmp"), 0o777)
	os.Chmod(filepath.Join(spoiler, "tmp"), 0o777) // no sticky bit (umask-proof)

	owner := &Owner{UID: 1000, GID: 1000}
	mtime := int64(42)
	tests := []struct {
		name     string
		src      string
		dest     string
		keep     bool
		check    string // path whose mode and owner are checked
		perm     uint32
		uid      uint32
		problems []string
		err      string
	}{
		{name: "root keeps 0755", src: src, dest: "/", keep: true, check: "/", perm: 0o755},
		{name: "existing dir keeps its mode", src: src, dest: "/etc", keep: true, check: "/etc", perm: 0o755},
		{name: "missing dest made 0755 root", src: src, dest: "/opt/app", keep: true, check: "/opt/app", perm: 0o755},
		{name: "contents keep their modes", src: src, dest: "/opt/app", keep: true, check: "/opt/app/sub", perm: 0o750, uid: 1000},
		{name: "without KeepDest (rfs squashfs) the source's mode applies", src: src, dest: "/", check: "/", perm: 0o700, uid: 1000, problems: []string{"/"}},
		{name: "subdirectories spoil system dirs", src: spoiler, dest: "/", keep: true, check: "/etc", perm: 0o700, uid: 1000, problems: []string{"/etc", "/tmp"}},
		{name: "dest is a symlink", src: src, dest: "/bin", keep: true, err: "a symlink is already there"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := New(1)
			for _, d := range []string{"/etc", "/tmp", "/usr/bin"} {
				if err := tr.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			tr.Lookup("/tmp").Perm = 0o1777
			tr.Add("/bin", &Node{Type: Symlink, Perm: 0o777, Target: "usr/bin"})
			err := tr.AddHostDir(tt.src, tt.dest, HostDirOptions{Owner: owner, MTime: &mtime, KeepDest: tt.keep})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("AddHostDir = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			n := tr.Lookup(tt.check)
			if n == nil || n.Type != Dir || n.Perm != tt.perm || n.UID != tt.uid {
				t.Fatalf("%s = %+v, want a directory %04o owned by %d", tt.check, n, tt.perm, tt.uid)
			}
			if f := tr.Lookup(strings.TrimSuffix(tt.dest, "/") + "/f"); tt.src == src && (f == nil || f.Type != Regular) {
				t.Errorf("the source's file did not merge in at %s", tt.dest)
			}
			probs := tr.SystemDirProblems()
			if len(probs) != len(tt.problems) {
				t.Errorf("problems = %q, want %q", probs, tt.problems)
			}
			for _, p := range tt.problems {
				if probs[p] == "" {
					t.Errorf("no problem reported for %s (got %q)", p, probs)
				}
			}
		})
	}
}
