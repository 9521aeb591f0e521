package rootfs

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"slices"
)

// Digest is a SHA-256 over everything a tree holds: paths, metadata, content
// and hard-link structure. Equal digests mean equal trees, whatever order they
// were built in.
func (t *Tree) Digest() ([32]byte, error) {
	return t.DigestContext(context.Background())
}

// DigestContext is Digest that stops reading content once ctx is done,
// returning an error that wraps ctx.Err().
func (t *Tree) DigestContext(ctx context.Context) ([32]byte, error) {
	h := sha256.New()
	seen := map[*Node]string{}
	err := t.Walk(func(p string, n *Node) error {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("digest: %w", err)
		}
		io.WriteString(h, p)
		h.Write([]byte{0})
		if first, ok := seen[n]; ok && n.Type != Dir {
			io.WriteString(h, "link\x00"+first+"\x00")
			return nil
		}
		seen[n] = p
		var meta [29]byte
		meta[0] = byte(n.Type)
		binary.LittleEndian.PutUint32(meta[1:], n.Perm)
		binary.LittleEndian.PutUint32(meta[5:], n.UID)
		binary.LittleEndian.PutUint32(meta[9:], n.GID)
		binary.LittleEndian.PutUint64(meta[13:], uint64(n.MTime))
		binary.LittleEndian.PutUint32(meta[21:], n.Major)
		binary.LittleEndian.PutUint32(meta[25:], n.Minor)
		h.Write(meta[:])
		io.WriteString(h, n.Target+"\x00")
		keys := make([]string, 0, len(n.Xattrs))
		for k := range n.Xattrs {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(h, "x%s\x00%d\x00", k, len(n.Xattrs[k]))
			h.Write(n.Xattrs[k])
		}
		if n.Type == Regular && n.Content != nil {
			return hashContent(ctx, h, p, n.Content)
		}
		return nil
	})
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum, err
}

func hashContent(ctx context.Context, h hash.Hash, p string, src Source) error {
	if hf, ok := src.(HostFile); ok && hf.ID != "" {
		fmt.Fprintf(h, "id\x00%s\x00%d\x00", hf.ID, hf.Len)
		return nil
	}
	rc, err := src.Open()
	if err != nil {
		return fmt.Errorf("digest %s: %w", p, err)
	}
	defer rc.Close()
	n, err := io.Copy(h, ctxReader{ctx, rc})
	if err != nil {
		return fmt.Errorf("digest %s: %w", p, err)
	}
	if n != src.Size() {
		return fmt.Errorf("digest %s: content is %d bytes, expected %d (file changed during the build?)", p, n, src.Size())
	}
	var size [8]byte
	binary.LittleEndian.PutUint64(size[:], uint64(n))
	h.Write(size[:])
	return nil
}

// ctxReader ends a read loop with ctx's error once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
