// Package imagecp is `rfs cp`: copying files out of an image's merged view
// (the upper over the lowers, what the device shows at /) to the host,
// rootless, and copying host files into the image's upper layer, so the
// device sees them at its next boot, like docker cp with a stopped
// container. Reading uses package layer (the squashfs lowers and our ext4
// reader); writing the data partition's ext4 uses e2fsprogs' debugfs -w
// on the image or card at the partition's offset, so it needs no root
// and no mount (see debugfs.go).
package imagecp

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/rfsbuild/rfs/bootparam"
	"github.com/rfsbuild/rfs/datapart"
	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/layer"
	"github.com/rfsbuild/rfs/quote"
	"github.com/rfsbuild/rfs/rootfs"
)

// View is an image's device view: the lowers merged, the upper, and the
// merged view of the two.
type View struct {
	Lower, Upper, Merged *rootfs.Tree
	Volumes              []datapart.Volume // the lower's /etc/rfs/volumes
}

// ReadView reads img's lowers and upper (rootless) and merges them.
func ReadView(img *image.Image) (*View, error) {
	_, lower, err := layer.ReadLowers(img)
	if err != nil {
		return nil, err
	}
	upper, err := layer.ReadUpper(img)
	if err != nil {
		return nil, err
	}
	merged, err := layer.Flatten(lower, upper)
	if err != nil {
		return nil, fmt.Errorf("%s: merge the upper with the lower: %w", img.Path, err)
	}
	v := &View{Lower: lower, Upper: upper, Merged: merged}
	if n := lower.Lookup(datapart.VolumesFile); n != nil && n.Type == rootfs.Regular && n.Content != nil {
		if r, err := n.Content.Open(); err == nil {
			v.Volumes, _ = datapart.ParseVolumes(r)
			r.Close()
		}
	}
	return v, nil
}

// maxSymlinks bounds symlink resolution, like the kernel's ELOOP limit.
const maxSymlinks = 40

// Resolve finds p in t as the device would: symlinks in the parent path
// are followed inside the tree (an absolute target or ".." never leaves
// the root), the last component's only with followLast. It returns the
// resolved path ("/a/b") and its node, nil when only the last component
// is missing; a missing or non-directory parent is an error.
func Resolve(t *rootfs.Tree, p string, followLast bool) (string, *rootfs.Node, error) {
	comps := strings.Split(p, "/")
	var cur []string // resolved components of the directory reached
	dir, hops := t.Root, 0
	for i := 0; i < len(comps); i++ {
		c := comps[i]
		last := i == len(comps)-1
		switch c {
		case "", ".":
			continue
		case "..":
			if len(cur) > 0 {
				cur = cur[:len(cur)-1]
				dir = lookupDirs(t, cur)
			}
			continue
		}
		next := dir.Child(c)
		if next == nil {
			if last {
				return "/" + path.Join(append(cur, c)...), nil, nil
			}
			return "", nil, notExistError{"/" + path.Join(append(cur, c)...)}
		}
		if next.Type == rootfs.Symlink && (!last || followLast) {
			if hops++; hops > maxSymlinks {
				return "", nil, fmt.Errorf("%s: too many levels of symbolic links", p)
			}
			if strings.HasPrefix(next.Target, "/") {
				cur, dir = nil, t.Root
			}
			comps, i = append(strings.Split(next.Target, "/"), comps[i+1:]...), -1
			continue
		}
		if last {
			return "/" + path.Join(append(cur, c)...), next, nil
		}
		if next.Type != rootfs.Dir {
			return "", nil, fmt.Errorf("%s: not a directory", "/"+path.Join(append(cur, c)...))
		}
		cur, dir = append(cur, c), next
	}
	return "/" + path.Join(cur...), dir, nil
}

// notExistError is a path missing from the device's view; it is
// fs.ErrNotExist.
type notExistError struct{ path string }

func (e notExistError) Error() string {
	return quote.Name(e.path) + ": no such file or directory in the device's view"
}

func (e notExistError) Is(target error) bool { return target == fs.ErrNotExist }

// lookupDirs walks the resolved directory path comps from t's root.
func lookupDirs(t *rootfs.Tree, comps []string) *rootfs.Node {
	n := t.Root
	for _, c := range comps {
		n = n.Child(c)
	}
	return n
}

// ErrVolume means a path is in (or holds) a volume: on the device it
// shows the data partition's volumes/NAME, not the merged view.
var ErrVolume = errors.New("is in a volume")

// checkPath refuses p (a path in the device) when the device shows
// something else there than the image's view: a filesystem mounted over
// it at boot, or a volume.
func (v *View) checkPath(p string) error {
	for _, r := range bootparam.ReservedMountPaths {
		if p == r || strings.HasPrefix(p, r+"/") {
			return fmt.Errorf("%s is under %s, which the device mounts over at boot: the image's files there are hidden on the device", quote.Name(p), r)
		}
	}
	return v.checkVolumes(p)
}

// checkVolumes refuses p when it is a volume's path, lies below one, or
// holds one.
func (v *View) checkVolumes(p string) error {
	for _, vol := range v.Volumes {
		if p == vol.Path || strings.HasPrefix(p, vol.Path+"/") || strings.HasPrefix(vol.Path, p+"/") || p == "/" {
			return fmt.Errorf("%s %w %s (%s): the device mounts the data partition's volumes/%s there, which rfs cp does not reach yet; copy with the device running (rfs run --mount) instead",
				p, ErrVolume, vol.Name, vol.Path, vol.Name)
		}
	}
	return nil
}
