// Package imagetest writes small synthetic rfs images for tests of the
// readers (image, layer, reset, the CLI): partitions in any table order,
// with an rfs.json whose layout says which is which, or none (an image
// from an rfs before the layout). Only tests import it.
package imagetest

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/image/ext4"
	"github.com/rfsbuild/rfs/image/fat"
	"github.com/rfsbuild/rfs/rootfs"
	"github.com/rfsbuild/rfs/squashfs"
)

// DiskID and DiskGUID identify every test disk.
const (
	DiskID   = 0x1234abcd
	DiskGUID = "11111111-2222-4333-8444-555555555555"
)

// Part is one partition of a test image, in table order.
type Part struct {
	Role  image.Role // "" for a partition the layout does not name
	Layer int        // RoleLayer: 1 = the lowest
	// Logical puts it in the extended partition (numbers 5 and up) of
	// an MBR disk; GPT ignores it.
	Logical bool
	// Tree is a root's or layer's content (nil: an empty root directory).
	Tree *rootfs.Tree
	// Name overrides the GPT name rfs would give the role.
	Name string
	// Files are written to a boot partition besides rfs.json; NoMeta
	// leaves rfs.json out.
	Files  map[string][]byte
	NoMeta bool
}

// Spec is a test image.
type Spec struct {
	Table string // "gpt" or "mbr"
	Parts []Part
	// Edit changes rfs.json before it is written; setting Layout to nil
	// makes an image as rfs wrote them before the layout.
	Edit func(*image.Meta)
}

// GUID is the GPT PARTUUID of the n-th partition of a test image.
func GUID(n int) string { return fmt.Sprintf("%08x-0000-4000-8000-%012x", n, n) }

// Write writes the image to a new file in t's temporary directory and
// returns its path and rfs.json as written. Boot partitions hold a FAT32
// with rfs.json (34 MiB: the smallest FAT32), roots and layers a squashfs
// of their tree, data partitions an empty ext4 labelled rfs-data (16 MiB;
// skips the test without mke2fs).
func Write(t testing.TB, s Spec) (string, image.Meta) {
	t.Helper()
	s.Parts = slices.Clone(s.Parts)
	logical := make([]bool, len(s.Parts))
	for i := range s.Parts {
		s.Parts[i].Logical = s.Parts[i].Logical && s.Table == "mbr"
		logical[i] = s.Parts[i].Logical
	}
	nums, _ := image.MBRNumbers(logical)
	l := image.Layout{Table: s.Table, DiskGUID: DiskGUID, DiskID: DiskID}
	meta := image.Meta{Board: "qemu-arm64", Arch: "arm64", BuildID: "test", KernelFile: image.KernelFile, Upper: "data",
		Layout: &image.LayoutMeta{Table: s.Table, DiskID: DiskGUID}}
	if s.Table == "mbr" {
		meta.Layout.DiskID = fmt.Sprintf("%08x", DiskID)
	} else {
		for i := range nums {
			nums[i] = i + 1
		}
	}
	for i, p := range s.Parts {
		id := GUID(i + 1)
		if s.Table == "mbr" {
			id = image.MBRPartUUID(DiskID, nums[i])
		}
		part := partition(t, p, id, &meta)
		if p.Role != "" {
			meta.Layout.Partitions = append(meta.Layout.Partitions, image.PartMeta{Role: p.Role, Layer: p.Layer, Number: nums[i],
				Name: part.Name, PARTUUID: id, FS: fsOf(p.Role), Policy: image.SizeFit})
		}
		l.Partitions = append(l.Partitions, part)
	}
	if s.Edit != nil {
		s.Edit(&meta)
	}
	path := filepath.Join(t.TempDir(), "test.img")
	if _, err := l.WriteFile(context.Background(), path); err != nil {
		t.Fatal(err)
	}
	return path, meta
}

// partition is p's partition; a boot partition's content reads meta when
// it is written (after Edit).
func partition(t testing.TB, p Part, id string, meta *image.Meta) image.Partition {
	part := image.Partition{Name: p.Name, GUID: id, Type: image.TypeLinuxData, MBRType: image.MBRTypeLinux, Logical: p.Logical, Size: image.MiB}
	if part.Name == "" {
		part.Name = nameOf(p)
	}
	switch p.Role {
	case image.RoleBoot:
		part.Type, part.MBRType, part.Size = image.TypeESP, image.MBRTypeFAT32LBA, 34*image.MiB
		part.Write = func(_ context.Context, w io.WriterAt) (int64, error) {
			return 34 * image.MiB, fat.Write(w, 34*image.MiB, bootTree(t, p, meta), fat.Options{Label: "RFS-BOOT"})
		}
	case image.RoleRoot, image.RoleLayer:
		tree := p.Tree
		if tree == nil {
			tree = rootfs.New(0)
		}
		part.Size = 0
		part.Write = func(ctx context.Context, w io.WriterAt) (int64, error) {
			return squashfs.WriteContext(ctx, w, tree, squashfs.Options{})
		}
	case image.RoleData:
		if _, err := exec.LookPath("mke2fs"); err != nil {
			t.Skip("mke2fs not installed")
		}
		part.Size = 16 * image.MiB
		part.Write = func(ctx context.Context, w io.WriterAt) (int64, error) {
			return 16 * image.MiB, ext4.Make(ctx, w, 16*image.MiB, ext4.Options{Label: image.DataPartition, UUID: GUID(100), HashSeed: GUID(101)})
		}
	default:
		part.Write = func(context.Context, io.WriterAt) (int64, error) { return 0, nil }
	}
	return part
}

// bootTree is the boot partition p's content: rfs.json (unless NoMeta)
// and p.Files.
func bootTree(t testing.TB, p Part, meta *image.Meta) *rootfs.Tree {
	tr := rootfs.New(0)
	all := map[string][]byte{}
	if !p.NoMeta {
		all[image.MetaFile] = meta.Marshal()
	}
	for name, b := range p.Files {
		all[name] = b
	}
	for name, b := range all {
		if err := tr.Add("/"+name, &rootfs.Node{Type: rootfs.Regular, Perm: 0o644, Content: rootfs.Bytes(b)}); err != nil {
			t.Fatal(err)
		}
	}
	return tr
}

func nameOf(p Part) string {
	switch p.Role {
	case image.RoleBoot:
		return image.BootPartition
	case image.RoleRoot:
		return image.RootPartition
	case image.RoleLayer:
		return image.LayerPartition(p.Layer)
	case image.RoleData:
		return image.DataPartition
	}
	return "other"
}

func fsOf(r image.Role) string {
	switch r {
	case image.RoleBoot:
		return "vfat"
	case image.RoleData:
		return "ext4"
	}
	return "squashfs"
}

// Tree is a tree of regular files (path: content), for roots and layers.
func Tree(t testing.TB, files map[string]string) *rootfs.Tree {
	t.Helper()
	tr := rootfs.New(0)
	for p, c := range files {
		if err := tr.Add(p, &rootfs.Node{Type: rootfs.Regular, Perm: 0o644, Content: rootfs.Bytes([]byte(c))}); err != nil {
			t.Fatal(err)
		}
	}
	return tr
}
