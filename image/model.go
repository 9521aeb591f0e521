package image

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/rfsbuild/rfs/quote"
)

// Image is an rfs image (or a card holding one) opened for reading, with
// every partition's role: the one answer to "which partition is which"
// for every reader (run, diff, commit, inspect, reset).
//
// The boot partition is found first: the FAT partition holding rfs.json
// (GPT: the ESP or the partition named rfs-boot; MBR: a FAT partition).
// rfs.json's layout then names every other partition, matched against
// the table by number and PARTUUID; any disagreement is an error, never a
// guess. Images from rfs versions before the layout (or whose rfs.json
// cannot be read) get their roles from GPT names or MBR positions, as
// they always did; Inferred says so.
type Image struct {
	*Disk
	// Parts are the table's partitions in table order, each with its role
	// ("" for a partition the image does not use).
	Parts []Part
	// Meta is rfs.json; nil when it could not be read (MetaErr says why:
	// the roles are then inferred).
	Meta    *Meta
	MetaErr error
	// Inferred: the roles come from GPT names or MBR positions, not from
	// a layout in rfs.json.
	Inferred bool
}

// Part is a partition with what it holds.
type Part struct {
	Placed
	Role  Role
	Layer int // RoleLayer: 1 = the lowest above the root
	// Slot is a slotted root's A/B slot; "" otherwise.
	Slot string
	// FS, Policy and Built come from the layout (empty when inferred).
	FS     string
	Policy SizePolicy
	Built  int64 // bytes, as built (a grown data partition is larger now)
}

// RoleName is the role as people read it: "layer 2" for a layer, "-" for
// a partition without a role.
func (p Part) RoleName() string {
	switch {
	case p.Role == RoleLayer:
		return "layer " + strconv.Itoa(p.Layer)
	case p.Slot != "":
		return string(p.Role) + " " + p.Slot
	case p.Role == "":
		return "-"
	}
	return string(p.Role)
}

// maxBootCandidates bounds the FAT partitions probed for rfs.json: a
// table of 128 ESPs must not mean 128 FAT reads.
const maxBootCandidates = 16

// OpenImage opens the image or device at path and finds its partitions'
// roles (see Image).
func OpenImage(path string) (*Image, error) {
	d, err := Open(path)
	if err != nil {
		return nil, err
	}
	img, err := d.Image()
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return img, nil
}

// Image finds the roles of d's partitions (see Image). The error is a
// structural one (two boot partitions holding rfs.json, a layout that
// disagrees with the table); a missing or invalid rfs.json is MetaErr.
func (d *Disk) Image() (*Image, error) {
	img := &Image{Disk: d}
	for _, p := range d.Partitions {
		img.Parts = append(img.Parts, Part{Placed: p})
	}
	boot, err := img.findBoot()
	if err != nil {
		return nil, err
	}
	if img.Meta != nil && img.Meta.Layout != nil {
		if err := img.fromLayout(img.Meta.Layout, boot); err != nil {
			return nil, fmt.Errorf("%s partition: %s: layout: %w (rfs.json and the partition table disagree: one was changed after rfs build; rebuild the image)", BootPartition, MetaFile, err)
		}
		return img, nil
	}
	img.infer(boot)
	return img, nil
}

// findBoot finds the boot partition (an index into Parts, -1 for none)
// and reads rfs.json from it into Meta or MetaErr.
func (img *Image) findBoot() (int, error) {
	cands := img.bootCandidates()
	if len(cands) > maxBootCandidates {
		return -1, fmt.Errorf("%w: %d FAT partitions, more than the %d an rfs image could have", ErrNotRFS, len(cands), maxBootCandidates)
	}
	boot, firstErr := -1, error(nil)
	var metaBytes []byte
	for _, i := range cands {
		b, err := img.ReadFileMax(img.Parts[i].Placed, MetaFile, MaxSmallFile)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if boot >= 0 {
			a, c := img.Parts[boot], img.Parts[i]
			return -1, fmt.Errorf("%w: two partitions hold %s, %s and %s: cannot tell which is the boot partition", ErrNotRFS, MetaFile, partLabel(a.Placed), partLabel(c.Placed))
		}
		boot, metaBytes = i, b
	}
	switch {
	case boot >= 0:
		m, err := ParseMeta(metaBytes)
		if err != nil {
			img.MetaErr = fmt.Errorf("%s partition: %s: %v (%s)", quote.Name(img.Parts[boot].Name), MetaFile, err, metaHint)
			return boot, nil
		}
		img.Meta = &m
		return boot, nil
	case len(cands) == 0:
		img.MetaErr = fmt.Errorf("%w: no boot partition (a FAT partition holding %s) (%s)", ErrNotRFS, MetaFile, metaHint)
		return -1, nil
	}
	// No candidate holds rfs.json: the likeliest is still the boot
	// partition (an image with a damaged FAT), and its error says why.
	img.MetaErr = fmt.Errorf("%w: %v (%s)", ErrNotRFS, firstErr, metaHint)
	return cands[0], nil
}

// bootCandidates returns the partitions that may be the boot partition,
// the likeliest first: the one named rfs-boot (on MBR: by position), then
// every other ESP (GPT) or FAT partition (MBR).
func (img *Image) bootCandidates() []int {
	var named, other []int
	for i, p := range img.Parts {
		switch {
		case p.Name == BootPartition:
			named = append(named, i)
		case img.Table == "gpt" && strings.EqualFold(p.Type, TypeESP),
			img.Table == "mbr" && isFATType(p.MBRType):
			other = append(other, i)
		}
	}
	return append(named, other...)
}

// isFATType: the MBR types of a FAT32 partition (rfs writes 0x0c).
func isFATType(t byte) bool { return t == 0x0b || t == 0x0c || t == 0x0e }

// infer gives the roles of an image without a layout: the boot partition
// found, then GPT names or MBR positions (Disk names MBR partitions by
// position: boot, root, layers, data last). Layers count from 1 up to the
// first one missing, as rfs diff always read them.
func (img *Image) infer(boot int) {
	img.Inferred = true
	if boot >= 0 {
		img.Parts[boot].Role = RoleBoot
	}
	layers := map[int]int{}
	haveRoot, haveData := false, false
	for i := range img.Parts {
		p := &img.Parts[i]
		if i == boot {
			continue
		}
		switch n, isLayer := layerNumber(p.Name); {
		case p.Name == RootPartition && !haveRoot:
			p.Role, haveRoot = RoleRoot, true
		case p.Name == DataPartition && !haveData:
			p.Role, haveData = RoleData, true
		case isLayer:
			if _, dup := layers[n]; !dup {
				layers[n] = i
			}
		}
	}
	for n := 1; ; n++ {
		i, ok := layers[n]
		if !ok {
			break
		}
		img.Parts[i].Role, img.Parts[i].Layer = RoleLayer, n
	}
}

// layerNumber parses "rfs-layer-N".
func layerNumber(name string) (int, bool) {
	s, ok := strings.CutPrefix(name, "rfs-layer-")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || LayerPartition(n) != name {
		return 0, false
	}
	return n, true
}

// fromLayout gives the roles rfs.json's layout names. Every partition it
// names must be in the table under the same number and PARTUUID, and the
// boot partition it names must be the one rfs.json was read from.
// Partitions the layout does not name have no role.
func (img *Image) fromLayout(l *LayoutMeta, boot int) error {
	if err := l.Check(); err != nil {
		return err
	}
	if l.Table != img.Table {
		return fmt.Errorf("a %s table, but the image has a %s table", quote.Name(l.Table), img.Table)
	}
	if l.DiskID != "" && !strings.EqualFold(l.DiskID, img.tableID) {
		return fmt.Errorf("disk id %s, but the %s table's is %s", quote.Name(l.DiskID), img.Table, img.tableID)
	}
	if len(l.Partitions) > len(img.Parts) {
		return fmt.Errorf("%d partitions, but the %s table has %d", len(l.Partitions), img.Table, len(img.Parts))
	}
	byNumber := map[int]int{}
	for i, p := range img.Parts {
		byNumber[p.Index] = i
	}
	for _, pm := range l.Partitions {
		i, ok := byNumber[pm.Number]
		if !ok {
			return fmt.Errorf("the %s partition is number %d (PARTUUID %s), but the %s table has no partition %d", pm.roleName(), pm.Number, quote.Name(pm.PARTUUID), img.Table, pm.Number)
		}
		p := &img.Parts[i]
		if !strings.EqualFold(pm.PARTUUID, p.GUID) {
			return fmt.Errorf("the %s partition is number %d with PARTUUID %s, but the %s table's partition %d has PARTUUID %s", pm.roleName(), pm.Number, quote.Name(pm.PARTUUID), img.Table, pm.Number, p.GUID)
		}
		if pm.Role == RoleBoot && i != boot {
			return fmt.Errorf("the boot partition is number %d, but %s was read from partition %d", pm.Number, MetaFile, img.Parts[boot].Index)
		}
		p.Role, p.Layer, p.Slot, p.FS, p.Policy, p.Built = pm.Role, pm.Layer, pm.Slot, pm.FS, pm.Policy, pm.Size
	}
	if img.Table == "mbr" {
		// MBR partitions have no names: Disk named them by position,
		// which the layout overrides.
		for i := range img.Parts {
			img.Parts[i].Name = img.Parts[i].canonicalName()
		}
	}
	return nil
}

// canonicalName is the name rfs gives a partition of p's role ("" for
// none).
func (p Part) canonicalName() string {
	switch p.Role {
	case RoleBoot:
		return BootPartition
	case RoleRoot:
		if p.Slot != "" {
			return SlotPartition(p.Slot)
		}
		return RootPartition
	case RoleLayer:
		return LayerPartition(p.Layer)
	case RoleData:
		return DataPartition
	}
	return ""
}

// maxLayoutPartitions bounds a layout: a GPT holds 128 partitions.
const maxLayoutPartitions = 128

// Check verifies that l describes an rfs image on its own: known roles,
// one boot and one root partition, at most one data partition, layers
// numbered 1 to N once each, partition numbers and PARTUUIDs each once.
// Readers call it before matching l against the table.
func (l *LayoutMeta) Check() error {
	if l.Table != "gpt" && l.Table != "mbr" {
		return fmt.Errorf("table %s: want gpt or mbr", quote.Name(l.Table))
	}
	if len(l.Partitions) > maxLayoutPartitions {
		return fmt.Errorf("%d partitions, more than %d", len(l.Partitions), maxLayoutPartitions)
	}
	count := map[Role]int{}
	numbers, ids, layers, slotted := map[int]bool{}, map[string]bool{}, map[int]bool{}, map[string]bool{}
	for _, p := range l.Partitions {
		if err := p.check(len(l.Partitions)); err != nil {
			return err
		}
		id := strings.ToLower(p.PARTUUID)
		if numbers[p.Number] || ids[id] || p.Role == RoleLayer && layers[p.Layer] {
			return fmt.Errorf("the %s partition (number %d, PARTUUID %s) repeats a number, PARTUUID or layer", p.roleName(), p.Number, quote.Name(p.PARTUUID))
		}
		numbers[p.Number], ids[id] = true, true
		if p.Role == RoleLayer {
			layers[p.Layer] = true
		}
		if p.Slot != "" {
			if slotted[p.Slot] {
				return fmt.Errorf("two root partitions of slot %s", p.Slot)
			}
			slotted[p.Slot] = true
		}
		count[p.Role]++
	}
	if err := checkSlots(count[RoleRoot], count[RoleLayer], len(slotted)); err != nil {
		return err
	}
	for n := 1; n <= count[RoleLayer]; n++ {
		if !layers[n] {
			return fmt.Errorf("layers must be numbered 1 to %d: no layer %d", count[RoleLayer], n)
		}
	}
	switch {
	case count[RoleBoot] != 1:
		return fmt.Errorf("%d boot partitions, want 1", count[RoleBoot])
	case count[RoleRoot] != 1 && len(slotted) == 0:
		return fmt.Errorf("%d root partitions, want 1", count[RoleRoot])
	case count[RoleData] > 1:
		return fmt.Errorf("%d data partitions, want at most 1", count[RoleData])
	}
	return nil
}

// checkSlots verifies a layout's roots: one without a slot, or one per
// slot (a and b) and no layers.
func checkSlots(roots, layers, slotted int) error {
	switch {
	case slotted == 0:
		return nil
	case roots != 2 || slotted != 2:
		return fmt.Errorf("%d root partitions, %d of them slotted: want one root, or a root per slot (a and b)", roots, slotted)
	case layers > 0:
		return fmt.Errorf("%d layers on a slotted image: slots hold a root only", layers)
	}
	return nil
}

// check verifies one partition of a layout of n partitions.
func (p PartMeta) check(n int) error {
	switch p.Role {
	case RoleBoot, RoleRoot, RoleData:
		if p.Layer != 0 {
			return fmt.Errorf("the %s partition has layer %d", p.Role, p.Layer)
		}
	case RoleLayer:
		if p.Layer < 1 || p.Layer > n {
			return fmt.Errorf("layer %d out of range (1 to %d)", p.Layer, n)
		}
	default:
		return fmt.Errorf("partition %d: unknown role %s", p.Number, quote.Name(string(p.Role)))
	}
	if p.Slot != "" && (p.Role != RoleRoot || (p.Slot != "a" && p.Slot != "b")) {
		return fmt.Errorf("partition %d: slot %s: only a root partition has a slot, a or b", p.Number, quote.Name(p.Slot))
	}
	// MBR numbers: 1-4 primary, 5 and up logical, so the highest is
	// below n+4; GPT numbers are entry indexes up to 128.
	if p.Number < 1 || p.Number > maxLayoutPartitions+4 {
		return fmt.Errorf("the %s partition: number %d out of range", p.roleName(), p.Number)
	}
	if p.PARTUUID == "" {
		return fmt.Errorf("the %s partition (number %d) has no PARTUUID", p.roleName(), p.Number)
	}
	return nil
}

func (p PartMeta) roleName() string {
	return Part{Role: p.Role, Layer: p.Layer}.RoleName()
}

// partLabel names a partition in messages: number and (quoted) name.
func partLabel(p Placed) string {
	if p.Name == "" {
		return "partition " + strconv.Itoa(p.Index)
	}
	return "partition " + strconv.Itoa(p.Index) + " (" + quote.Name(p.Name) + ")"
}

// ErrNoRole means the image has no partition of a role a command needs.
var ErrNoRole = errors.New("no such partition")

// Role returns the partition of role r (for RoleLayer, layer n).
func (img *Image) Role(r Role, n int) (Part, bool) {
	for _, p := range img.Parts {
		if p.Role == r && (r != RoleLayer || p.Layer == n) {
			return p, true
		}
	}
	return Part{}, false
}

// Boot returns the boot partition.
func (img *Image) Boot() (Part, error) {
	if p, ok := img.Role(RoleBoot, 0); ok {
		return p, nil
	}
	return Part{}, img.MetaErr
}

// Root returns the root partition (the base lower); on an image with A/B
// slots, the committed slot's (slot.txt).
func (img *Image) Root() (Part, error) {
	if img.Slotted() {
		s, err := img.CommittedSlot()
		if err != nil {
			return Part{}, err
		}
		return img.RootOf(s)
	}
	if p, ok := img.Role(RoleRoot, 0); ok {
		return p, nil
	}
	return Part{}, fmt.Errorf("%w: no %q partition", ErrNotRFS, RootPartition)
}

// Layers returns the layer partitions, bottom to top.
func (img *Image) Layers() []Part {
	var ls []Part
	for n := 1; ; n++ {
		p, ok := img.Role(RoleLayer, n)
		if !ok {
			return ls
		}
		ls = append(ls, p)
	}
}

// Lowers returns the partitions the upper sits on: the root, then the
// layers bottom to top.
func (img *Image) Lowers() ([]Part, error) {
	root, err := img.Root()
	if err != nil {
		return nil, err
	}
	return append([]Part{root}, img.Layers()...), nil
}

// Data returns the data partition (the upper, work dir, volumes); false
// when the image has none.
func (img *Image) Data() (Part, bool) {
	return img.Role(RoleData, 0)
}
