package builder

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/image/ext4"
	"github.com/rfsbuild/rfs/image/fat"
	"github.com/rfsbuild/rfs/slots"
	"github.com/rfsbuild/rfs/squashfs"
)

// A Packager turns artifacts into an output.
type Packager interface {
	Package(ctx context.Context, a *Artifacts) error
}

// DiskImage is the disk image packager: the artifacts' layout written as
// one image file (atomically: see image.Layout.WriteFile).
type DiskImage struct {
	Path string
	Size int64 // 0: just fit

	// Set by Package.
	Written  int64 // the image's size
	Parts    []image.Placed
	RootSize int64 // the root squashfs's bytes (its partition is rounded up)
	Booted   *Booted
	// rootPart is a slotted image's root: its digest and size.
	rootPart slots.Part
}

var (
	_ Packager = (*DiskImage)(nil)
	_ Packager = (*Dir)(nil)
)

// rootOptions are the root squashfs's writer options: the same for every
// packager, so the root is the same bytes in each output.
func rootOptions(a *Artifacts) squashfs.Options { return squashfs.Options{MTime: a.Epoch} }

// Package writes the image.
func (d *DiskImage) Package(ctx context.Context, a *Artifacts) error {
	plan, err := a.Plan()
	if err != nil {
		return err
	}
	bootMin, err := a.BootMin(plan)
	if err != nil {
		return err
	}
	layout := plan.Layout(d.Size, func(pp image.PlanPart) image.Content {
		switch pp.Role {
		case image.RoleBoot:
			// Written last: its rfs.json records the other partitions' sizes.
			size := pp.SizeOf(bootMin)
			return image.Content{Min: bootMin, Late: true, Write: func(ctx context.Context, w io.WriterAt) (int64, error) {
				return size, d.writeBoot(ctx, w, a, plan, size)
			}}
		case image.RoleRoot:
			if pp.Slot != "" {
				return d.slotContent(pp, a)
			}
			return image.Content{Write: func(ctx context.Context, w io.WriterAt) (int64, error) {
				n, err := squashfs.WriteContext(ctx, w, a.Root, rootOptions(a))
				d.RootSize = n
				return n, err
			}}
		case image.RoleLayer:
			return image.Content{Write: func(ctx context.Context, w io.WriterAt) (int64, error) {
				return copyFile(ctx, w, a.Layers[pp.Layer-1].Path)
			}}
		}
		return image.Content{Write: func(ctx context.Context, w io.WriterAt) (int64, error) {
			return pp.Size, a.makeData(ctx, w, pp.Size)
		}}
	})
	if d.Parts, err = layout.WriteFile(ctx, d.Path); err != nil {
		return err
	}
	st, err := os.Stat(d.Path)
	if err != nil {
		return err
	}
	d.Written = st.Size()
	return nil
}

// writeBoot writes the boot partition, the others being written.
func (d *DiskImage) writeBoot(ctx context.Context, w io.WriterAt, a *Artifacts, plan image.Plan, size int64) error {
	var err error
	if d.Booted, err = a.bootFor(plan, a.PartSizes(plan, size, d.RootSize), d.rootPart); err != nil {
		return err
	}
	boot, err := bootTree(a.Epoch, d.Booted.Files)
	if err != nil {
		return err
	}
	if min := plan.Find(image.RoleBoot, 0).SizeOf(fat.MinSize(boot)); min > size {
		return fmt.Errorf("boot files need %s, measured %s", image.HumanSize(min), image.HumanSize(size))
	}
	return fat.WriteContext(ctx, w, size, boot, a.fatOptions())
}

// slotContent fills a root slot: slot a with the root squashfs (its
// digest kept for the boot partition), slot b left empty (zeros).
func (d *DiskImage) slotContent(pp image.PlanPart, a *Artifacts) image.Content {
	if pp.Slot != slots.A {
		return image.Content{Write: func(context.Context, io.WriterAt) (int64, error) { return 0, nil }}
	}
	return image.Content{Write: func(ctx context.Context, w io.WriterAt) (int64, error) {
		part, err := writeSlotRoot(ctx, w, a, pp.Size)
		if err != nil {
			return 0, fmt.Errorf("slot %s: %w", pp.Slot, err)
		}
		d.rootPart, d.RootSize = part, part.Size
		return part.Size, nil
	}}
}

// fatOptions are the boot partition's FAT options: the volume id comes
// from the build ID.
func (a *Artifacts) fatOptions() fat.Options {
	volID, _ := hex.DecodeString(DeriveGUID(a.BuildID, "fat")[:8])
	return fat.Options{Label: "RFS-BOOT", VolumeID: binary.BigEndian.Uint32(volID), MTime: a.Epoch}
}

// makeData formats the data partition's empty ext4, ids from the build ID.
func (a *Artifacts) makeData(ctx context.Context, w io.WriterAt, size int64) error {
	return ext4.Make(ctx, w, size, ext4.Options{
		Label: image.DataPartition, UUID: DeriveGUID(a.BuildID, "data-fs"), HashSeed: DeriveGUID(a.BuildID, "data-hash"), Epoch: a.Epoch,
	})
}

// summary is the log's account of the image: "90.0 MiB: boot 17.0 MiB,
// root squashfs 2.1 MiB, layer 1 4.0 KiB, data 64.0 MiB".
func (d *DiskImage) summary() string {
	boot, data := d.part(image.BootPartition).Size, d.part(image.DataPartition).Size
	var lsizes string
	for i, l := range d.Booted.Meta.Layers {
		lsizes += fmt.Sprintf(", layer %d %s", i+1, image.HumanSize(l.Size))
	}
	return fmt.Sprintf("%s: boot %s, root squashfs %s%s, data %s", image.HumanSize(d.Written), image.HumanSize(boot), image.HumanSize(d.RootSize), lsizes, image.HumanSize(data))
}

// part is the written partition named name.
func (d *DiskImage) part(name string) image.Placed {
	for _, p := range d.Parts {
		if p.Name == name {
			return p
		}
	}
	return image.Placed{}
}
