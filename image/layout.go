// Package image assembles disk images: a partition table and the content of
// each partition, written to a temporary file that is renamed into place
// only when complete, so an interrupted build never leaves a file that looks
// like a finished image.
package image

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/diskfs/go-diskfs/partition/mbr"

	"github.com/rfsbuild/rfs/atomicfile"
)

// MiB is the alignment of every partition: what flash translation layers of
// SD cards and eMMC expect, and what every partitioning tool uses.
const MiB = 1 << 20

// GPT partition type GUIDs (UAPI Discoverable Partitions Specification).
const (
	TypeESP       = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
	TypeRootARM64 = "b921b045-1df0-41c3-af44-4c6f280d3fae"
	TypeRootAMD64 = "4f68bce3-e8cd-4db1-96e7-fbcaf984b709"
	TypeLinuxData = "0fc63daf-8483-4772-8e79-3d69d8477de4"
)

// RootType returns the root partition type GUID for a GOARCH.
func RootType(arch string) (string, error) {
	switch arch {
	case "arm64":
		return TypeRootARM64, nil
	case "amd64":
		return TypeRootAMD64, nil
	}
	return "", fmt.Errorf("no root partition type for architecture %q", arch)
}

// MBR partition types.
const (
	MBRTypeFAT32LBA = 0x0c
	MBRTypeLinux    = 0x83
	MBRTypeExtended = 0x0f // extended, LBA
)

// Partition is one partition to write.
type Partition struct {
	Name string // GPT partition name (on MBR disks, names are by position)
	Type string // GPT type GUID
	GUID string // GPT unique partition GUID; on MBR disks, its PARTUUID (SSSSSSSS-NN)
	// MBRType and Bootable are used on MBR disks.
	MBRType  byte
	Bootable bool
	// Logical (MBR only) puts the partition in the extended partition,
	// numbered from 5 as Linux does: how an MBR disk holds more than 4.
	// Logical partitions must be consecutive in Layout.Partitions; the
	// extended partition that holds them takes the primary slot where the
	// first one stands.
	Logical bool
	// Size is the partition size in bytes; 0 sizes it to what Write wrote.
	Size int64
	// Late defers Write until every other partition is written (Size must
	// be fixed): the boot partition's rfs.json records the others' sizes.
	Late bool
	// Write fills the partition; w's offset 0 is the partition's first byte.
	// It returns how many bytes it wrote. With a fixed Size it must stay
	// within it; the region reads as zeros before Write is called.
	Write func(ctx context.Context, w io.WriterAt) (int64, error)
}

// Layout is a whole disk.
type Layout struct {
	// Table is "gpt" (default) or "mbr" (Raspberry Pi: its boot ROM reads
	// only MBR). MBR disks hold at most 4 primary partitions, the extended
	// partition that holds any Logical ones counting as one.
	Table string
	// DiskGUID is the GPT disk GUID.
	DiskGUID string
	// DiskID is the MBR disk signature (bytes 440-443), the first half of
	// Linux's MBR PARTUUIDs.
	DiskID     uint32
	Partitions []Partition
	// Size is the image size; 0 makes it just large enough.
	Size int64
}

// Placed is where a partition ended up.
type Placed struct {
	Partition
	Index int   // 1-based
	Start int64 // byte offset on the disk
}

// gptReserve is what GPT needs at each end: the protective MBR, header and
// 128 entries of 128 bytes at the front (34 sectors), 33 sectors at the back.
// Partitions start at 1 MiB anyway.
const gptTail = 33 * 512

// WriteFile writes the layout to path atomically (package atomicfile): into
// a hidden temporary file in the same directory, synced, then renamed. On
// any error, or if ctx is cancelled, nothing is left at path (an existing
// file there is untouched). A path that exists and is not a regular file (a
// device node, directory, fifo) is refused.
func (l Layout) WriteFile(ctx context.Context, path string) ([]Placed, error) {
	if _, err := atomicfile.Target(path); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create output directory: %w", err)
	}
	f, err := atomicfile.Create(path, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Abort()
	placed, err := l.write(ctx, f.File)
	if err != nil {
		return nil, err
	}
	if err := f.Commit(); err != nil {
		return nil, err
	}
	return placed, nil
}

func (l Layout) write(ctx context.Context, f *os.File) ([]Placed, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	placed, next, err := l.place(ctx, f)
	if err != nil {
		return nil, err
	}
	need := next + MiB // room for the backup GPT, and the alignment a resize tool expects
	size := l.Size
	if size == 0 {
		size = need
	}
	if size < need {
		return nil, fmt.Errorf("image size %s is too small: its content needs %s", HumanSize(size), HumanSize(need))
	}
	if size%512 != 0 {
		return nil, fmt.Errorf("image size %d is not a multiple of 512", size)
	}
	if err := f.Truncate(size); err != nil {
		return nil, fmt.Errorf("size image: %w", err)
	}
	if l.Table == "mbr" {
		if err := l.writeMBR(f, placed, size); err != nil {
			return nil, fmt.Errorf("write partition table: %w", err)
		}
		return placed, nil
	}
	table := &gpt.Table{
		LogicalSectorSize:  512,
		PhysicalSectorSize: 512,
		ProtectiveMBR:      true,
		GUID:               strings.ToUpper(l.DiskGUID),
	}
	for _, p := range placed {
		table.Partitions = append(table.Partitions, &gpt.Partition{
			Index: p.Index,
			Start: uint64(p.Start / 512),
			End:   uint64((p.Start+p.Size)/512 - 1),
			Size:  uint64(p.Size),
			Type:  gpt.Type(strings.ToUpper(p.Type)),
			Name:  p.Name,
			GUID:  strings.ToUpper(p.GUID),
		})
	}
	if err := table.Write(f, size); err != nil {
		return nil, fmt.Errorf("write partition table: %w", err)
	}
	return placed, nil
}

// place writes the partitions in order, each at the next free MiB (the
// Late ones last, at the place kept for them), and returns where they are
// and the end of the last one.
func (l Layout) place(ctx context.Context, f *os.File) ([]Placed, int64, error) {
	var placed []Placed
	next := int64(MiB)
	nums, _ := MBRNumbers(l.logical())
	write := func(p Partition, at int64) (int64, error) {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		n, err := p.Write(ctx, io.NewOffsetWriter(f, at))
		if err != nil {
			return 0, fmt.Errorf("write %s partition: %w", p.Name, err)
		}
		if p.Size != 0 && n > p.Size {
			return 0, fmt.Errorf("write %s partition: wrote %d bytes into %d", p.Name, n, p.Size)
		}
		return n, nil
	}
	for i, p := range l.Partitions {
		if p.Size%MiB != 0 {
			return nil, 0, fmt.Errorf("partition %s: size %d is not a multiple of 1 MiB", p.Name, p.Size)
		}
		if p.Late && p.Size == 0 {
			return nil, 0, fmt.Errorf("partition %s: written last, it needs a fixed size", p.Name)
		}
		index := i + 1
		if l.Table == "mbr" {
			index = nums[i]
		}
		if p.Logical {
			next += MiB // the EBR's MiB: the partition stays aligned
		}
		if !p.Late {
			n, err := write(p, next)
			if err != nil {
				return nil, 0, err
			}
			if p.Size == 0 {
				p.Size = roundUp(n, MiB)
			}
		}
		placed = append(placed, Placed{Partition: p, Index: index, Start: next})
		next += p.Size
	}
	for _, p := range placed {
		if p.Late {
			if _, err := write(p.Partition, p.Start); err != nil {
				return nil, 0, err
			}
		}
	}
	return placed, next, nil
}

// check validates the table kind and the partitions' count and order.
func (l Layout) check() error {
	if l.Table != "" && l.Table != "gpt" && l.Table != "mbr" {
		return fmt.Errorf("unknown partition table %q (gpt or mbr)", l.Table)
	}
	if len(l.Partitions) == 0 {
		return fmt.Errorf("a %s image needs partitions: none given", l.tableName())
	}
	if l.Table != "mbr" {
		if len(l.Partitions) > 128 {
			return fmt.Errorf("a GPT image holds at most 128 partitions, not %d", len(l.Partitions))
		}
		for _, p := range l.Partitions {
			if p.Logical {
				return fmt.Errorf("partition %s: logical partitions exist only on MBR disks", p.Name)
			}
		}
		return nil
	}
	slots, runs := 0, 0
	for i, p := range l.Partitions {
		switch {
		case !p.Logical:
			slots++
		case i == 0 || !l.Partitions[i-1].Logical:
			slots++ // the extended partition
			runs++
		}
	}
	if runs > 1 {
		return errors.New("logical partitions must be consecutive: an MBR disk has one extended partition")
	}
	if slots > 4 {
		return fmt.Errorf("an MBR image holds at most 4 primary partitions (the extended partition counts as one), not %d", slots)
	}
	return nil
}

func (l Layout) tableName() string {
	if l.Table == "mbr" {
		return "MBR"
	}
	return "GPT"
}

func (l Layout) writeMBR(f *os.File, placed []Placed, size int64) error {
	table := &mbr.Table{LogicalSectorSize: 512, PhysicalSectorSize: 512}
	var logicals []Placed
	for _, p := range placed {
		start, sectors := p.Start/512, p.Size/512
		if start+sectors > math.MaxUint32 {
			return fmt.Errorf("partition %s ends beyond 2 TiB, the MBR limit", p.Name)
		}
		if p.Logical {
			logicals = append(logicals, p)
			continue
		}
		table.Partitions = append(table.Partitions, &mbr.Partition{
			Index:    p.Index,
			Bootable: p.Bootable,
			Type:     mbr.Type(p.MBRType),
			Start:    uint32(start),
			Size:     uint32(sectors),
		})
	}
	if len(logicals) > 0 {
		// The extended partition spans the logical ones and their EBRs,
		// in the slot before the next primary.
		first, last := logicals[0], logicals[len(logicals)-1]
		extStart := first.Start/512 - MiB/512
		_, slot := MBRNumbers(l.logical())
		ext := &mbr.Partition{
			Index: slot,
			Type:  mbr.Type(MBRTypeExtended),
			Start: uint32(extStart),
			Size:  uint32((last.Start+last.Size)/512 - extStart),
		}
		table.Partitions = append(table.Partitions, ext)
		slices.SortFunc(table.Partitions, func(a, b *mbr.Partition) int { return a.Index - b.Index })
		if err := writeEBRs(f, logicals, int64(extStart)); err != nil {
			return err
		}
	}
	if err := table.Write(f, size); err != nil {
		return err
	}
	var id [4]byte
	binary.LittleEndian.PutUint32(id[:], l.DiskID)
	_, err := f.WriteAt(id[:], 440)
	return err
}

// MBRNumbers returns the Linux partition number of each partition of an
// MBR disk, given which are logical: primaries take slots 1-4 in order,
// the extended partition takes the slot where the first logical one
// stands, and logical partitions count from 5. ext is the extended
// partition's slot, 0 when there is none. Builders use it to know the
// PARTUUIDs before the image is written.
func MBRNumbers(logical []bool) (nums []int, ext int) {
	primary, next := 0, 4
	for i, l := range logical {
		if !l {
			primary++
			nums = append(nums, primary)
			continue
		}
		if i == 0 || !logical[i-1] {
			primary++
			ext = primary
		}
		next++
		nums = append(nums, next)
	}
	return nums, ext
}

func (l Layout) logical() []bool {
	out := make([]bool, len(l.Partitions))
	for i, p := range l.Partitions {
		out[i] = p.Logical
	}
	return out
}

// writeEBRs writes the chain of extended boot records, one in the sector
// 1 MiB before each logical partition: its first entry is the partition
// (start relative to the EBR), its second links to the next EBR (start
// relative to the extended partition), as Linux's msdos parser reads them.
func writeEBRs(f *os.File, logicals []Placed, extStart int64) error {
	le := binary.LittleEndian
	for i, p := range logicals {
		ebr := make([]byte, 512)
		at := p.Start/512 - MiB/512
		e := ebr[446:]
		e[4] = p.MBRType
		le.PutUint32(e[8:], uint32(p.Start/512-at))
		le.PutUint32(e[12:], uint32(p.Size/512))
		if i+1 < len(logicals) {
			n := logicals[i+1]
			nextAt := n.Start/512 - MiB/512
			e = ebr[462:]
			e[4] = 0x05
			le.PutUint32(e[8:], uint32(nextAt-extStart))
			le.PutUint32(e[12:], uint32((n.Start+n.Size)/512-nextAt))
		}
		ebr[510], ebr[511] = 0x55, 0xaa
		if _, err := f.WriteAt(ebr, at*512); err != nil {
			return fmt.Errorf("write EBR of partition %s: %w", p.Name, err)
		}
	}
	return nil
}

// MBRPartUUID is the PARTUUID Linux gives partition n of an MBR disk.
func MBRPartUUID(diskID uint32, n int) string {
	return fmt.Sprintf("%08x-%02x", diskID, n)
}

func roundUp(n, to int64) int64 { return (n + to - 1) / to * to }

// HumanSize formats a byte count for messages.
func HumanSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// SizeForms lists the sizes ParseSize accepts, for error messages.
const SizeForms = "a whole number of bytes, optionally followed by K, M, G or T (or KiB, MiB, GiB, TiB; powers of 1024, any case), e.g. 4096, 512M, 2G"

// ParseSize reads a size: digits with an optional binary suffix K, M, G or
// T (also KiB, MiB, GiB, TiB; letters in any case). Nothing else: no sign,
// no fraction or exponent, no spaces, no "MB" (ambiguous: 10^6 or 2^20?),
// and no value beyond int64. Range checks are the caller's, per setting.
func ParseSize(s string) (int64, error) {
	digits := strings.TrimRightFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	// digits ends at the last digit; the suffix is what follows it.
	suffix := s[len(digits):]
	for _, r := range digits {
		if r < '0' || r > '9' {
			return 0, fmt.Errorf("not a size: want %s", SizeForms)
		}
	}
	if digits == "" {
		return 0, fmt.Errorf("not a size: want %s", SizeForms)
	}
	shift := uint(0)
	switch strings.ToUpper(suffix) {
	case "":
	case "K", "KIB":
		shift = 10
	case "M", "MIB":
		shift = 20
	case "G", "GIB":
		shift = 30
	case "T", "TIB":
		shift = 40
	case "KB", "MB", "GB", "TB":
		return 0, fmt.Errorf("%q is ambiguous (powers of 1000 or 1024?): rfs sizes are powers of 1024, write %s or %siB", suffix, suffix[:1], suffix[:1])
	default:
		return 0, fmt.Errorf("unknown suffix %q: want %s", suffix, SizeForms)
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n > math.MaxInt64>>shift {
		return 0, fmt.Errorf("too large (at most 8 EiB)")
	}
	return n << shift, nil
}

// ErrNotRFS is returned for disks that carry no rfs image.
var ErrNotRFS = errors.New("not an rfs image")
