package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func fill(b byte, n int64) func(context.Context, io.WriterAt) (int64, error) {
	return func(_ context.Context, w io.WriterAt) (int64, error) {
		_, err := w.WriteAt(bytes.Repeat([]byte{b}, int(n)), 0)
		return n, err
	}
}

func TestWriteFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "disk.img")
	l := Layout{
		DiskGUID: "11111111-2222-4333-8444-555555555555",
		Partitions: []Partition{
			{Name: "a", Type: TypeESP, GUID: "aaaaaaaa-0000-4000-8000-000000000001", Size: 2 * MiB, Write: fill('a', 1000)},
			{Name: "b", Type: TypeRootARM64, GUID: "bbbbbbbb-0000-4000-8000-000000000002", Write: fill('b', MiB+1)},
		},
	}
	placed, err := l.WriteFile(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if placed[0].Start != MiB || placed[1].Start != 3*MiB || placed[1].Size != 2*MiB {
		t.Fatalf("placed = %+v", placed)
	}
	st, _ := os.Stat(path)
	if st.Size() != 6*MiB {
		t.Fatalf("image size %d, want 6 MiB (content + 1 MiB for the backup GPT)", st.Size())
	}
	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	b, err := d.Partition("b")
	if err != nil || b.GUID != "bbbbbbbb-0000-4000-8000-000000000002" || b.Type != TypeRootARM64 {
		t.Fatalf("read back b = %+v, %v", b, err)
	}
	head := make([]byte, 4)
	d.Section(b).ReadAt(head, 0)
	if string(head) != "bbbb" {
		t.Fatalf("partition b starts with %q", head)
	}
	if _, err := exec.LookPath("sgdisk"); err == nil {
		out, err := exec.Command("sgdisk", "-v", path).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "No problems found") {
			t.Fatalf("sgdisk -v: %v\n%s", err, out)
		}
	}
}

func TestWriteFileErrorsLeaveNothing(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name    string
		layout  Layout
		wantErr string
	}{
		{"too small", Layout{Size: 2 * MiB, Partitions: []Partition{{Name: "a", Write: fill('a', MiB)}}}, "too small"},
		{"write fails", Layout{Partitions: []Partition{{Name: "a", Write: func(context.Context, io.WriterAt) (int64, error) { return 0, boom }}}}, "boom"},
		{"overflow", Layout{Partitions: []Partition{{Name: "a", Size: MiB, Write: fill('a', 2*MiB)}}}, "wrote"},
		{"unaligned", Layout{Partitions: []Partition{{Name: "a", Size: 1000, Write: fill('a', 1)}}}, "multiple of 1 MiB"},
		{"no partitions", Layout{}, "partitions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "disk.img")
			_, err := tt.layout.WriteFile(context.Background(), path)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("WriteFile error = %v, want %q", err, tt.wantErr)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Fatalf("left behind: %v", entries)
			}
		})
	}
}

func TestWriteFileKeepsOldImageOnFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk.img")
	os.WriteFile(path, []byte("previous image"), 0o644)
	l := Layout{Partitions: []Partition{{Name: "a", Write: func(context.Context, io.WriterAt) (int64, error) { return 0, errors.New("interrupted") }}}}
	if _, err := l.WriteFile(context.Background(), path); err == nil {
		t.Fatal("expected an error")
	}
	if got, _ := os.ReadFile(path); string(got) != "previous image" {
		t.Fatalf("previous image clobbered: %q", got)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"512M": 512 << 20, "2G": 2 << 30, "3GiB": 3 << 30, "4096": 4096, "64k": 64 << 10,
		"1mib": 1 << 20, "0": 0, "1T": 1 << 40, "8388607T": 8388607 << 40,
	} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for bad, why := range map[string]string{
		"": "not a size", "lots": "not a size", "-1G": "not a size", "G": "not a size",
		"33554432garbage": `unknown suffix "garbage"`, "1e30": "not a size", "NaN": "not a size",
		"Inf": "not a size", "1.5G": "not a size", "0x10": "not a size", " 1M": "not a size",
		"1M ": "unknown suffix", "+1M": "not a size", "1MB": "ambiguous", "1 M": "unknown suffix",
		"9223372036854775808": "too large", "8388608T": "too large", "99999999999999999999999": "too large",
		"1P": "unknown suffix",
	} {
		_, err := ParseSize(bad)
		if err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("ParseSize(%q) = %v, want an error saying %q", bad, err, why)
		}
	}
}

func TestLayoutCheck(t *testing.T) {
	p := func(logical bool) Partition { return Partition{Name: "p", Logical: logical, Write: fill('x', 1)} }
	for _, tc := range []struct {
		name  string
		table string
		parts []Partition
		want  string // "" for valid
	}{
		{"four primaries", "mbr", []Partition{p(false), p(false), p(false), p(false)}, ""},
		{"five primaries", "mbr", []Partition{p(false), p(false), p(false), p(false), p(false)}, "at most 4 primary"},
		{"extended in slot 3", "mbr", []Partition{p(false), p(false), p(true), p(true), p(true), p(false)}, ""},
		{"extended makes five", "mbr", []Partition{p(false), p(false), p(false), p(false), p(true)}, "at most 4 primary"},
		{"two runs of logicals", "mbr", []Partition{p(false), p(true), p(false), p(true)}, "consecutive"},
		{"logical on GPT", "gpt", []Partition{p(false), p(true)}, "only on MBR"},
		{"none", "mbr", nil, "needs partitions"},
		{"bad table", "apm", []Partition{p(false)}, "unknown partition table"},
	} {
		err := Layout{Table: tc.table, Partitions: tc.parts}.check()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// Logical partitions: numbered from 5, each 1 MiB after its EBR, read back
// by Open (via the init's table reader) where they were placed.
func TestWriteFileLogical(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk.img")
	l := Layout{Table: "mbr", DiskID: 0x12345678, Partitions: []Partition{
		{MBRType: MBRTypeFAT32LBA, Bootable: true, Write: fill('a', 10)},
		{MBRType: MBRTypeLinux, Write: fill('b', 10)},
		{MBRType: MBRTypeLinux, Logical: true, Write: fill('c', 10)},
		{MBRType: MBRTypeLinux, Logical: true, Write: fill('d', MiB+1)},
		{MBRType: MBRTypeLinux, Size: 2 * MiB, Write: fill('e', 10)},
	}}
	placed, err := l.WriteFile(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range placed {
		got = append(got, fmt.Sprintf("%d@%d+%d", p.Index, p.Start/MiB, p.Size/MiB))
	}
	// a 1, b 2, EBR 3, c 4, EBR 5, d 6-7, e 8-9
	if want := "1@1+1 2@2+1 5@4+1 6@6+2 4@8+2"; strings.Join(got, " ") != want {
		t.Fatalf("placed %s, want %s", strings.Join(got, " "), want)
	}
	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if len(d.Partitions) != len(placed) {
		t.Fatalf("read back %d partitions, placed %d", len(d.Partitions), len(placed))
	}
	var names []string
	for _, p := range d.Partitions {
		i := slices.IndexFunc(placed, func(q Placed) bool { return q.Index == p.Index })
		if i < 0 {
			t.Fatalf("read back partition %d, not placed", p.Index)
		}
		want := placed[i]
		head := make([]byte, 1)
		d.Section(p).ReadAt(head, 0)
		if p.Start != want.Start || p.Size != want.Size || p.GUID != MBRPartUUID(0x12345678, want.Index) || head[0] != "abcde"[i] || p.Bootable != (i == 0) || p.Logical != want.Logical {
			t.Errorf("read back %+v (starts with %q), placed %+v", p, head, want)
		}
		names = append(names, fmt.Sprintf("%d:%s", p.Index, p.Name))
	}
	if strings.Join(names, " ") != "1:rfs-boot 2:rfs-root 4:rfs-data 5:rfs-layer-1 6:rfs-layer-2" {
		t.Errorf("names %q", names)
	}
	if _, err := exec.LookPath("sfdisk"); err == nil {
		if out, err := exec.Command("sfdisk", "-V", path).CombinedOutput(); err != nil || !strings.Contains(string(out), "No errors detected") {
			t.Errorf("sfdisk -V: %v\n%s", err, out)
		}
	}
}

func TestMBRNumbers(t *testing.T) {
	for _, tc := range []struct {
		logical []bool
		want    string
		ext     int
	}{
		{[]bool{false, false, false}, "[1 2 3]", 0},
		{[]bool{false, false, false, false}, "[1 2 3 4]", 0},
		{[]bool{false, false, true, true, false}, "[1 2 5 6 4]", 3},
		{[]bool{false, true, true, true}, "[1 5 6 7]", 2},
		{[]bool{true, false}, "[5 2]", 1},
	} {
		nums, ext := MBRNumbers(tc.logical)
		if fmt.Sprint(nums) != tc.want || ext != tc.ext {
			t.Errorf("MBRNumbers(%v) = %v, %d; want %s, %d", tc.logical, nums, ext, tc.want, tc.ext)
		}
	}
}
