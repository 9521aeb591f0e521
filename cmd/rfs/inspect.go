package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/rfsbuild/rfs/datapart"
	"github.com/rfsbuild/rfs/ext4fs"
	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/layer"
	"github.com/rfsbuild/rfs/quote"
	"github.com/rfsbuild/rfs/slots"
)

// Inspection is what rfs inspect reports.
type Inspection struct {
	Path       string          `json:"path"`
	Size       int64           `json:"size"`
	Table      string          `json:"table"`
	Partitions []InspectedPart `json:"partitions"`
	// RolesInferred: rfs.json has no layout (an image from an rfs before
	// it, or rfs.json unreadable): roles by GPT name or MBR position.
	RolesInferred bool           `json:"roles_inferred"`
	Meta          *image.Meta    `json:"meta,omitempty"`
	Layers        []InspectedLyr `json:"layers"`
	Upper         string         `json:"upper,omitempty"`
	Data          *DataUsage     `json:"data,omitempty"`
	// Slots are an image's A/B slots (rfs-slots.json, slot.txt); nil
	// without slots.
	Slots *InspectedSlots `json:"slots,omitempty"`
}

// InspectedSlots is what the boot partition says of the A/B slots.
type InspectedSlots struct {
	// Firmware is the slot slot.txt names: the one `rfs run` boots.
	Firmware string      `json:"firmware"`
	State    slots.State `json:"state"`
}

type InspectedPart struct {
	Index int        `json:"index"`
	Role  image.Role `json:"role"`            // "" for a partition without one
	Layer int        `json:"layer,omitempty"` // role layer: 1 = the lowest
	Slot  string     `json:"slot,omitempty"`  // a slotted root's slot
	Name  string     `json:"name"`
	Start int64      `json:"start"`
	Size  int64      `json:"size"`
	Type  string     `json:"type"`
	GUID  string     `json:"partuuid"`
	// FS, SizePolicy and BuiltSize come from rfs.json's layout.
	FS         string           `json:"fs,omitempty"`
	SizePolicy image.SizePolicy `json:"size_policy,omitempty"`
	BuiltSize  int64            `json:"built_size,omitempty"`

	roleName string
}

// InspectedLyr is one lower layer, bottom first.
type InspectedLyr struct {
	Partition  string `json:"partition"`
	Size       int64  `json:"size"`   // bytes used by the squashfs
	Digest     string `json:"digest"` // sha256 of those bytes
	Origin     string `json:"origin"`
	Compressor string `json:"compressor"`
	Inodes     uint32 `json:"inodes"`
}

// DataUsage is read from the data partition's ext4 superblock (its free
// counts are as of the last unmount or commit of the superblock).
type DataUsage struct {
	Size       int64 `json:"size"`
	Used       int64 `json:"used"`
	Free       int64 `json:"free"`
	Inodes     int64 `json:"inodes"`
	FreeInodes int64 `json:"free_inodes"`
	// NeedsRecovery: the journal holds changes not yet written in place
	// (not shut down cleanly); rfs reads the partition with the journal
	// replayed in memory and writes nothing.
	NeedsRecovery bool `json:"needs_recovery"`
	// UpperBuildID is the build ID of the lower the upper was last used
	// with (datapart.UpperRecord; "" before the first boot).
	UpperBuildID string `json:"upper_lower_build_id,omitempty"`
}

func newInspectCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect IMAGE|DEVICE [--json]",
		Short: "Show an image's partitions, board, kernel, layers, upper mode and data usage",
		Long: `Show what an rfs image (or a block device holding one) is made of: the
partition table, the board, kernel and build recorded in rfs.json on the boot
partition, the lower layers (size, sha256 digest of the squashfs bytes,
origin), the default upper mode and the data partition's usage (from its
ext4 superblock: free counts as of the last unmount). Reads only; no root.`,
		Example: `  rfs inspect out/qemu-arm64.img
  rfs inspect /dev/sdX --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, metaErr, err := inspect(args[0])
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				b, _ := json.MarshalIndent(in, "", "  ")
				if _, err := fmt.Fprintf(w, "%s\n", b); err != nil {
					return err
				}
				return metaErr
			}
			printInspection(w, in)
			return metaErr
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// printInspection prints in for a terminal. Names, labels and rfs.json
// fields come from the image: quoted when they hold anything unprintable.
func printInspection(w io.Writer, in *Inspection) {
	q := quote.Name
	fmt.Fprintf(w, "%s: %s, %s\n", in.Path, image.HumanSize(in.Size), in.Table)
	if m := in.Meta; m != nil {
		fmt.Fprintf(w, "board %s (%s), rfs %s, build %s\nkernel %s\n", q(m.Board), q(m.Arch), q(m.RFSVersion), q(m.BuildID), q(m.Kernel))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nPART\tROLE\tNAME\tSTART\tSIZE\tFS\tPOLICY\tPARTUUID")
	for _, p := range in.Partitions {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", p.Index, p.roleName, dash(q(p.Name)), p.Start, image.HumanSize(p.Size), dash(q(p.FS)), dash(q(string(p.SizePolicy))), p.GUID)
	}
	fmt.Fprintln(tw, "\nLAYER\tSIZE\tDIGEST\tORIGIN")
	for _, l := range in.Layers {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", q(l.Partition), image.HumanSize(l.Size), l.Digest, q(l.Origin))
	}
	tw.Flush()
	if in.RolesInferred {
		why := "rfs.json records no layout (an image built by an rfs before it)"
		if in.Meta == nil {
			why = "rfs.json could not be read"
		}
		fmt.Fprintf(w, "\nroles inferred from partition names (GPT) or positions (MBR): %s\n", why)
	}
	if in.Slots != nil {
		printSlots(w, in.Slots)
	}
	fmt.Fprintf(w, "\nupper: %s\n", q(in.Upper))
	if d := in.Data; d != nil {
		fmt.Fprintf(w, "data: %s used of %s (%s free), %d of %d inodes free\n", image.HumanSize(d.Used), image.HumanSize(d.Size), image.HumanSize(d.Free), d.FreeInodes, d.Inodes)
		if d.NeedsRecovery {
			fmt.Fprintln(w, "data: not shut down cleanly; read with its journal replayed in memory (the image is not written)")
		}
		if d.UpperBuildID != "" {
			fmt.Fprintf(w, "upper last used with the lower of build %s\n", q(d.UpperBuildID))
		}
	}
}

// inspect reads what rfs inspect shows. metaErr is a missing or invalid
// rfs.json: the rest is still shown, then the command fails with it.
func inspect(p string) (in *Inspection, metaErr error, err error) {
	img, err := image.OpenImage(p)
	if err != nil {
		return nil, nil, err
	}
	defer img.Close()
	in = &Inspection{Path: p, Size: img.Size(), Table: img.Table, Layers: []InspectedLyr{}, RolesInferred: img.Inferred}
	for _, part := range img.Parts {
		in.Partitions = append(in.Partitions, inspectedPart(img.Table, part))
	}
	if m, err := img.ReadMeta(); err == nil {
		in.Meta, in.Upper = &m, m.Upper
	} else {
		metaErr = fmt.Errorf("%s: %w", p, err)
	}
	if img.Slotted() {
		if in.Slots, err = inspectSlots(img); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", p, err)
		}
	}
	lowers, _, err := layer.ReadLowers(img)
	if err != nil {
		return nil, nil, err
	}
	for _, l := range lowers {
		lyr, err := inspectLower(img, l, in.Meta)
		if err != nil {
			return nil, nil, err
		}
		in.Layers = append(in.Layers, lyr)
	}
	if data, ok := img.Data(); ok {
		if in.Data, err = ext4Usage(img.Section(data.Placed), 0, data.Size); err != nil {
			return nil, nil, fmt.Errorf("%s: data partition: %w", p, err)
		}
	}
	return in, metaErr, nil
}

// inspectSlots reads slot.txt and rfs-slots.json.
func inspectSlots(img *image.Image) (*InspectedSlots, error) {
	fw, err := img.CommittedSlot()
	if err != nil {
		return nil, err
	}
	st, err := img.ReadSlots()
	if err != nil {
		return nil, err
	}
	return &InspectedSlots{Firmware: fw, State: st}, nil
}

// printSlots shows the slots: which is committed and on trial, what each
// holds, and how the last trial ended.
func printSlots(w io.Writer, s *InspectedSlots) {
	q, st := quote.Name, s.State
	trial := "none"
	if st.Trial != "" {
		trial = fmt.Sprintf("%s (%d tries)", q(st.Trial), st.Tries)
	}
	fmt.Fprintf(w, "\nslots: committed %s, trial %s, firmware boots %s (slot.txt)\n", q(st.Committed), trial, q(s.Firmware))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SLOT\tSTATE\tVERSION\tBUILD")
	for _, name := range []string{slots.A, slots.B} {
		info := st.Slots[name]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, dash(q(info.State)), dash(q(info.Version)), dash(q(info.BuildID)))
	}
	tw.Flush()
	if l := st.Last; l != nil {
		fmt.Fprintf(w, "last trial: slot %s, version %s: %s", q(l.Slot), dash(q(l.Version)), q(l.Outcome))
		if l.Reason != "" {
			fmt.Fprintf(w, " (%s)", q(l.Reason))
		}
		if l.Time != "" {
			fmt.Fprintf(w, " at %s", q(l.Time))
		}
		fmt.Fprintln(w)
	}
}

// inspectedPart is what inspect shows of a partition.
func inspectedPart(table string, p image.Part) InspectedPart {
	typ := p.Type
	if table == "mbr" {
		typ = fmt.Sprintf("0x%02x", p.MBRType)
	}
	return InspectedPart{
		Index: p.Index, Role: p.Role, Layer: p.Layer, Slot: p.Slot, Name: p.Name, Start: p.Start, Size: p.Size, Type: typ, GUID: p.GUID,
		FS: p.FS, SizePolicy: p.Policy, BuiltSize: p.Built, roleName: p.RoleName(),
	}
}

// inspectLower describes a lower: the squashfs's size and the sha256 of
// its bytes, and where it came from (rfs.json, if read).
func inspectLower(img *image.Image, l layer.Lower, m *image.Meta) (InspectedLyr, error) {
	info := l.Squashfs.Info()
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(img.Section(l.Part.Placed), 0, int64(info.BytesUsed))); err != nil {
		return InspectedLyr{}, err
	}
	origin := "?"
	switch {
	case l.Part.Role == image.RoleRoot && m != nil:
		origin = "base (build " + m.BuildID + ")"
	case l.Part.Role == image.RoleRoot:
		origin = "base"
	case m != nil && l.Part.Layer <= len(m.Layers):
		lm := m.Layers[l.Part.Layer-1]
		origin = lm.File + " (sha256:" + lm.SHA256 + ")"
	}
	return InspectedLyr{Partition: l.Part.Name, Size: int64(info.BytesUsed), Digest: "sha256:" + hex.EncodeToString(h.Sum(nil)),
		Origin: origin, Compressor: info.Compressor, Inodes: info.Inodes}, nil
}

// ext4Usage reads the counts of the ext4 superblock of the partition at
// [start, start+size), checked by ext4fs (a corrupt one is an error, not
// nonsense counts), and the upper record. A journal that needs recovery
// is replayed in memory first (a corrupt one is an error).
func ext4Usage(r io.ReaderAt, start, size int64) (*DataUsage, error) {
	fsys, err := ext4fs.Open(io.NewSectionReader(r, start, size), size)
	if err != nil {
		return nil, fmt.Errorf("ext4: %w", err)
	}
	sb := fsys.Superblock()
	bs := int64(sb.BlockSize)
	free := min(sb.FreeBlocks, sb.BlocksCount) // both bounded by the partition
	return &DataUsage{
		Size: int64(sb.BlocksCount) * bs, Free: int64(free) * bs, Used: int64(sb.BlocksCount-free) * bs,
		Inodes: int64(sb.InodesCount), FreeInodes: int64(min(sb.FreeInodes, sb.InodesCount)),
		NeedsRecovery: sb.NeedsRecovery, UpperBuildID: upperBuildID(fsys),
	}, nil
}

// upperBuildID reads the upper record: "" if there is none or it cannot
// be read.
func upperBuildID(fsys *ext4fs.FS) string {
	in, err := fsys.Lookup("/" + datapart.UpperRecordFile)
	if err != nil {
		return ""
	}
	f, err := fsys.Open(in)
	if err != nil {
		return ""
	}
	rec, err := datapart.ParseUpperRecord(f.NewReader())
	if err != nil {
		return ""
	}
	return rec.LowerBuildID
}
