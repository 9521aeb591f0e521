package ptable

import (
	"cmp"
	"errors"
	"slices"
	"strconv"
)

// Check verifies that every partition of t lies inside a disk of size
// bytes, has a positive size, stays clear of the table itself and does not
// overlap another partition (MBR extended containers excepted: they hold
// the logical partitions). what names the disk in the message ("image",
// "device"). A table that fails this is damaged or hostile, or the image
// was cut short (a truncated download or copy).
func (t *Table) Check(size int64, what string) error {
	parts := make([]Partition, 0, len(t.Partitions))
	for _, p := range t.Partitions {
		if p.Start < 0 || p.Size <= 0 {
			return errors.New(label(p) + ": impossible position (start " + i64s(p.Start) + ", size " + i64s(p.Size) + ")")
		}
		if p.Start > size || p.Size > size-p.Start {
			return errors.New(label(p) + " ends at " + i64s(p.Start+p.Size) + " but the " + what + " is only " + i64s(size) + " bytes: truncated?")
		}
		if p.Start < t.FirstUsable || t.LastUsable > 0 && p.Start+p.Size > t.LastUsable {
			return errors.New(label(p) + " (bytes " + i64s(p.Start) + "-" + i64s(p.Start+p.Size) + ") overlaps the " + t.Kind + " partition table")
		}
		if t.Kind == TableMBR && p.Extended() {
			continue
		}
		parts = append(parts, p)
	}
	slices.SortFunc(parts, func(a, b Partition) int { return cmp.Compare(a.Start, b.Start) })
	for i := 1; i < len(parts); i++ {
		if a, b := parts[i-1], parts[i]; b.Start < a.Start+a.Size {
			return errors.New(label(a) + " and " + label(b) + " overlap")
		}
	}
	return nil
}

func label(p Partition) string {
	if p.Name != "" {
		name := p.Name
		if q := strconv.Quote(name); q[1:len(q)-1] != name {
			name = q // never print a hostile name's control bytes raw
		}
		return "partition " + name + " (" + strconv.Itoa(p.Number) + ")"
	}
	return "partition " + strconv.Itoa(p.Number)
}

func i64s(n int64) string { return strconv.FormatInt(n, 10) }
