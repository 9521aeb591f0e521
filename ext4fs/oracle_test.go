//go:build linux

package ext4fs

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// populate fills dir with every kind of inode an upper holds: files of
// many sizes (direct, indirect and double-indirect blocks with 1 KiB
// blocks), sparse files, short and long symlinks, devices (old and new
// encodings, the 0/0 whiteout), fifos, a socket, hard links, the opaque
// xattrs, odd modes and owners, times past 2038, a big directory and a
// deep one.
func populate(t *testing.T, dir string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	write := func(name string, b []byte, perm os.FileMode) {
		p := filepath.Join(dir, name)
		must(os.MkdirAll(filepath.Dir(p), 0o755))
		must(os.WriteFile(p, b, perm))
		must(os.Chmod(p, perm))
	}
	pattern := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*7 + i/251)
		}
		return b
	}
	write("empty", nil, 0o644)
	write("small", []byte("hello\n"), 0o640)
	write("setuid", []byte("x"), 0o4755)
	write("sticky/f", pattern(5000), 0o1777)
	write("big", pattern(600<<10), 0o600) // past 12+256 1 KiB blocks: double indirect
	write("exact", pattern(8192), 0o644)
	// Sparse: data, a hole, data, and a hole up to the end.
	sp := filepath.Join(dir, "sparse")
	f, err := os.Create(sp)
	must(err)
	_, err = f.WriteAt([]byte("start"), 0)
	must(err)
	_, err = f.WriteAt([]byte("middle"), 300<<10)
	must(err)
	must(f.Truncate(1 << 20))
	must(f.Close())
	must(os.Symlink("/short/target", filepath.Join(dir, "sl-short")))
	must(os.Symlink(strings.Repeat("x", 59), filepath.Join(dir, "sl-59")))
	must(os.Symlink(strings.Repeat("long/", 20), filepath.Join(dir, "sl-100")))
	must(os.Symlink(strings.Repeat("y", 1000), filepath.Join(dir, "sl-1000")))
	must(unix.Mknod(filepath.Join(dir, "wh"), unix.S_IFCHR|0o600, 0))
	must(unix.Mknod(filepath.Join(dir, "tty"), unix.S_IFCHR|0o620, int(unix.Mkdev(4, 1))))
	must(unix.Mknod(filepath.Join(dir, "nvme"), unix.S_IFBLK|0o660, int(unix.Mkdev(259, 70000))))
	must(unix.Mknod(filepath.Join(dir, "fifo"), unix.S_IFIFO|0o644, 0))
	must(unix.Mknod(filepath.Join(dir, "sock"), unix.S_IFSOCK|0o755, 0))
	must(os.Link(filepath.Join(dir, "small"), filepath.Join(dir, "hardlink")))
	must(os.Link(filepath.Join(dir, "small"), filepath.Join(dir, "sticky", "hardlink2")))
	must(os.MkdirAll(filepath.Join(dir, "opaque", "sub"), 0o755))
	must(unix.Lsetxattr(filepath.Join(dir, "opaque"), "trusted.overlay.opaque", []byte("y"), 0))
	must(unix.Lsetxattr(filepath.Join(dir, "opaque", "sub"), "user.overlay.opaque", []byte("y"), 0))
	must(unix.Lsetxattr(filepath.Join(dir, "small"), "user.big", pattern(700), 0)) // in the xattr block
	must(os.Lchown(filepath.Join(dir, "small"), 100000, 70000))                    // high 16 bits
	must(os.Lchown(filepath.Join(dir, "sl-short"), 1000, 1001))
	must(os.Chtimes(filepath.Join(dir, "exact"), time.Unix(1<<32+77, 0), time.Unix(1<<32+77, 0)))
	must(os.Chtimes(filepath.Join(dir, "empty"), time.Unix(-86400, 0), time.Unix(-86400, 0)))
	for i := range 3000 {
		write(fmt.Sprintf("many/entry-with-a-longish-name-%05d", i), nil, 0o644)
	}
	deep := dir
	for i := range 40 {
		deep = filepath.Join(deep, fmt.Sprintf("d%d", i))
	}
	write(deep[len(dir)+1:]+"/leaf", []byte("leaf"), 0o644)
}

// TestMatchesHost makes filesystems with mke2fs -d over a populated
// directory in many variants and checks that every path reads as the
// host's: type, mode, owner, time, content, target, device, opaque xattrs
// and hard links.
func TestMatchesHost(t *testing.T) {
	need(t, "mke2fs", "e2fsck")
	if os.Geteuid() != 0 {
		t.Skip("needs root (device nodes, owners, trusted.* xattrs)")
	}
	src := filepath.Join(t.TempDir(), "src")
	populate(t, src)
	variants := []struct {
		name   string
		opts   []string
		old    bool   // 128-byte inodes: no times past 2038
		htreeD bool   // e2fsck -D: index the directories
		kernel bool   // copy in through a loop mount (the kernel writes it all)
		skip   string // a path not to compare
	}{
		{name: "kernel-4k", opts: []string{"-t", "ext4", "-b", "4096"}, kernel: true},
		{name: "kernel-1k-inline", opts: []string{"-t", "ext4", "-b", "1024", "-O", "inline_data"}, kernel: true},
		{name: "kernel-ext3-noextent", opts: []string{"-t", "ext3"}, kernel: true},
		{name: "ext4-4k", opts: []string{"-t", "ext4", "-b", "4096"}},
		{name: "ext4-1k", opts: []string{"-t", "ext4", "-b", "1024"}},
		{name: "ext4-noextent-1k", opts: []string{"-t", "ext4", "-b", "1024", "-O", "^extent,^64bit"}},
		{name: "ext4-no64bit", opts: []string{"-t", "ext4", "-O", "^64bit"}},
		{name: "ext4-inode128", opts: []string{"-t", "ext4", "-I", "128"}, old: true},
		// mke2fs 1.47.0 -d with inline_data drops a sparse file's final
		// hole from its size (debugfs stat agrees with us); the kernel
		// variant covers inline data fully.
		{name: "ext4-inline", opts: []string{"-t", "ext4", "-O", "inline_data"}, skip: "/sparse"},
		{name: "ext4-metabg", opts: []string{"-t", "ext4", "-O", "^resize_inode,meta_bg", "-b", "1024"}},
		{name: "ext4-64k", opts: []string{"-t", "ext4", "-b", "65536", "-N", "8192"}},
		{name: "ext4-htree", opts: []string{"-t", "ext4", "-b", "1024"}, htreeD: true},
		{name: "ext4-root-owner", opts: []string{"-t", "ext4", "-E", "root_owner=1234:5678"}},
		{name: "ext2", opts: []string{"-t", "ext2", "-b", "2048"}},
		{name: "ext3", opts: []string{"-t", "ext3", "-b", "4096"}, htreeD: true},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			var img string
			if v.kernel {
				img = mkfs(t, 64<<20, "", v.opts...)
				copyIn(t, img, src)
			} else {
				img = mkfs(t, 64<<20, src, v.opts...)
			}
			if v.htreeD {
				runTool(t, "e2fsck", "-fyD", img)
			}
			fsys, err := openImage(t, img)
			if err != nil {
				t.Fatal(err)
			}
			got, err := walkAll(fsys)
			if err != nil {
				t.Fatal(err)
			}
			compareHost(t, src, got, v.old || !v.kernel, v.skip)
		})
	}
}

// copyIn copies src into img through a loop mount, so the kernel lays
// out everything (htree directories, extents, inline data, times).
func copyIn(t *testing.T, img, src string) {
	t.Helper()
	mnt := t.TempDir()
	runTool(t, "mount", "-o", "loop", img, mnt)
	defer runTool(t, "umount", mnt)
	runTool(t, "cp", "-a", src+"/.", mnt+"/")
}

// compareHost checks got against the host directory src; old: times are
// kept only to 32 bits (128-byte inodes, or mke2fs -d).
func compareHost(t *testing.T, src string, got map[string]entry, old bool, skip string) {
	t.Helper()
	hostIno := map[uint64]string{} // host inode -> first path
	seen := 0
	err := filepath.WalkDir(src, func(hp string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := "/" + strings.TrimPrefix(filepath.ToSlash(strings.TrimPrefix(hp, src)), "/")
		if rel == "/" {
			return nil // the root's owner and mode are mke2fs's (and -E root_owner's)
		}
		if rel == "/lost+found" {
			return fs.SkipDir
		}
		seen++
		e, ok := got[rel]
		if rel == skip {
			return nil
		}
		if !ok {
			t.Errorf("%s: missing", rel)
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(hp, &st); err != nil {
			return err
		}
		if uint32(e.mode) != st.Mode&0xffff || e.uid != st.Uid || e.gid != st.Gid {
			t.Errorf("%s: mode %o uid %d gid %d, host %o %d %d", rel, e.mode, e.uid, e.gid, st.Mode, st.Uid, st.Gid)
		}
		// mke2fs -d keeps only 32 bits of the seconds; the kernel keeps all.
		if want := st.Mtim.Sec; e.mtime != want && !(old && e.mtime == int64(int32(want))) && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			t.Errorf("%s: mtime %d, host %d", rel, e.mtime, want)
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(hp)
			if err != nil {
				return err
			}
			if !bytes.Equal(e.content, b) || e.size != int64(len(b)) {
				t.Errorf("%s: content of %d bytes (size %d), host %d bytes", rel, len(e.content), e.size, len(b))
			}
			if first, ok := hostIno[st.Ino]; ok && st.Nlink > 1 && got[first].ino != e.ino {
				t.Errorf("%s: inode %d, but its hard link %s has %d", rel, e.ino, first, got[first].ino)
			} else if !ok {
				hostIno[st.Ino] = rel
			}
		case unix.S_IFLNK:
			if target, _ := os.Readlink(hp); e.target != target {
				t.Errorf("%s: target %q, host %q", rel, e.target, target)
			}
		case unix.S_IFCHR, unix.S_IFBLK:
			if e.major != unix.Major(st.Rdev) || e.minor != unix.Minor(st.Rdev) {
				t.Errorf("%s: device %d:%d, host %d:%d", rel, e.major, e.minor, unix.Major(st.Rdev), unix.Minor(st.Rdev))
			}
		}
		for _, name := range []string{"trusted.overlay.opaque", "user.overlay.opaque", "user.big"} {
			buf := make([]byte, 4096)
			n, err := unix.Lgetxattr(hp, name, buf)
			if err == syscall.ENODATA {
				n = -1
			} else if err != nil {
				return err
			}
			v, ok := e.xattrs[name]
			if (n >= 0) != ok || ok && !bytes.Equal(v, buf[:n]) {
				t.Errorf("%s: xattr %s = %q (%v), host %q", rel, name, v, ok, buf[:max(n, 0)])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := seen + 2; len(got) != want { // + the root and lost+found
		t.Errorf("read %d paths, host has %d (+ / and lost+found)", len(got), seen)
	}
}
