//go:build linux

package squashfs

import (
	"bytes"
	"io"
	"testing"

	"github.com/rfsbuild/rfs/rootfs"
)

// FuzzOpen feeds malformed images to the reader: it must return errors,
// never panic, loop or allocate much more than the image's size. The seed
// corpus (testdata/fuzz/FuzzOpen) holds three tiny images (gzip, xz,
// zstd) with xattrs, a fragment, a sparse block, a hard link, a symlink
// and a device; two larger gzip images are made here.
func FuzzOpen(f *testing.F) {
	// xz and zstd seeds are in testdata only: making them here under the
	// fuzzer's instrumentation costs each worker most of a minute.
	for i, opts := range []Options{
		{BlockSize: 4096},
		{BlockSize: 4096, Xattrs: true},
	} {
		tree := allTypes(f)
		add(f, tree, "/x", &rootfs.Node{Type: rootfs.Regular, Perm: 0o644, Xattrs: map[string][]byte{"user.a": []byte("b"), "trusted.overlay.opaque": []byte("y")}, Content: rootfs.Bytes(bytes.Repeat([]byte{0, 1, 2, 0}, 3000))})
		add(f, tree, "/z", &rootfs.Node{Type: rootfs.Regular, Perm: 0o644, Content: rootfs.Bytes(make([]byte, 9000))})
		if i == 0 {
			add(f, tree, "/x", &rootfs.Node{Type: rootfs.Regular, Perm: 0o644, Content: rootfs.Bytes("tail")})
		}
		var w writerAt
		if _, err := Write(&w, tree, opts); err != nil {
			f.Fatal(err)
		}
		f.Add(w.b)
	}
	f.Fuzz(func(t *testing.T, img []byte) {
		r, err := Open(bytes.NewReader(img))
		if err != nil {
			return
		}
		r.Info()
		n, read := 0, int64(0)
		_ = r.Walk(func(p string, ino *Inode) error {
			if n++; n > 2000 || read > 8<<20 {
				return io.EOF
			}
			if _, err := r.Xattrs(ino); err != nil {
				return err
			}
			if ino.Type == rootfs.Regular {
				sr, err := r.OpenFile(ino)
				if err != nil {
					return err
				}
				// Read at most 256 KiB: sparse files may be huge.
				k, err := io.Copy(io.Discard, io.LimitReader(sr, 256<<10))
				read += k
				if err != nil {
					return err
				}
			}
			return nil
		})
		if tree, err := r.ToTree(); err == nil {
			_ = tree
		}
	})
}
