//go:build linux

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rfsbuild/rfs/rootfs"
	"github.com/rfsbuild/rfs/squashfs"
)

func readImage(t *testing.T, img string) *squashfs.Reader {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	r, err := squashfs.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSquashfsCommand(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.MkdirAll(filepath.Join(src, "etc"), 0o755)
	os.WriteFile(filepath.Join(src, "etc", "hostname"), []byte("rfs\n"), 0o644)
	os.WriteFile(filepath.Join(src, "big"), []byte(strings.Repeat("data ", 100000)), 0o600)
	os.Symlink("etc/hostname", filepath.Join(src, "link"))
	haveX := unix.Setxattr(filepath.Join(src, "big"), "user.rfs", []byte("yes"), 0) == nil

	img := filepath.Join(dir, "out.sqfs")
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	if _, err := execute(t, "squashfs", src, "-o", img, "--all-root", "--all-time", "12345", "--processors", "1"); err != nil {
		t.Fatal(err)
	}
	r := readImage(t, img)
	if info := r.Info(); info.MTime != 1700000000 || info.Compressor != "gzip" || info.BlockSize != 131072 {
		t.Errorf("info %+v", info)
	}
	tree, err := r.ToTree()
	if err != nil {
		t.Fatal(err)
	}
	tree.Walk(func(p string, n *rootfs.Node) error {
		if n.UID != 0 || n.GID != 0 || n.MTime != 12345 || len(n.Xattrs) != 0 {
			t.Errorf("%s: %d:%d mtime %d xattrs %v", p, n.UID, n.GID, n.MTime, n.Xattrs)
		}
		return nil
	})
	if n := tree.Lookup("/link"); n == nil || n.Target != "etc/hostname" {
		t.Errorf("/link: %+v", n)
	}

	// mksquashfs spellings, positional output, zstd, xattrs, mkfs time.
	img2 := filepath.Join(dir, "out2.sqfs")
	if _, err := execute(t, "squashfs", src, img2, "-comp", "zstd", "-b", "64K", "-Xcompression-level", "3", "-xattrs", "-mkfs-time", "7", "-noappend", "-quiet"); err != nil {
		t.Fatal(err)
	}
	r2 := readImage(t, img2)
	if info := r2.Info(); info.MTime != 7 || info.Compressor != "zstd" || info.BlockSize != 65536 {
		t.Errorf("info %+v", info)
	}
	if haveX {
		big, err := r2.Lookup("/big")
		if err != nil {
			t.Fatal(err)
		}
		x, err := r2.Xattrs(big)
		if err != nil || string(x["user.rfs"]) != "yes" {
			t.Errorf("xattrs of /big: %q %v", x, err)
		}
	}

	// Same input, same bytes, whatever the processors.
	img3 := filepath.Join(dir, "out3.sqfs")
	if _, err := execute(t, "squashfs", src, "-o", img3, "--all-root", "--all-time", "12345", "--processors", "3"); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(img)
	b, _ := os.ReadFile(img3)
	if string(a) != string(b) {
		t.Error("--processors 1 and 3 give different images")
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"squashfs", src, "-o", img, "--comp", "lzo"}, `compressor "lzo" is not supported`},
		{[]string{"squashfs", src, "-o", img, "-b", "3000"}, `--block-size "3000": want a power of two`},
		{[]string{"squashfs", src, "-o", img, "--all-time", "-1"}, "--all-time -1: want seconds"},
		{[]string{"squashfs", src, "-o", img, "--xattrs", "--no-xattrs"}, "both given"},
		{[]string{"squashfs", src, "-o", img, "--comp", "xz", "--level", "3"}, "xz has no level"},
		{[]string{"squashfs", src}, "missing -o"},
		{[]string{"squashfs"}, "usage"},
		{[]string{"squashfs", src, "-o", img, "--bogus"}, "unknown flag"},
	} {
		if _, err := execute(t, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("rfs %s: error %v, want %q", strings.Join(c.args, " "), err, c.want)
		}
	}
	out, err := execute(t, "squashfs", "--help")
	if err != nil || !strings.Contains(out, "--comp") || !strings.Contains(out, "Examples:") {
		t.Errorf("help: %v\n%s", err, out)
	}
}
