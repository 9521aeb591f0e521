package layer

import (
	"errors"
	"fmt"

	"github.com/rfsbuild/rfs/ext4fs"
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
// reader, ext4fs, sees whiteouts and the opaque xattr). An image never
// booted has no upper/ yet: an empty tree.
func ReadUpper(img *image.Image) (*rootfs.Tree, error) {
	data, ok := img.Data()
	if !ok {
		return nil, fmt.Errorf("%s: %w: no %q partition", img.Path, image.ErrNotRFS, image.DataPartition)
	}
	sec := img.Section(data.Placed)
	b := make([]byte, ext4fs.SuperblockSize)
	if _, err := sec.ReadAt(b, ext4fs.SuperblockOffset); err != nil {
		return nil, fmt.Errorf("%s: data partition: read the ext4 superblock: %w", img.Path, err)
	}
	sb, err := ext4fs.ParseSuperblock(b, data.Size)
	if err != nil {
		return nil, fmt.Errorf("%s: data partition: ext4: %w", img.Path, err)
	}
	if sb.NeedsRecovery {
		// ext4fs reads the filesystem as it is on disk and does not
		// replay the journal: what the journal holds would be missed.
		return nil, fmt.Errorf("%s: the data partition's journal needs recovery (the device was not shut down cleanly); replay it first, e.g. e2fsck -p on the partition (losetup --offset %d --sizelimit %d), or boot and power off cleanly", img.Path, data.Start, data.Size)
	}
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
