package image

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
)

// PartSpec is one partition of a layout descriptor: what it holds and how
// it is sized.
type PartSpec struct {
	Role   Role
	Layer  int // RoleLayer: 1 = the lowest above the root
	Policy SizePolicy
	// Size is the partition's size for SizeFixed and SizeGrow, and the
	// room added to the content for SizeHeadroom; unused for SizeFit.
	Size int64
	// Slot is the A/B slot (slots.A, slots.B) of a slotted root; "" for
	// every other partition and for images without slots.
	Slot string
}

// Descriptor is a board's partition layout as data: the table type and
// each partition's role and size policy, in disk order. Assign derives
// the ids from a build ID; the builder writes the image from the result
// and records it in rfs.json (Meta.Layout), where readers find partitions
// by role.
type Descriptor struct {
	Table string // "gpt" or "mbr"
	Parts []PartSpec
}

// BootHeadroom is the boot partition's room beyond its content: a bigger
// kernel or initramfs can replace the files in place.
const BootHeadroom = 16 * MiB

// Standard is the layout of every board today: boot (FAT, with headroom),
// root (squashfs, fit), the layers bottom to top (fit), and the data
// partition last (ext4, dataSize in the image, grown to the medium at the
// first boot, which it can only be as the last partition).
func Standard(table string, layers int, dataSize int64) Descriptor {
	d := Descriptor{Table: table}
	d.Parts = append(d.Parts,
		PartSpec{Role: RoleBoot, Policy: SizeHeadroom, Size: BootHeadroom},
		PartSpec{Role: RoleRoot, Policy: SizeFit})
	for i := range layers {
		d.Parts = append(d.Parts, PartSpec{Role: RoleLayer, Layer: i + 1, Policy: SizeFit})
	}
	d.Parts = append(d.Parts, PartSpec{Role: RoleData, Policy: SizeGrow, Size: dataSize})
	return d
}

// Slotted is the layout of an image with A/B slots (QEMU boards): boot
// (FAT, with room for a second slot's files: slotFiles more than the
// usual headroom), root slot a and root slot b (squashfs, slotSize each),
// and the data partition last (ext4, grown at the first boot). The boot
// partition holds each slot's kernel, initramfs and command line in
// slot-a/ and slot-b/.
func Slotted(table string, slotSize, dataSize, slotFiles int64) Descriptor {
	return Descriptor{Table: table, Parts: []PartSpec{
		{Role: RoleBoot, Policy: SizeHeadroom, Size: BootHeadroom + roundUp(slotFiles, MiB)},
		{Role: RoleRoot, Slot: "a", Policy: SizeFixed, Size: slotSize},
		{Role: RoleRoot, Slot: "b", Policy: SizeFixed, Size: slotSize},
		{Role: RoleData, Policy: SizeGrow, Size: dataSize},
	}}
}

// PlanPart is a partition of a Plan: its spec, and where and how it is
// named on the disk.
type PlanPart struct {
	PartSpec
	Number   int    // in the table: GPT 1..n; MBR 1-4 primary, 5 and up logical
	Name     string // the GPT partition name
	PARTUUID string // GPT unique partition GUID, or MBR SSSSSSSS-NN
	Type     string // GPT type GUID
	MBRType  byte
	Bootable bool // MBR active flag
	Logical  bool // MBR: inside the extended partition
	FS       string
}

// Plan is a Descriptor with the ids of one build.
type Plan struct {
	Table    string
	DiskGUID string // GPT
	DiskID   uint32 // MBR disk signature
	Parts    []PlanPart
}

// DeriveGUID returns a GUID that is a function of the build ID and a role,
// formatted as a version-4 (random) UUID so tools treat it as one.
func DeriveGUID(buildID, role string) string {
	s := sha256.Sum256([]byte("rfs-guid\x00" + buildID + "\x00" + role))
	b := s[:16]
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	x := hex.EncodeToString(b)
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

// guidKey is the role string a partition's GUID is derived from.
func (s PartSpec) guidKey() string {
	if s.Role == RoleLayer {
		return fmt.Sprintf("layer-%d", s.Layer)
	}
	if s.Slot != "" {
		return string(s.Role) + "-" + s.Slot
	}
	return string(s.Role)
}

// Assign derives every id from the build ID: on GPT the disk GUID and each
// partition's GUID (DeriveGUID of "disk", "boot", "root", "layer-N",
// "data"; a slotted root's "root-a", "root-b"); on MBR the disk signature (the first 8 hex digits of the
// "disk" GUID) and each partition's number, hence its PARTUUID. MBR has 4
// primary slots: with more than one layer, the layers are logical
// partitions (5, 6, ...) in an extended partition. arch picks the root
// partition's GPT type.
func (d Descriptor) Assign(buildID, arch string) (Plan, error) {
	if d.Table == "" {
		d.Table = "gpt"
	}
	if d.Table != "gpt" && d.Table != "mbr" {
		return Plan{}, fmt.Errorf("unknown partition table %q (gpt or mbr)", d.Table)
	}
	p := Plan{Table: d.Table}
	layers := 0
	for _, s := range d.Parts {
		if s.Role == RoleLayer {
			layers++
		}
	}
	logical := make([]bool, len(d.Parts))
	for i, s := range d.Parts {
		logical[i] = d.Table == "mbr" && s.Role == RoleLayer && layers > 1
	}
	nums, _ := MBRNumbers(logical)
	if d.Table == "mbr" {
		id, _ := hex.DecodeString(DeriveGUID(buildID, "disk")[:8])
		p.DiskID = binary.BigEndian.Uint32(id)
	} else {
		p.DiskGUID = DeriveGUID(buildID, "disk")
	}
	for i, s := range d.Parts {
		pp := PlanPart{PartSpec: s, Number: i + 1, Logical: logical[i], MBRType: MBRTypeLinux}
		if d.Table == "mbr" {
			pp.Number = nums[i]
			pp.PARTUUID = MBRPartUUID(p.DiskID, pp.Number)
		} else {
			pp.PARTUUID = DeriveGUID(buildID, s.guidKey())
		}
		if err := pp.describe(arch); err != nil {
			return Plan{}, err
		}
		p.Parts = append(p.Parts, pp)
	}
	return p, nil
}

// describe fills the name, types and file system of a role.
func (pp *PlanPart) describe(arch string) error {
	switch pp.Role {
	case RoleBoot:
		pp.Name, pp.Type, pp.MBRType, pp.Bootable, pp.FS = BootPartition, TypeESP, MBRTypeFAT32LBA, true, "vfat"
	case RoleRoot:
		t, err := RootType(arch)
		if err != nil {
			return err
		}
		pp.Name, pp.Type, pp.FS = RootPartition, t, "squashfs"
		if pp.Slot != "" {
			pp.Name = SlotPartition(pp.Slot)
		}
	case RoleLayer:
		pp.Name, pp.Type, pp.FS = LayerPartition(pp.Layer), TypeLinuxData, "squashfs"
	case RoleData:
		pp.Name, pp.Type, pp.FS = DataPartition, TypeLinuxData, "ext4"
	default:
		return fmt.Errorf("unknown partition role %q", pp.Role)
	}
	return nil
}

// Find returns the partition with a role (and layer number, for
// RoleLayer), or nil.
func (p Plan) Find(role Role, layer int) *PlanPart {
	for i := range p.Parts {
		if pp := &p.Parts[i]; pp.Role == role && (role != RoleLayer || pp.Layer == layer) {
			return pp
		}
	}
	return nil
}

// FindSlot returns the root partition of slot, or nil.
func (p Plan) FindSlot(slot string) *PlanPart {
	for i := range p.Parts {
		if pp := &p.Parts[i]; pp.Role == RoleRoot && pp.Slot == slot {
			return pp
		}
	}
	return nil
}

// Slotted says whether the plan has A/B slots.
func (p Plan) Slotted() bool { return p.FindSlot("a") != nil }

// Content is what fills one partition of a Plan.
type Content struct {
	// Min is the content's size, for SizeHeadroom: the partition is Min
	// plus the headroom, rounded up to 1 MiB.
	Min int64
	// Late writes the partition after all the others (its size must not
	// depend on what it writes): its content may record their sizes.
	Late  bool
	Write func(ctx context.Context, w io.WriterAt) (int64, error)
}

// SizeOf is the size a partition gets before it is written: 0 for
// SizeFit (the size of what is written), the spec's size for SizeFixed and
// SizeGrow, the content plus the headroom for SizeHeadroom.
func (pp PlanPart) SizeOf(min int64) int64 {
	switch pp.Policy {
	case SizeFixed, SizeGrow:
		return pp.Size
	case SizeHeadroom:
		return roundUp(min+pp.Size, MiB)
	}
	return 0
}

// Layout is the writer's layout of the plan: content gives each
// partition's bytes; size is the image's (0: just fit).
func (p Plan) Layout(size int64, content func(PlanPart) Content) Layout {
	l := Layout{Table: p.Table, DiskGUID: p.DiskGUID, DiskID: p.DiskID, Size: size}
	for _, pp := range p.Parts {
		c := content(pp)
		l.Partitions = append(l.Partitions, Partition{
			Name: pp.Name, Type: pp.Type, GUID: pp.PARTUUID, MBRType: pp.MBRType, Bootable: pp.Bootable,
			Logical: pp.Logical, Size: pp.SizeOf(c.Min), Late: c.Late, Write: c.Write,
		})
	}
	return l
}

// Meta records the plan in rfs.json; sizes are the partitions' sizes as
// built, in plan order.
func (p Plan) Meta(sizes []int64) *LayoutMeta {
	m := &LayoutMeta{Table: p.Table, DiskID: p.DiskGUID}
	if p.Table == "mbr" {
		m.DiskID = fmt.Sprintf("%08x", p.DiskID)
	}
	for i, pp := range p.Parts {
		pm := PartMeta{Role: pp.Role, Layer: pp.Layer, Number: pp.Number, Name: pp.Name, PARTUUID: pp.PARTUUID, FS: pp.FS, Policy: pp.Policy, Slot: pp.Slot}
		if i < len(sizes) {
			pm.Size = sizes[i]
		}
		m.Partitions = append(m.Partitions, pm)
	}
	return m
}

// String is a one-line summary for logs: "gpt: boot 1, root 2, data 3".
func (p Plan) String() string {
	var parts []string
	for _, pp := range p.Parts {
		name := string(pp.Role)
		if pp.Role == RoleLayer {
			name = fmt.Sprintf("layer %d", pp.Layer)
		}
		if pp.Slot != "" {
			name += " " + pp.Slot
		}
		parts = append(parts, fmt.Sprintf("%s %d", name, pp.Number))
	}
	return p.Table + ": " + strings.Join(parts, ", ")
}
