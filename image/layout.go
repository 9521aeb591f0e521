// Package image assembles disk images: a partition table and the content of
// each partition, written to a temporary file that is renamed into place
// only when complete, so an interrupted build never leaves a file that looks
// like a finished image.
package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/diskfs/go-diskfs/partition/gpt"
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

// Partition is one partition to write.
type Partition struct {
	Name string // GPT partition name
	Type string // GPT type GUID
	GUID string // GPT unique partition GUID
	// Size is the partition size in bytes; 0 sizes it to what Write wrote.
	Size int64
	// Write fills the partition; w's offset 0 is the partition's first byte.
	// It returns how many bytes it wrote. With a fixed Size it must stay
	// within it; the region reads as zeros before Write is called.
	Write func(ctx context.Context, w io.WriterAt) (int64, error)
}

// Layout is a whole disk.
type Layout struct {
	DiskGUID   string
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

// WriteFile writes the layout to path atomically: into a temporary file in
// the same directory, synced, then renamed. On any error, or if ctx is
// cancelled, nothing is left at path (an existing file there is untouched).
func (l Layout) WriteFile(ctx context.Context, path string) ([]Placed, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return nil, fmt.Errorf("output %s is a directory; give an image file name such as %s", path, filepath.Join(path, "disk.img"))
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create output directory: %w", err)
	}
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("create image: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	placed, err := l.write(ctx, f)
	if err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("sync image: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("close image: %w", err)
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return nil, fmt.Errorf("image permissions: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return nil, fmt.Errorf("rename image into place: %w", err)
	}
	ok = true
	return placed, nil
}

func (l Layout) write(ctx context.Context, f *os.File) ([]Placed, error) {
	if len(l.Partitions) == 0 || len(l.Partitions) > 128 {
		return nil, fmt.Errorf("a GPT image needs 1 to 128 partitions, not %d", len(l.Partitions))
	}
	var placed []Placed
	next := int64(MiB)
	for i, p := range l.Partitions {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if p.Size%MiB != 0 {
			return nil, fmt.Errorf("partition %s: size %d is not a multiple of 1 MiB", p.Name, p.Size)
		}
		w := io.NewOffsetWriter(f, next)
		n, err := p.Write(ctx, w)
		if err != nil {
			return nil, fmt.Errorf("write %s partition: %w", p.Name, err)
		}
		size := p.Size
		if size == 0 {
			size = roundUp(n, MiB)
		} else if n > size {
			return nil, fmt.Errorf("write %s partition: wrote %d bytes into %d", p.Name, n, size)
		}
		p.Size = size
		placed = append(placed, Placed{Partition: p, Index: i + 1, Start: next})
		next += size
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

// ParseSize reads sizes like "512M", "2G", "1.5GiB", "4096".
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(strings.ToUpper(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "IB"), "B")
	mult := int64(1)
	if t != "" {
		switch t[len(t)-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult != 1 {
			t = t[:len(t)-1]
		}
	}
	var v float64
	if _, err := fmt.Sscanf(t, "%g", &v); err != nil || v < 0 || t == "" {
		return 0, fmt.Errorf("bad size %q (want e.g. 512M, 2G)", s)
	}
	return int64(v * float64(mult)), nil
}

// ErrNotRFS is returned for disks that carry no rfs image.
var ErrNotRFS = errors.New("not an rfs image")
