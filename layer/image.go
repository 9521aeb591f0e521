package layer

import (
	"errors"
	"fmt"

	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/quote"
	"github.com/rfsbuild/rfs/rootfs"
	"github.com/rfsbuild/rfs/squashfs"
)

// Lower is one read-only lower of an image: its root or a layer.
type Lower struct {
	Part     image.Part
	Squashfs *squashfs.Reader
}

// ReadLowers reads the lowers of img (image.Image.Lowers: the root, then
// the layers bottom to top) and the merged view the upper sits on, each
// layer flattened onto what is below it (its whiteouts hide what they
// name).
func ReadLowers(img *image.Image) ([]Lower, *rootfs.Tree, error) {
	parts, err := img.Lowers()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", img.Path, err)
	}
	var (
		lowers []Lower
		merged *rootfs.Tree
	)
	for _, p := range parts {
		r, err := squashfs.Open(img.Section(p.Placed))
		if err != nil {
			return nil, nil, lowerErr(img, p, err)
		}
		t, err := r.ToTree()
		if err == nil && merged != nil {
			t, err = Flatten(merged, t)
		}
		if err != nil {
			return nil, nil, lowerErr(img, p, err)
		}
		merged = t
		lowers = append(lowers, Lower{Part: p, Squashfs: r})
	}
	return lowers, merged, nil
}

// lowerErr names the lower p in err ("root partition", or its name).
func lowerErr(img *image.Image, p image.Part, err error) error {
	if p.Role == image.RoleRoot {
		return fmt.Errorf("%s: root partition: %w", img.Path, err)
	}
	return fmt.Errorf("%s: %s: %w", img.Path, quote.Name(p.Name), err)
}

// ReadUpper reads upper/ of img's data partition, rootless (our ext4
// reader, ext4fs, sees whiteouts and the opaque xattr; it replays a
// journal that needs recovery in memory). An image never booted has no
// upper/ yet: an empty tree.
func ReadUpper(img *image.Image) (*rootfs.Tree, error) {
	data, ok := img.Data()
	if !ok {
		return nil, fmt.Errorf("%s: %w: no %q partition", img.Path, image.ErrNotRFS, image.DataPartition)
	}
	// ext4fs replays a journal that needs recovery (a card pulled from a
	// device that lost power) in memory: the view is the kernel's after
	// recovery, and the image is not written.
	sec := img.Section(data.Placed)
	t, err := ReadExt4(sec, 0, data.Size, "upper")
	if errors.Is(err, ErrNoDir) {
		// Never booted: the first boot makes upper/. Nothing changed.
		return rootfs.New(0), nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: data partition: %w", img.Path, err)
	}
	return t, nil
}
