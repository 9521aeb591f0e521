package ptable

import (
	"strings"
	"testing"
)

func TestTableCheck(t *testing.T) {
	const mib = 1 << 20
	gpt := func(ps ...Partition) *Table {
		return &Table{Kind: TableGPT, FirstUsable: 34 * 512, LastUsable: 100*mib - 33*512, Partitions: ps}
	}
	mbr := func(ps ...Partition) *Table { return &Table{Kind: TableMBR, FirstUsable: 512, Partitions: ps} }
	p := func(n int, name string, start, size int64) Partition {
		return Partition{Number: n, Name: name, Start: start, Size: size, Type: "0x83"}
	}
	for _, c := range []struct {
		name string
		t    *Table
		size int64
		want string // "" = fits
	}{
		{"fits", gpt(p(1, "boot", mib, mib), p(2, "root", 2*mib, 97*mib)), 100 * mib, ""},
		{"truncated", gpt(p(1, "boot", mib, mib), p(3, "rfs-data", 2*mib, 97*mib)), 50 * mib, "partition rfs-data (3) ends at 103809024 but the image is only 52428800 bytes: truncated?"},
		{"starts past the end", gpt(p(1, "boot", 200*mib, mib)), 100 * mib, "ends at"},
		{"size overflows", gpt(p(1, "boot", mib, 1<<62)), 100 * mib, "ends at"},
		{"empty", gpt(p(1, "boot", mib, 0)), 100 * mib, "impossible position"},
		{"negative", gpt(p(1, "boot", -512, mib)), 100 * mib, "impossible position"},
		{"in the table", gpt(p(1, "boot", 512, mib)), 100 * mib, "overlaps the gpt partition table"},
		{"over the backup", gpt(p(1, "boot", mib, 99*mib)), 100 * mib, "overlaps the gpt partition table"},
		{"overlap", gpt(p(1, "a", mib, 2*mib), p(2, "b", 2*mib, mib)), 100 * mib, "partition a (1) and partition b (2) overlap"},
		{"overlap, out of order", gpt(p(2, "b", 2*mib, mib), p(1, "a", mib, 2*mib)), 100 * mib, "overlap"},
		{"hostile name quoted", gpt(p(1, "x\n\x1b[2J", mib, 200*mib)), 100 * mib, `partition "x\n\x1b[2J" (1) ends at`},
		{"mbr fits, extended holds logicals", mbr(p(1, "", mib, mib), Partition{Number: 3, Start: 2 * mib, Size: 10 * mib, Type: "0x0f"}, p(5, "", 3*mib, mib), p(6, "", 5*mib, mib)), 100 * mib, ""},
		{"mbr at sector 0", mbr(p(1, "", 0, mib)), 100 * mib, "overlaps the mbr partition table"},
		{"mbr past the end, device", mbr(p(1, "", mib, 2000*mib)), 100 * mib, "partition 1 ends at 2098200576 but the device is only"},
	} {
		what := "image"
		if strings.Contains(c.name, "device") {
			what = "device"
		}
		err := c.t.Check(c.size, what)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}
