//go:build unix

package atomicfile

import (
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestCreateRefusesNonFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	linkNull := filepath.Join(dir, "null-link")
	if err := os.Symlink("/dev/null", linkNull); err != nil {
		t.Fatal(err)
	}
	linkDir := filepath.Join(dir, "dir-link")
	if err := os.Symlink(sub, linkDir); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want []string
	}{
		{"/dev/null", []string{"/dev/null exists and is a character device", "rfs flash"}},
		{fifo, []string{"is a named pipe, not a file"}},
		{sub, []string{"is a directory", "sub/disk.img"}},
		{sock, []string{"is a socket"}},
		{linkNull, []string{"null-link (through the symlink to /dev/null)", "character device"}},
		{linkDir, []string{"is a directory"}},
		{"", []string{"no output path"}},
	} {
		before := snapshot(t, dir)
		f, err := Create(tc.path, 0o644)
		if err == nil {
			f.Abort()
			t.Errorf("Create(%q) succeeded, want a refusal", tc.path)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Create(%q) = %q, want it to say %q", tc.path, err, w)
			}
		}
		if after := snapshot(t, dir); after != before {
			t.Errorf("Create(%q) changed the directory: %s -> %s", tc.path, before, after)
		}
	}
	if st, err := os.Stat("/dev/null"); err != nil || st.Mode()&fs.ModeCharDevice == 0 {
		t.Fatalf("/dev/null is no longer a character device: %v %v", st, err)
	}
}

func TestAbortLeavesTargetAndNoTemp(t *testing.T) {
	for _, existing := range []bool{false, true} {
		dir := t.TempDir()
		path := filepath.Join(dir, "out.img")
		if existing {
			if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		f, err := Create(path, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(filepath.Base(f.Name()), ".out.img.tmp-") {
			t.Errorf("temp file %s is not hidden next to the target", f.Name())
		}
		if _, err := f.WriteAt([]byte("new bytes"), 100); err != nil {
			t.Fatal(err)
		}
		f.Abort()
		f.Abort() // twice is fine
		if err := f.Commit(); err == nil {
			t.Error("Commit after Abort succeeded")
		}
		want := ""
		if existing {
			want = "out.img"
		}
		if got := snapshot(t, dir); got != want {
			t.Errorf("existing=%v: directory holds %q after Abort, want %q", existing, got, want)
		}
		if existing {
			if b, _ := os.ReadFile(path); string(b) != "old" {
				t.Errorf("target changed by Abort: %q", b)
			}
		}
	}
}

func TestCommit(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real.img")
	if err := os.WriteFile(real, []byte("old contents, longer"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.img")
	if err := os.Symlink("real.img", link); err != nil {
		t.Fatal(err)
	}
	f, err := Create(link, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("J")); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	f.Abort() // after Commit: nothing happens
	if b, err := os.ReadFile(real); err != nil || string(b) != "Jello" {
		t.Errorf("real.img = %q, %v; want the new bytes", b, err)
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("the symlink was replaced: %v %v", st, err)
	}
	if st, _ := os.Stat(real); st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", st.Mode().Perm())
	}
	if err := f.Commit(); err == nil {
		t.Error("second Commit succeeded")
	}
	if got := snapshot(t, dir); got != "link.img real.img" {
		t.Errorf("directory holds %q, want only link.img and real.img", got)
	}
	if err := WriteFile(filepath.Join(dir, "w"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "w")); string(b) != "x" {
		t.Errorf("WriteFile wrote %q", b)
	}
}

// snapshot lists dir's entry names, hidden ones included.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return strings.Join(names, " ")
}
