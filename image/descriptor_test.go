package image

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// Assign gives each role its id from the build ID: GPT GUIDs from
// DeriveGUID(buildID, role key), MBR numbers (layers logical when more
// than one) with PARTUUIDs from the disk signature.
func TestDescriptorAssign(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef"
	sig := DeriveGUID(id, "disk")[:8]
	tests := []struct {
		table  string
		layers int
		want   []string // role:number:partuuid
	}{
		{"gpt", 0, []string{"boot:1:" + DeriveGUID(id, "boot"), "root:2:" + DeriveGUID(id, "root"), "data:3:" + DeriveGUID(id, "data")}},
		{"gpt", 2, []string{"boot:1:" + DeriveGUID(id, "boot"), "root:2:" + DeriveGUID(id, "root"), "layer:3:" + DeriveGUID(id, "layer-1"), "layer:4:" + DeriveGUID(id, "layer-2"), "data:5:" + DeriveGUID(id, "data")}},
		{"mbr", 0, []string{"boot:1:" + sig + "-01", "root:2:" + sig + "-02", "data:3:" + sig + "-03"}},
		{"mbr", 1, []string{"boot:1:" + sig + "-01", "root:2:" + sig + "-02", "layer:3:" + sig + "-03", "data:4:" + sig + "-04"}},
		{"mbr", 3, []string{"boot:1:" + sig + "-01", "root:2:" + sig + "-02", "layer:5:" + sig + "-05", "layer:6:" + sig + "-06", "layer:7:" + sig + "-07", "data:4:" + sig + "-04"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s-%d", tt.table, tt.layers), func(t *testing.T) {
			p, err := Standard(tt.table, tt.layers, 64*MiB).Assign(id, "arm64")
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Parts) != len(tt.want) {
				t.Fatalf("%d partitions, want %d", len(p.Parts), len(tt.want))
			}
			for i, pp := range p.Parts {
				if got := fmt.Sprintf("%s:%d:%s", pp.Role, pp.Number, pp.PARTUUID); got != tt.want[i] {
					t.Errorf("partition %d = %s, want %s", i, got, tt.want[i])
				}
			}
			m := p.Meta([]int64{1, 2, 3, 4, 5, 6, 7})
			if m.Table != tt.table || m.Partitions[len(m.Partitions)-1].Policy != SizeGrow || m.Partitions[0].Policy != SizeHeadroom || m.Partitions[1].Size != 2 {
				t.Errorf("meta %+v", m)
			}
			if tt.table == "mbr" && m.DiskID != sig || tt.table == "gpt" && m.DiskID != DeriveGUID(id, "disk") {
				t.Errorf("disk id %q", m.DiskID)
			}
		})
	}
	if _, err := (Descriptor{Table: "apm"}).Assign(id, "arm64"); err == nil {
		t.Error("an unknown table was accepted")
	}
	if _, err := Standard("gpt", 0, MiB).Assign(id, "mips"); err == nil {
		t.Error("an unknown arch was accepted")
	}
}

// A Late partition is written after the others, at the place kept for it.
func TestLayoutLate(t *testing.T) {
	var order []string
	part := func(name string, size int64, late bool) Partition {
		return Partition{Name: name, Type: TypeLinuxData, GUID: DeriveGUID("x", name), Size: size, Late: late,
			Write: func(_ context.Context, w io.WriterAt) (int64, error) {
				order = append(order, name)
				_, err := w.WriteAt([]byte(name), 0)
				return int64(len(name)), err
			}}
	}
	path := filepath.Join(t.TempDir(), "x.img")
	l := Layout{Table: "gpt", DiskGUID: DeriveGUID("x", "disk"), Partitions: []Partition{part("first", MiB, true), part("second", 0, false)}}
	placed, err := l.WriteFile(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(order) != "[second first]" || placed[0].Start != MiB || placed[1].Start != 2*MiB {
		t.Errorf("order %v, placed %+v", order, placed)
	}
	b, _ := os.ReadFile(path)
	if string(b[MiB:MiB+5]) != "first" || string(b[2*MiB:2*MiB+6]) != "second" {
		t.Error("content not where placed")
	}
	l.Partitions[0].Size = 0
	if _, err := l.WriteFile(t.Context(), path); err == nil {
		t.Error("a late partition without a size was accepted")
	}
}
