//go:build linux

package squashfs

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/rootfs"
)

// TestHostFiles checks that host files (read through their descriptors, a
// small file in one read) give the same image as the same content in
// memory, for every worker count, and that files whose size changed since
// the tree was made are refused.
func TestHostFiles(t *testing.T) {
	const bs = 4096
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(5, 6))
	sizes := []int{0, 1, 100, bs - 1, bs, bs + 1, 3 * bs, 3*bs + 17, prefetchMax + 5, 2000, 2000, 100}
	host, mem := rootfs.New(t0), rootfs.New(t0)
	var last []byte
	for i, n := range sizes {
		content := make([]byte, n)
		for j := range content {
			content[j] = byte('a' + r.IntN(4))
		}
		if i == len(sizes)-2 || i == len(sizes)-1 {
			content = last[:n] // f10 duplicates f09; f11 has f02's size, not its content
		}
		if n >= 2*bs {
			clear(content[bs : 2*bs]) // a sparse block
		}
		last = content
		p := filepath.Join(dir, fmt.Sprint(i))
		if err := os.WriteFile(p, content, 0o644); err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("/f%02d", i)
		add(t, host, name, &rootfs.Node{Type: rootfs.Regular, Perm: 0o644, Content: rootfs.HostFile{Path: p, Len: int64(n)}})
		add(t, mem, name, &rootfs.Node{Type: rootfs.Regular, Perm: 0o644, Content: rootfs.Bytes(content)})
	}
	var want writerAt
	if _, err := Write(&want, mem, Options{BlockSize: bs}); err != nil {
		t.Fatal(err)
	}
	for _, w := range []int{1, 2, 5} {
		var got writerAt
		if _, err := Write(&got, host, Options{BlockSize: bs, Workers: w}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.b, want.b) {
			t.Errorf("%d workers: host files give another image than the same content in memory", w)
		}
	}

	for _, c := range []struct {
		size, real int
		want       string
	}{
		{100, 101, "longer"},
		{100, 99, "shorter"},
		{bs, bs + 1, "longer"},
		{bs + 5, bs + 4, "shorter"},
		{prefetchMax + 5, prefetchMax + 6, "longer"},
		{prefetchMax + 5, prefetchMax + 4, "shorter"},
	} {
		p := filepath.Join(dir, "changed")
		if err := os.WriteFile(p, bytes.Repeat([]byte("x"), c.real), 0o644); err != nil {
			t.Fatal(err)
		}
		tree := rootfs.New(t0)
		add(t, tree, "/changed", &rootfs.Node{Type: rootfs.Regular, Perm: 0o644, Content: rootfs.HostFile{Path: p, Len: int64(c.size)}})
		_, err := Write(&writerAt{}, tree, Options{BlockSize: bs})
		if err == nil || !strings.Contains(err.Error(), "/changed: content is "+c.want) {
			t.Errorf("size %d, file has %d bytes: error %v, want content is %s", c.size, c.real, err, c.want)
		}
	}
	tree := rootfs.New(t0)
	add(t, tree, "/gone", &rootfs.Node{Type: rootfs.Regular, Perm: 0o644, Content: rootfs.HostFile{Path: filepath.Join(dir, "none"), Len: 1}})
	if _, err := Write(&writerAt{}, tree, Options{}); err == nil || !strings.Contains(err.Error(), "/gone: open content: open ") {
		t.Errorf("missing file: error %v", err)
	}
}
