package image

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Names of the partitions and boot files rfs writes. The boot partition is
// the source of truth for how to boot an image: `rfs run` takes kernel,
// initramfs and command line from it, which also proves its content.
const (
	BootPartition = "rfs-boot"
	RootPartition = "rfs-root"
	DataPartition = "rfs-data"

	KernelFile  = "vmlinuz"
	InitrdFile  = "initramfs.img"
	CmdlineFile = "cmdline.txt"
	MetaFile    = "rfs.json"
)

// LayerPartition is the name of the partition holding lower layer n
// (1 = the lowest above the root), between the root and the data
// partition.
func LayerPartition(n int) string { return fmt.Sprintf("rfs-layer-%d", n) }

// SlotPartition is the name of the root partition of A/B slot s:
// rfs-root-a, rfs-root-b.
func SlotPartition(s string) string { return RootPartition + "-" + s }

// LayerMeta is one lower layer stacked above the root (rfs build --layer).
type LayerMeta struct {
	File     string `json:"file"`   // the file it was built from, as given
	SHA256   string `json:"sha256"` // of the file's bytes
	Size     int64  `json:"size"`   // bytes
	PARTUUID string `json:"partuuid"`
}

// Meta describes an image; it is stored as rfs.json on the boot partition.
type Meta struct {
	Board      string `json:"board"`
	Arch       string `json:"arch"`
	RFSVersion string `json:"rfs_version"`
	BuildID    string `json:"build_id"`
	Kernel     string `json:"kernel"`      // where the kernel came from (module@version or a path)
	KernelFile string `json:"kernel_file"` // the kernel's name on the boot partition
	Upper      string `json:"upper"`       // default upper mode (rfs.upper)
	RootGUID   string `json:"root_partuuid"`
	DataGUID   string `json:"data_partuuid"`
	BootGUID   string `json:"boot_partuuid"`
	Userland   string `json:"userland"`
	// Layers are the lower layers above the root, bottom to top.
	Layers []LayerMeta `json:"layers,omitempty"`
	// Layout is the partition layout the image was written from: which
	// partition is which. Readers find partitions through it; images
	// from rfs versions before it have none (readers then go by GPT name
	// or MBR position).
	Layout *LayoutMeta `json:"layout,omitempty"`
	// Slots: the image has A/B slots (its layout's roots name them): the
	// boot files are in slot-a/ and slot-b/, and slot.txt and
	// rfs-slots.json say which slot boots (package slots).
	Slots bool `json:"slots,omitempty"`
}

// Role says what a partition holds. Readers find partitions by role (and
// layer number), never by their position in the table or a label.
type Role string

// The roles of an rfs image's partitions.
const (
	RoleBoot  Role = "boot"  // FAT: kernel, initramfs, cmdline.txt, rfs.json (the ESP on UEFI boards)
	RoleRoot  Role = "root"  // squashfs: the base lower
	RoleLayer Role = "layer" // squashfs: a lower layer stacked above the root
	RoleData  Role = "data"  // ext4: the upper, work dir, volumes
)

// SizePolicy says how a partition's size was chosen.
type SizePolicy string

// Size policies.
const (
	SizeFit      SizePolicy = "fit"      // exactly the content, rounded to 1 MiB
	SizeHeadroom SizePolicy = "headroom" // the content plus room to replace it in place
	SizeFixed    SizePolicy = "fixed"    // a size given by the board or the user
	SizeGrow     SizePolicy = "grow"     // fixed in the image, grown to the medium at first boot
)

// LayoutMeta records an image's partition layout in rfs.json.
type LayoutMeta struct {
	Table      string     `json:"table"`   // "gpt" or "mbr"
	DiskID     string     `json:"disk_id"` // GPT disk GUID, or the MBR disk signature as 8 hex digits
	Partitions []PartMeta `json:"partitions"`
}

// PartMeta is one partition of a LayoutMeta.
type PartMeta struct {
	Role     Role       `json:"role"`
	Layer    int        `json:"layer,omitempty"` // RoleLayer: 1 = the lowest above the root
	Number   int        `json:"number"`          // in the table (MBR: 1-4 primary, 5 and up logical)
	Name     string     `json:"name"`            // the GPT partition name: rfs-boot, rfs-root, rfs-layer-N, rfs-data
	PARTUUID string     `json:"partuuid"`        // as the kernel and the init name it
	FS       string     `json:"fs"`              // vfat, squashfs or ext4
	Size     int64      `json:"size"`            // bytes, as built
	Policy   SizePolicy `json:"size_policy"`
	// Slot is a slotted root's A/B slot ("a" or "b"), named rfs-root-a
	// and rfs-root-b.
	Slot string `json:"slot,omitempty"`
}

// Marshal encodes m as indented JSON.
func (m Meta) Marshal() []byte {
	b, _ := json.MarshalIndent(m, "", "  ")
	return append(b, '\n')
}

// Boot is what the boot partition holds for a direct kernel boot.
type Boot struct {
	Meta    Meta
	Kernel  []byte
	Initrd  []byte
	Cmdline string
}

// MaxSmallFile caps what is read of rfs.json and cmdline.txt: both are a
// few hundred bytes, and a hostile image must not make us read more.
const MaxSmallFile = 1 << 20

// metaHint says what to do about a missing or broken rfs.json.
const metaHint = "the image was not built by rfs, or its boot partition is damaged: rebuild it with rfs build (or restore rfs.json on the boot partition)"

// ParseMeta parses the bytes of rfs.json. A document that is not a JSON
// object, or names no board, is an error.
func ParseMeta(b []byte) (Meta, error) {
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return Meta{}, fmt.Errorf("invalid JSON: %w", err)
	}
	if m.Board == "" {
		return Meta{}, errors.New("no board")
	}
	return m, nil
}

// ReadMeta reads and parses rfs.json from the boot partition; its errors
// name the partition and the file and say what to do.
func (d *Disk) ReadMeta() (Meta, error) {
	img, err := d.Image()
	if err != nil {
		return Meta{}, err
	}
	return img.ReadMeta()
}

// ReadMeta returns rfs.json, or why it could not be read.
func (img *Image) ReadMeta() (Meta, error) {
	if img.Meta == nil {
		return Meta{}, img.MetaErr
	}
	return *img.Meta, nil
}

// ReadBoot reads the boot files of an rfs image.
func (d *Disk) ReadBoot() (*Boot, error) {
	img, err := d.Image()
	if err != nil {
		return nil, err
	}
	return img.ReadBoot()
}

// ReadBoot reads the boot files from the boot partition: kernel (the
// file rfs.json names), initramfs and command line; on an image with A/B
// slots, the committed slot's (slot-X/, X from slot.txt).
func (img *Image) ReadBoot() (*Boot, error) {
	if img.Slotted() {
		s, err := img.CommittedSlot()
		if err != nil {
			return nil, err
		}
		return img.ReadBootSlot(s)
	}
	return img.readBoot("")
}
