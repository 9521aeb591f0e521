package initramfs

import (
	"bytes"
	"context"
	"debug/elf"
	"os/exec"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/u-root/u-root/pkg/cpio"
)

func TestInitBuildsForEveryArch(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not in PATH")
	}
	b := Builder{CacheDir: t.TempDir()}
	for arch, machine := range map[string]elf.Machine{"arm64": elf.EM_AARCH64, "amd64": elf.EM_X86_64} {
		p, err := b.Init(context.Background(), arch)
		if err != nil {
			t.Fatalf("%s: %v", arch, err)
		}
		f, err := elf.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		if f.Machine != machine || f.Type != elf.ET_EXEC {
			t.Errorf("%s: init is %v %v, want a static %v executable", arch, f.Machine, f.Type, machine)
		}
		if f.Section(".interp") != nil {
			t.Errorf("%s: init is dynamically linked", arch)
		}
		f.Close()
		again, err := b.Init(context.Background(), arch)
		if err != nil || again != p {
			t.Errorf("%s: second Init = %q, %v; want the cached %q", arch, again, err, p)
		}
	}
}

func TestWriteCPIO(t *testing.T) {
	tree, err := Contents{Init: []byte("#!init"), Busybox: []byte("bb"), MTime: 1234}.Tree()
	if err != nil {
		t.Fatal(err)
	}
	var a, b bytes.Buffer
	if err := Write(&a, tree); err != nil {
		t.Fatal(err)
	}
	if err := Write(&b, tree); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("initramfs is not deterministic")
	}
	zr, err := gzip.NewReader(&a)
	if err != nil {
		t.Fatal(err)
	}
	var raw bytes.Buffer
	if _, err := raw.ReadFrom(zr); err != nil {
		t.Fatal(err)
	}
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(raw.Bytes())))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]cpio.Record{}
	for _, r := range recs {
		got[r.Name] = r
	}
	if c, ok := got["dev/console"]; !ok || c.Mode&cpio.S_IFMT != cpio.S_IFCHR || c.Rmajor != 5 || c.Rminor != 1 {
		t.Errorf("dev/console = %+v, want char 5:1", c.Info)
	}
	if i, ok := got["init"]; !ok || i.Mode&0o777 != 0o755 || i.FileSize != 6 || i.MTime != 1234 {
		t.Errorf("init = %+v", i.Info)
	}
	if s, ok := got["bin/sh"]; !ok || s.Mode&cpio.S_IFMT != cpio.S_IFLNK {
		t.Errorf("bin/sh = %+v", s.Info)
	}
	// Parents come before children, as the kernel's unpacker needs.
	seen := map[string]bool{}
	for _, r := range recs {
		if dir := parent(r.Name); dir != "" && !seen[dir] {
			t.Errorf("%s comes before its directory %s", r.Name, dir)
		}
		seen[r.Name] = true
	}
}

func parent(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[:i]
		}
	}
	return ""
}

func TestPackCaches(t *testing.T) {
	b := Builder{CacheDir: t.TempDir()}
	c := Contents{Init: []byte("init"), Busybox: []byte("bb"), MTime: 7}
	first, err := b.Pack(c)
	if err != nil {
		t.Fatal(err)
	}
	second, err := b.Pack(c)
	if err != nil {
		t.Fatal(err)
	}
	tree, _ := c.Tree()
	var direct bytes.Buffer
	if err := Write(&direct, tree); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, second) || !bytes.Equal(first, direct.Bytes()) {
		t.Fatal("cached initramfs differs from a fresh one")
	}
	c.Busybox = []byte("other")
	third, err := b.Pack(c)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(first, third) {
		t.Fatal("changed contents served from the cache")
	}
}

// Parallel builds of the same init into an empty cache must not trip over
// each other's temporary files.
func TestInitParallelColdCache(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not in PATH")
	}
	b := Builder{CacheDir: t.TempDir()}
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		go func() {
			_, err := b.Init(context.Background(), "arm64")
			errs <- err
		}()
	}
	for i := 0; i < 4; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
