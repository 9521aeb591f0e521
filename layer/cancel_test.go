package layer

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/rfsbuild/rfs/rootfs"
)

// A cancelled diff returns the context's error instead of a change list.
func TestDiffContextCancelled(t *testing.T) {
	lower, upper := rootfs.New(0), rootfs.New(0)
	for i := range 10 {
		p := fmt.Sprintf("/f%d", i)
		for _, tr := range []*rootfs.Tree{lower, upper} {
			if err := tr.Add(p, &rootfs.Node{Type: rootfs.Regular, Perm: 0o644, Content: rootfs.Bytes(make([]byte, 1<<20))}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if ch, err := DiffContext(context.Background(), lower, upper); err != nil || len(ch) != 0 {
		t.Fatalf("DiffContext of equal trees = %v, %v", ch, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := DiffContext(ctx, lower, upper); !errors.Is(err, context.Canceled) {
		t.Fatalf("DiffContext with a cancelled context = %v, want context.Canceled", err)
	}
	// Content comparison itself stops too.
	a, b := lower.Lookup("/f0"), upper.Lookup("/f0")
	if _, err := sameContent(ctx, a, b); !errors.Is(err, context.Canceled) {
		t.Fatalf("sameContent with a cancelled context = %v, want context.Canceled", err)
	}
}
