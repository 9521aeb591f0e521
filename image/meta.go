package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
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
	p, err := d.Partition(BootPartition)
	if err != nil {
		return Meta{}, err
	}
	b, err := d.ReadFileMax(p, MetaFile, MaxSmallFile)
	if err != nil {
		return Meta{}, fmt.Errorf("%w: %v (%s)", ErrNotRFS, err, metaHint)
	}
	m, err := ParseMeta(b)
	if err != nil {
		return Meta{}, fmt.Errorf("%s partition: %s: %v (%s)", p.Name, MetaFile, err, metaHint)
	}
	return m, nil
}

// ReadBoot reads the boot files of an rfs image.
func (d *Disk) ReadBoot() (*Boot, error) {
	p, err := d.Partition(BootPartition)
	if err != nil {
		return nil, err
	}
	var b Boot
	if b.Meta, err = d.ReadMeta(); err != nil {
		return nil, err
	}
	kernelFile := b.Meta.KernelFile
	if kernelFile == "" {
		kernelFile = KernelFile
	}
	if b.Kernel, err = d.ReadFile(p, kernelFile); err != nil {
		return nil, err
	}
	if b.Initrd, err = d.ReadFile(p, InitrdFile); err != nil {
		return nil, err
	}
	cmdline, err := d.ReadFileMax(p, CmdlineFile, MaxSmallFile)
	if err != nil {
		return nil, err
	}
	b.Cmdline = strings.TrimSpace(string(cmdline))
	return &b, nil
}
