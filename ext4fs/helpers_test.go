package ext4fs

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// entry is what a walk sees of one path.
type entry struct {
	ino          uint32
	mode         uint16
	uid, gid     uint32
	size         int64
	mtime        int64
	target       string
	major, minor uint32
	content      []byte
	xattrs       map[string][]byte
}

// walkAll reads the whole tree under the root: every directory, file
// content, symlink and xattr, the way layer does (a directory reached
// twice is an error). maxContent bounds how much content is kept.
func walkAll(fsys *FS) (map[string]entry, error) {
	out := map[string]entry{}
	root, err := fsys.Inode(RootIno)
	if err != nil {
		return nil, err
	}
	seen := map[uint32]string{RootIno: "/"}
	var walk func(p string, in *Inode, depth int) error
	walk = func(p string, in *Inode, depth int) error {
		e := entry{ino: in.Ino, mode: in.Mode, uid: in.UID, gid: in.GID, mtime: in.MTime, major: in.Major, minor: in.Minor}
		x, err := fsys.Xattrs(in)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		e.xattrs = x
		switch in.Type() {
		case TypeRegular:
			f, err := fsys.Open(in)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			e.size = f.Size()
			if e.content, err = io.ReadAll(f.NewReader()); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
		case TypeSymlink:
			if e.target, err = fsys.Readlink(in); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
		case TypeDir:
			if depth > 4096 {
				return fmt.Errorf("%s: too deep", p)
			}
			ents, err := fsys.ReadDir(in)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			for _, de := range ents {
				cp := strings.TrimSuffix(p, "/") + "/" + de.Name
				if prev, ok := seen[de.Ino]; ok {
					if prev != "" {
						return fmt.Errorf("%s: directory %s again: a cycle", cp, prev)
					}
				}
				ci, err := fsys.Inode(de.Ino)
				if err != nil {
					return fmt.Errorf("%s: %w", cp, err)
				}
				if ci.Type() == TypeDir {
					seen[de.Ino] = cp
				} else if _, ok := seen[de.Ino]; ok {
					out[cp] = out[firstPath(out, de.Ino)]
					continue
				} else {
					seen[de.Ino] = ""
				}
				if err := walk(cp, ci, depth+1); err != nil {
					return err
				}
			}
		}
		out[p] = e
		return nil
	}
	return out, walk("/", root, 0)
}

func firstPath(m map[string]entry, ino uint32) string {
	for p, e := range m {
		if e.ino == ino {
			return p
		}
	}
	return ""
}

// need skips the test when a tool is missing.
func need(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
}

func runTool(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// mkfs makes an image of size bytes with mke2fs and the given options,
// populated from src when it is not empty.
func mkfs(t testing.TB, size int64, src string, opts ...string) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "fs.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-q", "-F", "-E", "nodiscard,lazy_itable_init=0"}, opts...)
	if src != "" {
		args = append(args, "-d", src)
	}
	runTool(t, "mke2fs", append(args, img)...)
	return img
}

// debugfs runs debugfs -w commands on img.
func debugfs(t testing.TB, img string, cmds ...string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "cmds")
	if err := os.WriteFile(f, []byte(strings.Join(cmds, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return runTool(t, "debugfs", "-w", "-f", f, img)
}

func openImage(t testing.TB, img string) (*FS, error) {
	t.Helper()
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	return Open(bytes.NewReader(b), int64(len(b)))
}
