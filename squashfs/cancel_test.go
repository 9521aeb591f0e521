package squashfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/rfsbuild/rfs/rootfs"
)

// countingSource is file content of n pseudo-random bytes that counts what
// is read of it and cancels a context once more than after bytes are.
type countingSource struct {
	n      int64
	read   *atomic.Int64
	after  int64
	cancel context.CancelFunc
}

func (s countingSource) Size() int64 { return s.n }
func (s countingSource) Open() (io.ReadCloser, error) {
	return io.NopCloser(&countingReader{s: s, left: s.n, x: uint32(s.n)}), nil
}

type countingReader struct {
	s    countingSource
	left int64
	x    uint32
}

func (r *countingReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.left)]
	for i := range p {
		r.x = r.x*1664525 + 1013904223
		p[i] = byte(r.x >> 24)
	}
	r.left -= int64(len(p))
	if r.s.read.Add(int64(len(p))) > r.s.after {
		r.s.cancel()
	}
	return len(p), nil
}

// A cancelled write stops within a few blocks of the cancellation, for
// large (streamed) and small (read ahead) files alike, and says why.
func TestWriteContextCancelled(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files int
		size  int64
	}{
		{"large files", 4, 64 << 20},
		{"small files", 2000, 100 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var read atomic.Int64
			tree := rootfs.New(0)
			total := int64(tc.files) * tc.size
			for i := range tc.files {
				src := countingSource{n: tc.size + int64(i), read: &read, after: 1 << 20, cancel: cancel}
				if err := tree.Add(fmt.Sprintf("/f%05d", i), &rootfs.Node{Type: rootfs.Regular, Perm: 0o644, Content: src}); err != nil {
					t.Fatal(err)
				}
			}
			f, err := os.Create(filepath.Join(t.TempDir(), "out.sqfs"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			_, err = WriteContext(ctx, f, tree, Options{Workers: 2})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("WriteContext after cancel = %v, want context.Canceled", err)
			}
			// Read-ahead may run up to its budget past the cancellation,
			// not through the whole tree.
			if got := read.Load(); got > 1<<20+prefetchBudget+prefetchMax+int64(DefaultBlockSize)*64 || got >= total {
				t.Errorf("read %d of %d bytes after cancelling at 1 MiB", got, total)
			}
		})
	}
}
