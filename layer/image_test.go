package layer

import (
	"io"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/image/imagetest"
	"github.com/rfsbuild/rfs/rootfs"
)

// ReadLowers stacks the layers in the order the layout gives, not the
// table's: layer 1 adds /a and /b, layer 2 (before it in the table, as
// MBR logical 5) deletes /a and changes /b. Read in table order, /a would
// survive. ReadUpper finds the data partition at 3, not last.
func TestReadLowersFollowsLayout(t *testing.T) {
	for _, table := range []string{"gpt", "mbr"} {
		t.Run(table, func(t *testing.T) {
			l1 := imagetest.Tree(t, map[string]string{"/a": "a1", "/b": "b1"})
			l2 := imagetest.Tree(t, map[string]string{"/b": "b2"})
			if err := l2.Add("/a", &rootfs.Node{Type: rootfs.CharDev, Perm: 0o644}); err != nil {
				t.Fatal(err)
			}
			path, _ := imagetest.Write(t, imagetest.Spec{Table: table, Parts: []imagetest.Part{
				{Role: image.RoleBoot},
				{Role: image.RoleRoot, Tree: imagetest.Tree(t, map[string]string{"/base": "r"})},
				{Role: image.RoleData},
				{Role: image.RoleLayer, Layer: 2, Tree: l2, Logical: true},
				{Role: image.RoleLayer, Layer: 1, Tree: l1, Logical: true},
			}})
			img, err := image.OpenImage(path)
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close()
			lowers, merged, err := ReadLowers(img)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, l := range lowers {
				names = append(names, l.Part.RoleName())
			}
			if got := strings.Join(names, ","); got != "root,layer 1,layer 2" {
				t.Errorf("lowers %s", got)
			}
			if merged.Lookup("/a") != nil || merged.Lookup("/base") == nil {
				t.Errorf("merged view: /a %v, /base %v", merged.Lookup("/a"), merged.Lookup("/base"))
			}
			if b := merged.Lookup("/b"); b == nil || string(readAll(t, b)) != "b2" {
				t.Errorf("merged /b is not layer 2's")
			}
			upper, err := ReadUpper(img)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(upper.Root.Children()); n != 0 {
				t.Errorf("a never-booted image's upper has %d entries", n)
			}
		})
	}
}

func readAll(t *testing.T, n *rootfs.Node) []byte {
	t.Helper()
	r, err := n.Content.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
