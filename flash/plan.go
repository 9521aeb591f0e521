package flash

import (
	"fmt"
	"os"
	"sort"

	"github.com/rfsbuild/rfs/ptable"
)

// MiB is the size of the regions written as zeros even when the image has a
// hole there: the start and end of the disk and of every partition.
const MiB = 1 << 20

const (
	align    = 4096      // extents are widened to this
	mergeGap = 64 * 1024 // extents closer than this are written as one
)

// Extent is a range of the target that is written.
type Extent struct {
	Off, Len int64
	// Zero: beyond the image's end (the tail of a larger target, where a
	// stale backup GPT would be): written as zeros.
	Zero bool
}

// End is the offset after the extent.
func (e Extent) End() int64 { return e.Off + e.Len }

// Plan is what is written to the target.
type Plan struct {
	ImageSize  int64
	TargetSize int64
	Data       int64         // bytes of the image that are data (not holes)
	Table      *ptable.Table // the image's partition table, nil if none
	Extents    []Extent      // sorted, disjoint
}

// Bytes is the number of bytes the plan writes.
func (p *Plan) Bytes() int64 {
	var n int64
	for _, e := range p.Extents {
		n += e.Len
	}
	return n
}

// MustZero returns the regions that must read as on the image even where
// the image has holes: the partition tables (the first and last MiB of the
// image: protective MBR, GPT header and entries, backup GPT) and the first
// and last MiB of every partition (superblocks and their backups, a
// squashfs or ext4 or FAT header, an old filesystem's signature that blkid
// would otherwise still find).
func MustZero(size int64, t *ptable.Table) []Extent {
	var out []Extent
	add := func(start, end int64) {
		start, end = max(start, 0), min(end, size)
		if end > start {
			out = append(out, Extent{Off: start, Len: end - start})
		}
	}
	add(0, MiB)
	add(size-MiB, size)
	if t != nil {
		for _, p := range t.Partitions {
			add(p.Start, min(p.Start+MiB, p.Start+p.Size))
			add(max(p.Start+p.Size-MiB, p.Start), p.Start+p.Size)
		}
	}
	return out
}

// Normalize widens extents to 4 KiB (within size), sorts them and merges
// the ones that overlap or are less than 64 KiB apart.
func Normalize(es []Extent, size int64) []Extent {
	var w []Extent
	for _, e := range es {
		s := e.Off / align * align
		end := min((e.End()+align-1)/align*align, size)
		if end > s {
			w = append(w, Extent{Off: s, Len: end - s})
		}
	}
	sort.Slice(w, func(i, j int) bool { return w[i].Off < w[j].Off })
	var out []Extent
	for _, e := range w {
		if n := len(out); n > 0 && e.Off <= out[n-1].End()+mergeGap {
			if e.End() > out[n-1].End() {
				out[n-1].Len = e.End() - out[n-1].Off
			}
			continue
		}
		out = append(out, e)
	}
	return out
}

// MakePlan plans writing the image f (imageSize bytes) to a target of
// targetSize bytes: the image's data, its must-be-zero regions and, when
// the target is larger, the target's last MiB as zeros (so that no stale
// backup GPT of an earlier content survives at the target's end).
func MakePlan(f *os.File, imageSize, targetSize int64) (*Plan, error) {
	if targetSize < imageSize {
		return nil, fmt.Errorf("target (%d bytes) is smaller than the image (%d bytes)", targetSize, imageSize)
	}
	data, err := DataExtents(f, imageSize)
	if err != nil {
		return nil, err
	}
	p := &Plan{ImageSize: imageSize, TargetSize: targetSize}
	for _, e := range data {
		p.Data += e.Len
	}
	if t, err := ptable.ReadTable(f, imageSize, 0); err == nil {
		p.Table = t
	}
	p.Extents = Normalize(append(data, MustZero(imageSize, p.Table)...), imageSize)
	if targetSize > imageSize {
		start := max(targetSize-MiB, imageSize)
		p.Extents = append(p.Extents, Extent{Off: start, Len: targetSize - start, Zero: true})
	}
	return p, nil
}

// chunks splits the plan into writes of at most size bytes that do not
// cross a multiple of size (erase-block friendly) nor the first MiB (the
// partition table is written last, see Job.Write).
func (p *Plan) chunks(size int64) []chunk {
	var out []chunk
	for _, e := range p.Extents {
		for off := e.Off; off < e.End(); {
			end := min(e.End(), (off/size+1)*size)
			if off < MiB {
				end = min(end, MiB)
			}
			out = append(out, chunk{off: off, n: int(end - off), zero: e.Zero})
			off = end
		}
	}
	return out
}
